//! The rule language as a tree: [`Rule`], its [`Atom`]s and the [`ClassRef`]s of an exclusion.
//! `Display` is the printer; [`crate::parse_rule`] reads it back to the same tree.
//!
//! The tree keeps the notation it was written in (`RVC40`, `RVC 40%` or `40%`; `or` or `;`;
//! `+` or `and`) so that the engine can quote a rule the way the agreement wrote it.

use std::fmt;

pub use originlink_model::Ctc;

use crate::settings::RvcMethod;

/// A rule of origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// Any one alternative suffices; the exporter chooses. Two or more alternatives.
    Any(Vec<Rule>, OrWord),
    /// Every part is required. Two or more parts.
    All(Vec<Rule>, AndWord),
    /// The tariff-change tests inside do not accept non-originating materials of these classes
    /// ("except from …"). The inner rule always contains a tariff-change test.
    Except(Box<Rule>, Vec<ClassRef>),
    /// One test.
    Atom(Atom),
}

/// How alternatives were joined: `or` or `;`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrWord {
    /// `A or B`.
    Or,
    /// `A; B`.
    Semicolon,
}

/// How required parts were joined: `+` or `and`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AndWord {
    /// `A + B` (Form D notation).
    Plus,
    /// `A and B`.
    And,
}

/// One test of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Atom {
    /// `WO`: wholly obtained or produced.
    WhollyObtained,
    /// `PE`: produced entirely from originating materials.
    ProducedEntirely,
    /// `CR`: a chemical reaction took place.
    ChemicalReaction,
    /// `SP`: a specific process took place.
    SpecificProcess,
    /// `CC`, `CTH`, `CTSH`: every non-originating material changes chapter, heading or
    /// subheading.
    Ctc(Ctc),
    /// A regional value content of at least `percent`.
    Rvc(Rvc),
    /// `MaxNOM 50%`: non-originating materials at most this share of the ex-works price.
    MaxNom(u8),
    /// `PC 25%`: ATIGA partial cumulation, a regional value content of at least this share.
    PartialCumulation(u8),
}

/// A regional-value-content threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rvc {
    /// The threshold in percent (1–100); the RVC must be not less than it.
    pub percent: u8,
    /// A method the rule imposes; otherwise the exporter's or the country's.
    pub method: Option<RvcMethod>,
    /// How the threshold was written.
    pub notation: RvcNotation,
}

/// How an RVC threshold was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RvcNotation {
    /// `RVC40` (RCEP, ATIGA annexes).
    Compact,
    /// `RVC 35%` (AIFTA).
    Spaced,
    /// `35%` (Form D box 8).
    Percent,
}

/// A class of the nomenclature named in an exclusion; `from..=to` at one level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassRef {
    /// `Chapter 01`, `Chapters 50 through 63`.
    Chapters(u8, u8),
    /// `heading 2403`, `headings 2401 through 2403`.
    Headings(u16, u16),
    /// `subheading 1211.20`, `subheadings 1211.20 through 1211.90`.
    Subheadings(u32, u32),
}

impl ClassRef {
    /// Whether a material of chapter/heading/subheading (as numbers) falls in this class.
    pub fn contains(&self, chapter: u8, heading: u16, subheading: u32) -> bool {
        match *self {
            ClassRef::Chapters(a, b) => (a..=b).contains(&chapter),
            ClassRef::Headings(a, b) => (a..=b).contains(&heading),
            ClassRef::Subheadings(a, b) => (a..=b).contains(&subheading),
        }
    }
}

impl Rule {
    /// The alternatives the exporter may choose from: the parts of a top-level `or`, or the
    /// rule itself.
    pub fn alternatives(&self) -> &[Rule] {
        match self {
            Rule::Any(alts, _) => alts,
            other => std::slice::from_ref(other),
        }
    }

    /// Whether a tariff-change test (CC, CTH, CTSH) occurs anywhere in the rule.
    pub fn has_ctc(&self) -> bool {
        self.any_atom(&|a| matches!(a, Atom::Ctc(_)))
    }

    /// Whether some atom satisfies `f`.
    pub fn any_atom(&self, f: &dyn Fn(&Atom) -> bool) -> bool {
        match self {
            Rule::Any(v, _) | Rule::All(v, _) => v.iter().any(|r| r.any_atom(f)),
            Rule::Except(r, _) => r.any_atom(f),
            Rule::Atom(a) => f(a),
        }
    }

