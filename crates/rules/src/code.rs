//! The code written on the certificate for an originating good: ATIGA Form D box 8 (`WO`,
//! `PE`, `40%`, `CTH`, `CTSH + 35%`, `PC 25%`, `SP`) or the RCEP origin conferring criterion
//! (`WO`, `PE`, `CTC`, `RVC`, `CR`).

use originlink_model::Agreement;

use crate::rule::Atom;
use crate::settings::Regime;

/// The certificate code for a good that met the tests in `met` (the atoms of the alternative
/// it qualifies under, in reading order).
///
/// Form D writes the tariff change at its level and the RVC as its threshold, joined by
/// ` + ` for a combination; RCEP writes only the kind (`CTC`, `RVC`). A wholly obtained good
/// is `WO` whatever else the alternative holds. `GENERIC` uses the Form D notation.
pub fn certificate_code(regime: Regime, met: &[Atom]) -> String {
    let rcep = regime == Regime::Agreement(Agreement::Rcep);
    if met.contains(&Atom::WhollyObtained) {
        return "WO".to_owned();
    }
    let mut parts: Vec<String> = Vec::new();
    let mut push = |p: String| {
        if !parts.contains(&p) {
            parts.push(p);
        }
    };
    // Tariff change first, then value, then process: the order Form D writes `CTSH + 35%`.
    for a in met {
        if let Atom::Ctc(c) = a {
            push(if rcep { "CTC".to_owned() } else { c.code().to_owned() });
        }
    }
    for a in met {
        match a {
            Atom::Rvc(r) => push(if rcep { "RVC".to_owned() } else { format!("{}%", r.percent) }),
            Atom::PartialCumulation(p) => push(if rcep { "RVC".to_owned() } else { format!("PC {p}%") }),
            Atom::MaxNom(p) => push(format!("MaxNOM {p}%")),
            _ => {}
        }
    }
    for a in met {
        match a {
            // Form D box 8 has no CR: a chemical reaction is a specific process there.
            Atom::ChemicalReaction => {
                push(if regime == Regime::Agreement(Agreement::Atiga) { "SP" } else { "CR" }.to_owned())
            }
            Atom::SpecificProcess => push("SP".to_owned()),
            _ => {}
        }
    }
    if parts.is_empty() && met.contains(&Atom::ProducedEntirely) {
        return "PE".to_owned();
    }
    parts.join(" + ")
}
