//! `originlink example`: a realistic, valid sample certificate.

use std::process::ExitCode;

use anyhow::Result;
use originlink_formats::{json, xml};
use originlink_model::{Agreement, CountryCode, sample};

/// Print a realistic, valid sample certificate.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Agreement: ATIGA or RCEP.
    #[arg(long, value_parser = parse_agreement)]
    agreement: Agreement,
    /// Output format.
    #[arg(long, value_enum, default_value = "xml")]
    format: OutFormat,
    /// Exporting and issuing country (ISO 3166-1 alpha-2).
    #[arg(long, default_value = "KH", value_parser = parse_country)]
    from: CountryCode,
    /// Importing country (ISO 3166-1 alpha-2).
    #[arg(long, default_value = "TH", value_parser = parse_country)]
    to: CountryCode,
    /// Number of goods items (at least 1).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..))]
    items: u16,
    /// Sequence number: varies the certificate number and goods.
    #[arg(long, default_value_t = 0)]
    seq: u32,
}

/// An output format on the command line.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum OutFormat {
    /// OASIS UBL 2.4 CertificateOfOrigin XML.
    Xml,
    /// UN/CEFACT edi3 CertificateOfOrigin JSON.
    Json,
}

pub(crate) fn parse_agreement(s: &str) -> Result<Agreement, String> {
    Agreement::parse(s).map_err(|e| format!("{e}; expected ATIGA or RCEP"))
}

pub(crate) fn parse_country(s: &str) -> Result<CountryCode, String> {
    CountryCode::parse(s).map_err(|e| e.to_string())
}

pub fn run(a: Args) -> Result<ExitCode> {
    let today = chrono::Local::now().date_naive();
    let cert = sample::sample(a.agreement, a.from, a.to, today, usize::from(a.items), a.seq);
    let problems = originlink_model::validate(&cert);
    if let Some(p) = problems.first() {
        anyhow::bail!("cannot make a valid {} certificate from {} to {}: {p}", a.agreement, a.from, a.to);
    }
    let out = match a.format {
        OutFormat::Xml => xml::write_pretty(&cert),
        OutFormat::Json => json::write(&cert),
    };
    out!("{out}");
    Ok(ExitCode::SUCCESS)
}