    /// The first RVC threshold in reading order, if any.
    pub fn first_rvc(&self) -> Option<Rvc> {
        match self {
            Rule::Any(v, _) | Rule::All(v, _) => v.iter().find_map(Rule::first_rvc),
            Rule::Except(r, _) => r.first_rvc(),
            Rule::Atom(Atom::Rvc(r)) => Some(*r),
            Rule::Atom(_) => None,
        }
    }

    /// The tariff-change tests of the rule in reading order, with the exclusions that apply
    /// to each.
    pub fn ctc_tests(&self) -> Vec<(Ctc, Vec<ClassRef>)> {
        fn walk(r: &Rule, excl: &mut Vec<ClassRef>, out: &mut Vec<(Ctc, Vec<ClassRef>)>) {
            match r {
                Rule::Any(v, _) | Rule::All(v, _) => v.iter().for_each(|r| walk(r, excl, out)),
                Rule::Except(r, refs) => {
                    let n = excl.len();
                    excl.extend_from_slice(refs);
                    walk(r, excl, out);
                    excl.truncate(n);
                }
                Rule::Atom(Atom::Ctc(c)) => out.push((*c, excl.clone())),
                Rule::Atom(_) => {}
            }
        }
        let mut out = Vec::new();
        walk(self, &mut Vec::new(), &mut out);
        out
    }
}

impl fmt::Display for RvcMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl fmt::Display for Atom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Atom::WhollyObtained => f.write_str("WO"),
            Atom::ProducedEntirely => f.write_str("PE"),
            Atom::ChemicalReaction => f.write_str("CR"),
            Atom::SpecificProcess => f.write_str("SP"),
            Atom::Ctc(c) => f.write_str(c.code()),
            Atom::Rvc(r) => {
                match r.notation {
                    RvcNotation::Compact => write!(f, "RVC{}", r.percent)?,
                    RvcNotation::Spaced => write!(f, "RVC {}%", r.percent)?,
                    RvcNotation::Percent => write!(f, "{}%", r.percent)?,
                }
                match r.method {
                    Some(m) => write!(f, "({m})"),
                    None => Ok(()),
                }
            }
            Atom::MaxNom(p) => write!(f, "MaxNOM {p}%"),
            Atom::PartialCumulation(p) => write!(f, "PC {p}%"),
        }
    }
}

impl fmt::Display for ClassRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ClassRef::Chapters(a, b) if a == b => write!(f, "Chapter {a:02}"),
            ClassRef::Chapters(a, b) => write!(f, "Chapters {a:02} through {b:02}"),
            ClassRef::Headings(a, b) if a == b => write!(f, "heading {a:04}"),
            ClassRef::Headings(a, b) => write!(f, "headings {a:04} through {b:04}"),
            ClassRef::Subheadings(a, b) if a == b => write!(f, "subheading {}", dotted6(a)),
            ClassRef::Subheadings(a, b) => write!(f, "subheadings {} through {}", dotted6(a), dotted6(b)),
        }
    }
}

fn dotted6(n: u32) -> String {
    format!("{:04}.{:02}", n / 100, n % 100)
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::Any(alts, word) => {
                let sep = match word {
                    OrWord::Or => " or ",
                    OrWord::Semicolon => "; ",
                };
                for (i, r) in alts.iter().enumerate() {
                    if i > 0 {
                        f.write_str(sep)?;
                    }
                    // A nested `or` keeps its own group; everything else binds tighter.
                    write_grouped(f, r, matches!(r, Rule::Any(..)))?;
                }
                Ok(())
            }
            Rule::All(parts, word) => {
                let sep = match word {
                    AndWord::Plus => " + ",
                    AndWord::And => " and ",
                };
                for (i, r) in parts.iter().enumerate() {
                    if i > 0 {
                        f.write_str(sep)?;
                    }
                    write_grouped(f, r, matches!(r, Rule::Any(..) | Rule::All(..)))?;
                }
                Ok(())
            }
            Rule::Except(inner, refs) => {
                write_grouped(f, inner, matches!(**inner, Rule::Any(..) | Rule::All(..)))?;
                f.write_str(" except from ")?;
                for (i, c) in refs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{c}")?;
                }
                Ok(())
            }
            Rule::Atom(a) => write!(f, "{a}"),
        }
    }
}

fn write_grouped(f: &mut fmt::Formatter<'_>, r: &Rule, parens: bool) -> fmt::Result {
    if parens { write!(f, "({r})") } else { write!(f, "{r}") }
}
