//! A single-pass scanner that reads the two facts the policy needs from a UBL document
//! (issuing country, issue date) without building a DOM: the verify hot path already paid for
//! one full parse inside `originlink-xmldsig`.
//!
//! It only runs on documents that `verify_enveloped` has accepted, so the input is known to be
//! well-formed UTF-8 XML without a DTD. It resolves namespaces properly, decodes character and
//! entity references, joins text and CDATA, and skips comments and processing instructions,
//! exactly as [`crate::document::facts_from_root`] sees the document. Any surprise returns
//! `None`, and the caller falls back to the DOM; tests and the fuzz target check that both
//! agree.

use originlink_model::CountryCode;

use crate::policy::DocumentFacts;

const CBC: &str = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2";
const CAC: &str = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Other,
    Root,
    App,
    IssuingCountry,
    Code,
    IssueDate,
}

/// The facts, when the fast scan finds exactly one of each and they parse; `None` otherwise.
pub(crate) fn facts(xml: &[u8]) -> Option<DocumentFacts> {
    let s = std::str::from_utf8(xml).ok()?;
    let s = s.strip_prefix('\u{feff}').unwrap_or(s);
    let b = s.as_bytes();
    let mut i = 0;
    // Namespace bindings in scope: (prefix, uri); `frames` holds how many each element added.
    let mut ns: Vec<(&str, String)> = Vec::new();
    let mut stack: Vec<(Role, usize)> = Vec::new();
    let (mut dates, mut apps, mut countries, mut codes) = (0u32, 0u32, 0u32, 0u32);
    let (mut date_text, mut code_text) = (String::new(), String::new());
    while i < b.len() {
        if b[i] != b'<' {
            let end = s.get(i..)?.find('<').map_or(b.len(), |n| i + n);
            let text = s.get(i..end)?;
            match stack.last().map(|r| r.0) {
                Some(Role::IssueDate) => unescape_into(text, &mut date_text)?,
                Some(Role::Code) => unescape_into(text, &mut code_text)?,
                _ => {}
            }
            i = end;
            continue;
        }
        let rest = s.get(i..)?;
        if let Some(r) = rest.strip_prefix("<!--") {
            i += 4 + r.find("-->")? + 3;
        } else if let Some(r) = rest.strip_prefix("<![CDATA[") {
            let n = r.find("]]>")?;
            match stack.last().map(|r| r.0) {
                Some(Role::IssueDate) => date_text.push_str(&r[..n]),
                Some(Role::Code) => code_text.push_str(&r[..n]),
                _ => {}
            }
            i += 9 + n + 3;
        } else if rest.starts_with("<?") {
            i += rest.find("?>")? + 2;
        } else if rest.starts_with("<!") {
            return None; // a DTD: never reaches here after xmldsig, but do not guess
        } else if rest.starts_with("</") {
            i += rest.find('>')? + 1;
            let (_, added) = stack.pop()?;
            ns.truncate(ns.len().checked_sub(added)?);
        } else {
            // Start tag: name, attributes, `>` or `/>`.
            let mut j = i + 1;
            while j < b.len() && !matches!(b[j], b' ' | b'\t' | b'\r' | b'\n' | b'>' | b'/') {
                j += 1;
            }
            let name = s.get(i + 1..j)?;
            let mut added = 0;
            let self_closing;
            loop {
                while j < b.len() && matches!(b[j], b' ' | b'\t' | b'\r' | b'\n') {
                    j += 1;
                }
                match b.get(j)? {
                    b'>' => {
                        self_closing = false;
                        j += 1;
                        break;
                    }
                    b'/' if b.get(j + 1) == Some(&b'>') => {
                        self_closing = true;
                        j += 2;
                        break;
                    }
                    b'/' => return None,
                    _ => {}
                }
                let eq = j + s.get(j..)?.find('=')?;
                let attr = s.get(j..eq)?.trim_end();
                if attr.is_empty() || attr.contains(['<', '>']) {
                    return None;
                }
                let mut k = eq + 1;
                while k < b.len() && matches!(b[k], b' ' | b'\t' | b'\r' | b'\n') {
                    k += 1;
                }
                let q = *b.get(k)?;
                if q != b'"' && q != b'\'' {
                    return None;
                }
                let vend = k + 1 + s.get(k + 1..)?.find(q as char)?;
                let raw = s.get(k + 1..vend)?;
                if attr == "xmlns" || attr.starts_with("xmlns:") {
                    let mut v = String::new();
                    unescape_into(raw, &mut v)?;
                    ns.push((attr.strip_prefix("xmlns:").unwrap_or(""), v));
                    added += 1;
                }
                j = vend + 1;
            }
            let (prefix, local) = name.split_once(':').unwrap_or(("", name));
            let uri = ns.iter().rev().find(|(p, _)| *p == prefix).map(|(_, u)| u.as_str());
            if uri.is_none() && !prefix.is_empty() {
                return None;
            }
            let uri = uri.unwrap_or("");
            let parent = stack.last().map(|r| r.0);
            let role = match (parent, uri, local) {
                (None, _, _) => Role::Root,
                (Some(Role::Root), CBC, "IssueDate") => {
                    dates += 1;
                    Role::IssueDate
                }
                (Some(Role::Root), CAC, "CertificateOfOriginApplication") => {
                    apps += 1;
                    Role::App
                }
                (Some(Role::App), CAC, "IssuingCountry") => {
                    countries += 1;
                    Role::IssuingCountry
                }
                (Some(Role::IssuingCountry), CBC, "IdentificationCode") => {
                    codes += 1;
                    Role::Code
                }
                // An element inside a value we read: the DOM path reports it.
                (Some(Role::IssueDate | Role::Code), _, _) => return None,
                _ => Role::Other,
            };
            if self_closing {
                ns.truncate(ns.len().checked_sub(added)?);
            } else {
                stack.push((role, added));
            }
            i = j;
        }
    }
    if (dates, apps, countries, codes) != (1, 1, 1, 1) || !stack.is_empty() {
        return None;
    }
    let issuing_country = CountryCode::parse(code_text.trim()).ok()?;
    let signing_date = crate::document::issue_date(date_text.trim())?;
    Some(DocumentFacts { issuing_country, signing_date })
}

/// Appends `raw` with the five predefined entities and character references decoded.
fn unescape_into(raw: &str, out: &mut String) -> Option<()> {
    let mut rest = raw;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let semi = rest[amp..].find(';')? + amp;
        let ent = &rest[amp + 1..semi];
        let c = match ent {
            "lt" => '<',
            "gt" => '>',
            "amp" => '&',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let n = if let Some(h) = ent.strip_prefix("#x") {
                    u32::from_str_radix(h, 16).ok()?
                } else {
                    ent.strip_prefix('#')?.parse().ok()?
                };
                char::from_u32(n)?
            }
        };
        out.push(c);
        rest = &rest[semi + 1..];
    }
    out.push_str(rest);
    Some(())
}
