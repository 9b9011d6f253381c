//! One module per subcommand.

pub mod convert;
pub mod example;
pub mod qualify;
pub mod rules;
pub mod validate;
