//! The parser of the rule language (grammar in `docs/rules-of-origin.md`, "Rule language").
//!
//! Words are matched without regard to case. Errors give the column of the offending token.
//! The input is bounded (length and nesting) so that hostile text cannot exhaust the stack.

use crate::error::RuleError;
use crate::rule::{AndWord, Atom, ClassRef, Ctc, OrWord, Rule, Rvc, RvcNotation};
use crate::settings::RvcMethod;

/// Longest rule text accepted, in characters.
pub const MAX_RULE_LEN: usize = 2000;
/// Deepest nesting of parentheses accepted.
pub const MAX_DEPTH: usize = 32;

/// Parses a rule such as `RVC40 or CTH except from heading 2403`.
pub fn parse_rule(text: &str) -> Result<Rule, RuleError> {
    if text.chars().count() > MAX_RULE_LEN {
        return Err(RuleError::new(
            "RULE_TOO_LONG",
            MAX_RULE_LEN + 1,
            format!("a rule has at most {MAX_RULE_LEN} characters"),
        ));
    }
    let toks = lex(text)?;
    if toks.len() == 1 {
        return Err(RuleError::new("RULE_EMPTY", 1, "the rule is empty"));
    }
    let mut p = Parser { toks, pos: 0, depth: 0 };
    let rule = p.alt()?;
    let t = p.peek();
    if t.kind != Kind::End {
        return Err(p.unexpected(t, "`or`, `and`, `+` or the end of the rule"));
    }
    Ok(rule)
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// Letters, with inner hyphens (`build-down`).
    Word(String),
    /// Digits with optional dots (`40`, `1211.20`, `24.03`).
    Num(String),
    Sym(char),
    End,
}

#[derive(Debug, Clone)]
struct Tok {
    kind: Kind,
    col: usize,
}

fn lex(text: &str) -> Result<Vec<Tok>, RuleError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let col = i + 1;
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_alphabetic() {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphabetic()
                    || (chars[i] == '-' && chars.get(i + 1).is_some_and(|n| n.is_ascii_alphabetic())))
            {
                i += 1;
            }
            out.push(Tok { kind: Kind::Word(chars[start..i].iter().collect()), col });
        } else if c.is_ascii_digit() {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_digit()
                    || (chars[i] == '.' && chars.get(i + 1).is_some_and(|n| n.is_ascii_digit())))
            {
                i += 1;
            }
            out.push(Tok { kind: Kind::Num(chars[start..i].iter().collect()), col });
        } else if "(),;+%-".contains(c) {
            out.push(Tok { kind: Kind::Sym(c), col });
            i += 1;
        } else {
            return Err(RuleError::new("RULE_SYNTAX", col, format!("unexpected character `{c}`")));
        }
    }
    out.push(Tok { kind: Kind::End, col: chars.len() + 1 });
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    depth: usize,
}

fn word_is(t: &Tok, w: &str) -> bool {
    matches!(&t.kind, Kind::Word(s) if s.eq_ignore_ascii_case(w))
}

fn describe(t: &Tok) -> String {
    match &t.kind {
        Kind::Word(w) => format!("`{w}`"),
        Kind::Num(n) => format!("`{n}`"),
        Kind::Sym(c) => format!("`{c}`"),
        Kind::End => "the end of the rule".to_owned(),
    }
}

/// Which level of the nomenclature a class reference names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Chapter,
    Heading,
    Subheading,
}

impl Parser {
    fn peek(&self) -> Tok {
        self.toks[self.pos.min(self.toks.len() - 1)].clone()
    }
    fn peek_at(&self, ahead: usize) -> Tok {
        self.toks[(self.pos + ahead).min(self.toks.len() - 1)].clone()
    }
    fn bump(&mut self) -> Tok {
        let t = self.peek();
        if self.pos < self.toks.len() - 1 {
            self.pos += 1;
        }
        t
    }
    fn unexpected(&self, t: Tok, expected: &str) -> RuleError {
        RuleError::new("RULE_SYNTAX", t.col, format!("expected {expected}, found {}", describe(&t)))
    }

    fn alt(&mut self) -> Result<Rule, RuleError> {
        let first = self.conj()?;
        let mut parts = vec![first];
        let mut word = None;
        loop {
            let t = self.peek();
            let w = if word_is(&t, "or") {
                OrWord::Or
            } else if t.kind == Kind::Sym(';') {
                OrWord::Semicolon
            } else {
                break;
            };
            self.bump();
            word.get_or_insert(w);
            parts.push(self.conj()?);
        }
        Ok(match word {
            Some(w) => Rule::Any(parts, w),
            None => parts.remove(0),
        })
    }

