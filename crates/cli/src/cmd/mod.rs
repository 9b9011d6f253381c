//! One module per subcommand.

pub mod audit;
pub mod bench;
pub mod bench_exchange;
pub mod bench_scale;
pub mod convert;
pub mod demo;
pub mod example;
pub mod gateway;
pub mod keys;
pub mod node;
pub mod print;
pub mod qualify;
pub mod rules;
pub mod sign;
pub mod trust_list;
pub mod validate;
pub mod verify;
