//! The errors of this crate. Each carries a stable `code` and says where the problem is: a
//! column of a rule, a line of a PSR table, or a field of a `qualify` request.

use std::fmt;

/// A rule that does not parse. `column` counts characters from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {message}")]
pub struct RuleError {
    /// Stable code: `RULE_SYNTAX`, `RULE_EMPTY`, `RULE_TOO_LONG`, `RULE_TOO_DEEP`,
    /// `RULE_EXCEPT_WITHOUT_CTC`, `RULE_NUMBER`.
    pub code: &'static str,
    /// Where, in characters from 1.
    pub column: usize,
    /// What is wrong, for a person.
    pub message: String,
}

impl RuleError {
    pub(crate) fn new(code: &'static str, column: usize, message: impl Into<String>) -> Self {
        RuleError { code, column, message: message.into() }
    }
}

/// A PSR table that does not load. `line` counts from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code} line {line}: {message}")]
pub struct TableError {
    /// Stable code: `PSR_LINE`, `PSR_RANGE`, `PSR_RULE`, `PSR_OVERLAP`, `PSR_HEADER`.
    pub code: &'static str,
    /// The line of the table.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// A `qualify` request that cannot be assessed: the field is named as a path such as
/// `materials[2].value`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct InputError {
    /// Stable code, e.g. `AGREEMENT_UNKNOWN`, `HS_UNKNOWN`, `VALUE_NEGATIVE`, `VALUE_ZERO`,
    /// `RULE_SYNTAX`, `RVC_REQUIRED`.
    pub code: &'static str,
    /// The field, as a path from the top of the request (empty for the document itself).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl InputError {
    pub(crate) fn new(code: &'static str, field: &str, message: impl Into<String>) -> Self {
        InputError { code, field: field.to_owned(), message: message.into() }
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}: {}", self.code, self.message)
        } else {
            write!(f, "{} {}: {}", self.code, self.field, self.message)
        }
    }
}