    fn conj(&mut self) -> Result<Rule, RuleError> {
        let first = self.unary()?;
        let mut parts = vec![first];
        let mut word = None;
        loop {
            let t = self.peek();
            let w = if word_is(&t, "and") {
                AndWord::And
            } else if t.kind == Kind::Sym('+') {
                AndWord::Plus
            } else {
                break;
            };
            self.bump();
            word.get_or_insert(w);
            parts.push(self.unary()?);
        }
        Ok(match word {
            Some(w) => Rule::All(parts, w),
            None => parts.remove(0),
        })
    }

    fn unary(&mut self) -> Result<Rule, RuleError> {
        let t = self.peek();
        let mut rule = if t.kind == Kind::Sym('(') {
            self.bump();
            self.depth += 1;
            if self.depth > MAX_DEPTH {
                return Err(RuleError::new(
                    "RULE_TOO_DEEP",
                    t.col,
                    format!("parentheses nest at most {MAX_DEPTH} deep"),
                ));
            }
            let inner = self.alt()?;
            self.depth -= 1;
            let close = self.bump();
            if close.kind != Kind::Sym(')') {
                return Err(self.unexpected(close, "`)`"));
            }
            inner
        } else {
            Rule::Atom(self.atom()?)
        };
        while word_is(&self.peek(), "except") {
            let except = self.bump();
            let from = self.bump();
            if !word_is(&from, "from") {
                return Err(self.unexpected(from, "`from` after `except`"));
            }
            if !rule.has_ctc() {
                return Err(RuleError::new(
                    "RULE_EXCEPT_WITHOUT_CTC",
                    except.col,
                    "`except from` must follow a tariff-change test (CC, CTH or CTSH)",
                ));
            }
            let refs = self.class_refs()?;
            rule = Rule::Except(Box::new(rule), refs);
        }
        Ok(rule)
    }

    fn atom(&mut self) -> Result<Atom, RuleError> {
        let t = self.bump();
        let expected = "a test (WO, PE, CR, SP, CC, CTH, CTSH, RVC40, 40%, MaxNOM 50%, PC 25%) or `(`";
        match &t.kind {
            Kind::Word(w) => match w.to_ascii_uppercase().as_str() {
                "WO" => Ok(Atom::WhollyObtained),
                "PE" => Ok(Atom::ProducedEntirely),
                "CR" => Ok(Atom::ChemicalReaction),
                "SP" => Ok(Atom::SpecificProcess),
                "CC" => Ok(Atom::Ctc(Ctc::Chapter)),
                "CTH" => Ok(Atom::Ctc(Ctc::Heading)),
                "CTSH" => Ok(Atom::Ctc(Ctc::Subheading)),
                "RVC" => {
                    let spaced = self.peek().col > t.col + 3;
                    let percent = self.percent(true)?;
                    let notation =
                        if percent.1 || spaced { RvcNotation::Spaced } else { RvcNotation::Compact };
                    let method = self.method()?;
                    Ok(Atom::Rvc(Rvc { percent: percent.0, method, notation }))
                }
                "MAXNOM" => Ok(Atom::MaxNom(self.percent(true)?.0)),
                "PC" => Ok(Atom::PartialCumulation(self.percent(true)?.0)),
                _ => Err(self.unexpected(t, expected)),
            },
            Kind::Num(_) => {
                self.pos -= 1;
                let (percent, _) = self.percent(false)?;
                Ok(Atom::Rvc(Rvc { percent, method: None, notation: RvcNotation::Percent }))
            }
            _ => Err(self.unexpected(t, expected)),
        }
    }

    /// An integer percentage 1–100; the `%` sign is optional when `sign_optional`. Returns
    /// whether a `%` was written.
    fn percent(&mut self, sign_optional: bool) -> Result<(u8, bool), RuleError> {
        let t = self.bump();
        let Kind::Num(n) = &t.kind else {
            return Err(self.unexpected(t, "a percentage such as 40"));
        };
        let value = match n.parse::<u8>() {
            Ok(v) if (1..=100).contains(&v) => v,
            _ => {
                return Err(RuleError::new(
                    "RULE_NUMBER",
                    t.col,
                    format!("`{n}` is not a whole percentage from 1 to 100"),
                ));
            }
        };
        let has_sign = self.peek().kind == Kind::Sym('%');
        if has_sign {
            self.bump();
        } else if !sign_optional {
            let next = self.peek();
            return Err(self.unexpected(next, "`%` after a bare number"));
        }
        Ok((value, has_sign))
    }

