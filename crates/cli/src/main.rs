//! `originlink`: the one binary. Each subcommand lives in `cmd/<name>.rs` with an `Args`
//! struct and a `run(args) -> anyhow::Result<ExitCode>`.
//!
//! Exit codes are part of the interface: 0 success/valid, 1 invalid (or does not qualify),
//! 2 unreadable input or usage error, 3 cannot verify (trust list missing or outdated).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// `print!` for command output. `print!` panics when standard output is a closed pipe
/// (`originlink example | head`); this exits quietly instead, as Unix tools do.
macro_rules! out {
    ($($t:tt)*) => { $crate::io::stdout_write(format_args!($($t)*)) };
}

/// `println!` for command output; see [`out!`].
macro_rules! outln {
    () => { $crate::io::stdout_write(format_args!("\n")) };
    ($($t:tt)*) => { $crate::io::stdout_write(format_args!("{}\n", format_args!($($t)*))) };
}

mod cmd;
mod io;
mod service;

/// OriginLink: electronic certificates of origin, issued, signed, exchanged, verified and
/// used for preferential duty.
#[derive(Debug, Parser)]
#[command(name = "originlink", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print a realistic, valid sample certificate.
    Example(cmd::example::Args),
    /// Validate a certificate (XML or JSON, auto-detected).
    Validate(cmd::validate::Args),
    /// Convert a certificate between UBL XML and edi3 JSON.
    Convert(cmd::convert::Args),
    /// Assess whether a good originates, from its bill of materials (exit 0 yes, 1 no, 2 bad input).
    Qualify(cmd::qualify::Args),
    /// Look up rules of origin (product-specific rules and their sources).
    Rules(cmd::rules::Args),
    /// Create and rotate keys and certificates (country CA, document signing, node TLS, operator).
    Keys(cmd::keys::Args),
    /// Sign a certificate of origin: XML (XML-DSig) or JSON (detached JWS) in, signed out.
    Sign(cmd::sign::Args),
    /// Verify a signed certificate (exit 0 valid, 1 invalid, 3 cannot verify, 2 unreadable/usage).
    Verify(cmd::verify::Args),
    /// Print a signed certificate as an A4 PDF (Form D or RCEP) with its verification QR code.
    Print(cmd::print::Args),
    /// Build, verify and show the network operator's signed trust list.
    TrustList(cmd::trust_list::Args),
    /// Measure performance (`bench verify`: signature verification vs openssl speed).
    Bench(cmd::bench::Args),
    /// Run the country node (`--config node.toml`), `migrate` its database, `user add`.
    Node(cmd::node::Args),
    /// Run a whole region here: a gateway and three country nodes (KH, TH, VN) with mutual TLS,
    /// seeded and exchanging certificates (`--quick`: check the scenario and exit).
    Demo(cmd::demo::Args),
    /// Check the node's hash-chained audit log (`audit verify --config node.toml`).
    Audit(cmd::audit::Args),
    /// Run the regional gateway (`--config gw.toml`): store-and-forward hub between nodes.
    Gateway(cmd::gateway::Args),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ExitCode::from(2) } else { ExitCode::SUCCESS };
        }
    };
    let result = match cli.command {
        Command::Example(a) => cmd::example::run(a),
        Command::Validate(a) => cmd::validate::run(a),
        Command::Convert(a) => cmd::convert::run(a),
        Command::Qualify(a) => cmd::qualify::run(a),
        Command::Rules(a) => cmd::rules::run(a),
        Command::Keys(a) => cmd::keys::run(a),
        Command::Sign(a) => cmd::sign::run(a),
        Command::Verify(a) => cmd::verify::run(a),
        Command::Print(a) => cmd::print::run(a),
        Command::TrustList(a) => cmd::trust_list::run(a),
        Command::Bench(a) => cmd::bench::run(a),
        Command::Node(a) => cmd::node::run(a),
        Command::Audit(a) => cmd::audit::run(a),
        Command::Demo(a) => cmd::demo::run(a),
        Command::Gateway(a) => cmd::gateway::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
