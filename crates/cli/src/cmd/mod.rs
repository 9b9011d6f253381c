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

/// Creates the databases `{prefix}_{name}` on the PostgreSQL `server` afresh (dropped first,
/// with their connections) and gives the URL pattern of the nodes' (`{country}` for the
/// lower-case code) and the gateway's.
pub(crate) fn fresh_databases(
    server: &str,
    prefix: &str,
    names: &[&str],
) -> anyhow::Result<(String, String)> {
    let server = server.trim_end_matches('/');
    for db in names.iter().map(|c| format!("{prefix}_{c}")) {
        psql(&format!("{server}/postgres"), &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))?;
        psql(&format!("{server}/postgres"), &format!("CREATE DATABASE {db}"))?;
    }
    Ok((format!("{server}/{prefix}_{{country}}"), format!("{server}/{prefix}_gateway")))
}

/// Runs one SQL statement with `psql` against `url`; its output (tuples only, unaligned).
pub(crate) fn psql(url: &str, sql: &str) -> anyhow::Result<String> {
    use anyhow::Context as _;
    let out = std::process::Command::new("psql").args([url, "-tAXc", sql]).output().context("psql")?;
    if !out.status.success() {
        anyhow::bail!("psql: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8(out.stdout)?)
}