    fn method(&mut self) -> Result<Option<RvcMethod>, RuleError> {
        if self.peek().kind != Kind::Sym('(') {
            return Ok(None);
        }
        // `RVC40 (CTH or …)` is not valid anyway; a `(` right here opens a method.
        let open = self.peek_at(1);
        let Kind::Word(w) = &open.kind else {
            return Err(self.unexpected(open, "`build-down` or `build-up`"));
        };
        let Some(m) = RvcMethod::parse(w) else {
            return Err(self.unexpected(open, "`build-down` or `build-up`"));
        };
        self.bump();
        self.bump();
        let close = self.bump();
        if close.kind != Kind::Sym(')') {
            return Err(self.unexpected(close, "`)`"));
        }
        Ok(Some(m))
    }

    fn level_word(t: &Tok) -> Option<Level> {
        let Kind::Word(w) = &t.kind else { return None };
        match w.to_ascii_lowercase().as_str() {
            "chapter" | "chapters" => Some(Level::Chapter),
            "heading" | "headings" => Some(Level::Heading),
            "subheading" | "subheadings" => Some(Level::Subheading),
            _ => None,
        }
    }

    fn class_refs(&mut self) -> Result<Vec<ClassRef>, RuleError> {
        let kw = self.bump();
        let Some(mut level) = Self::level_word(&kw) else {
            return Err(self.unexpected(kw, "`Chapter`, `heading` or `subheading`"));
        };
        let mut refs = vec![self.class_range(level)?];
        loop {
            let sep = self.peek();
            let is_sep = sep.kind == Kind::Sym(',') || word_is(&sep, "and") || word_is(&sep, "or");
            if !is_sep {
                break;
            }
            // The list goes on only if a class follows; otherwise the `and`/`or` joins rules.
            let next = self.peek_at(1);
            if let Some(l) = Self::level_word(&next) {
                self.bump();
                self.bump();
                level = l;
            } else if matches!(next.kind, Kind::Num(_)) && self.peek_at(2).kind != Kind::Sym('%') {
                // `headings 2401, 2402 and 2403`: the level carries over.
                self.bump();
            } else {
                break;
            }
            refs.push(self.class_range(level)?);
        }
        Ok(refs)
    }

    fn class_range(&mut self, level: Level) -> Result<ClassRef, RuleError> {
        let from_tok = self.bump();
        let from = self.class_code(&from_tok, level)?;
        let t = self.peek();
        let to = if word_is(&t, "through") || t.kind == Kind::Sym('-') {
            self.bump();
            let to_tok = self.bump();
            let to = self.class_code(&to_tok, level)?;
            if to < from {
                return Err(RuleError::new(
                    "RULE_SYNTAX",
                    to_tok.col,
                    "a range must go from the lower code to the higher",
                ));
            }
            to
        } else {
            from
        };
        // Widths are checked in class_code, so the casts cannot truncate.
        Ok(match level {
            Level::Chapter => ClassRef::Chapters(from as u8, to as u8),
            Level::Heading => ClassRef::Headings(from as u16, to as u16),
            Level::Subheading => ClassRef::Subheadings(from, to),
        })
    }

    fn class_code(&self, t: &Tok, level: Level) -> Result<u32, RuleError> {
        let Kind::Num(n) = &t.kind else {
            return Err(self.unexpected(t.clone(), "a code"));
        };
        let digits: String = n.chars().filter(|c| *c != '.').collect();
        let dots: Vec<usize> = n.char_indices().filter(|(_, c)| *c == '.').map(|(i, _)| i).collect();
        let (want, ok_dots): (usize, &[&[usize]]) = match level {
            Level::Chapter => (2, &[&[]]),
            Level::Heading => (4, &[&[], &[2]]),
            Level::Subheading => (6, &[&[], &[4]]),
        };
        if digits.len() != want || !ok_dots.contains(&dots.as_slice()) {
            let what = match level {
                Level::Chapter => "a chapter has 2 digits, e.g. 01",
                Level::Heading => "a heading has 4 digits, e.g. 2403 or 24.03",
                Level::Subheading => "a subheading has 6 digits, e.g. 1211.20",
            };
            return Err(RuleError::new("RULE_SYNTAX", t.col, format!("`{n}`: {what}")));
        }
        digits
            .parse::<u32>()
            .map_err(|_| RuleError::new("RULE_SYNTAX", t.col, format!("`{n}` is not a code")))
    }
}
