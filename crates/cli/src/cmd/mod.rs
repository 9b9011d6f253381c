//! One module per subcommand.

pub mod convert;
pub mod example;
pub mod validate;
