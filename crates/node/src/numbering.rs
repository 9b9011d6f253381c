//! Certificate number patterns (`[authority] number_pattern`), e.g. `KH-{year}-{seq:6}`:
//! parsed when the configuration is checked, rendered at every approval.

/// A parsed number pattern, e.g. `KH-{year}-{seq:6}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberPattern {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(String),
    Year,
    Seq(usize),
    Country,
    Issuer,
}

impl NumberPattern {
    /// Parses a pattern. It needs exactly one `{seq}` / `{seq:N}` (N ≤ 12).
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut parts = vec![];
        let mut rest = s;
        while let Some(open) = rest.find('{') {
            if rest[..open].contains('}') {
                return Err("unopened `}`".into());
            }
            if open > 0 {
                parts.push(Part::Lit(rest[..open].to_owned()));
            }
            let close = rest[open..].find('}').ok_or("unclosed `{`")? + open;
            let name = &rest[open + 1..close];
            parts.push(match name {
                "year" => Part::Year,
                "country" => Part::Country,
                "issuer" => Part::Issuer,
                "seq" => Part::Seq(1),
                _ => match name.strip_prefix("seq:").and_then(|n| n.parse::<usize>().ok()) {
                    Some(w) if (1..=12).contains(&w) => Part::Seq(w),
                    _ => return Err(format!("unknown placeholder {{{name}}}")),
                },
            });
            rest = &rest[close + 1..];
        }
        if !rest.is_empty() {
            if rest.contains('}') {
                return Err("unopened `}`".into());
            }
            parts.push(Part::Lit(rest.to_owned()));
        }
        if parts.iter().filter(|p| matches!(p, Part::Seq(_))).count() != 1 {
            return Err("needs exactly one {seq} or {seq:N}".into());
        }
        Ok(NumberPattern { parts })
    }

    fn render_with(&self, year: i32, country: &str, issuer: &str, seq: Option<i64>) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Year => out.push_str(&year.to_string()),
                Part::Country => out.push_str(country),
                Part::Issuer => out.push_str(issuer),
                Part::Seq(w) => match seq {
                    Some(n) => out.push_str(&format!("{n:0w$}", w = *w)),
                    None => out.push('#'),
                },
            }
        }
        out
    }

    /// The number for sequence value `seq`.
    pub fn render(&self, year: i32, country: &str, issuer: &str, seq: i64) -> String {
        self.render_with(year, country, issuer, Some(seq))
    }

    /// The sequence scope: numbers are gapless within it (a new year starts a new scope when
    /// the pattern has `{year}`).
    pub fn scope(&self, year: i32, country: &str, issuer: &str) -> String {
        format!("{issuer}|{}", self.render_with(year, country, issuer, None))
    }
}

#[cfg(test)]
mod tests {
    use super::NumberPattern;

    #[test]
    fn patterns_render_and_scope() {
        let p = NumberPattern::parse("KH-{year}-{seq:6}").expect("valid");
        assert_eq!(p.render(2026, "KH", "KH-MOC", 123), "KH-2026-000123");
        assert_eq!(p.render(2026, "KH", "KH-MOC", 1_234_567), "KH-2026-1234567");
        assert_eq!(p.scope(2026, "KH", "KH-MOC"), "KH-MOC|KH-2026-#");
        assert_ne!(p.scope(2027, "KH", "KH-MOC"), p.scope(2026, "KH", "KH-MOC"));
        let q = NumberPattern::parse("{country}/{issuer}/{seq}").expect("valid");
        assert_eq!(q.render(2026, "TH", "DFT", 7), "TH/DFT/7");
    }

    #[test]
    fn bad_patterns_are_refused() {
        for bad in ["KH-{year}", "{seq}{seq}", "{seq:0}", "{seq:13}", "{nope}{seq}", "{seq", "x}{seq}"] {
            assert!(NumberPattern::parse(bad).is_err(), "{bad}");
        }
    }
}
