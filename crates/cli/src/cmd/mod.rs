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

/// Runs one SQL statement with `psql` against `url`; its output (tuples only, unaligned).
pub(crate) fn psql(url: &str, sql: &str) -> anyhow::Result<String> {
    use anyhow::Context as _;
    let out = std::process::Command::new("psql").args([url, "-tAXc", sql]).output().context("psql")?;
    if !out.status.success() {
        anyhow::bail!("psql: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8(out.stdout)?)
}
