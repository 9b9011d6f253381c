//! The error a strong type gives when text does not parse into it.

use std::fmt;

/// Why a value could not be built. `code` is stable (e.g. `HS_UNKNOWN`); `value` is the
/// offending input, cut to 64 characters so that hostile input does not flood a report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ParseError {
    /// Stable, machine-readable code.
    pub code: &'static str,
    /// The input that was refused (shortened).
    pub value: String,
    /// Extra human-readable detail, if any.
    pub detail: Option<String>,
}

impl ParseError {
    pub(crate) fn new(code: &'static str, value: &str) -> Self {
        let mut v: String = value.chars().take(64).collect();
        if v.len() < value.len() {
            v.push('…');
        }
        ParseError { code, value: v, detail: None }
    }

    pub(crate) fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {:?}", self.code, self.value)?;
        if let Some(d) = &self.detail {
            write!(f, " ({d})")?;
        }
        Ok(())
    }
}
