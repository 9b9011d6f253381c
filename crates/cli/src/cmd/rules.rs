//! `originlink rules`: the product-specific rules shipped for each agreement.

use std::process::ExitCode;

use anyhow::{Context, Result};
use originlink_model::{Agreement, HsCode};
use originlink_rules::{OriginSettings, PsrTable, Regime};

/// Look up rules of origin.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: RulesCommand,
}

#[derive(Debug, clap::Subcommand)]
enum RulesCommand {
    /// Print the rule that applies to an HS code and its legal source (exit 1 if none).
    Show {
        /// ATIGA or RCEP.
        #[arg(long)]
        agreement: String,
        /// The HS code as the agreement's table writes it (RCEP Annex 3A is HS 2012).
        #[arg(long)]
        hs: String,
    },
}

pub fn run(a: Args) -> Result<ExitCode> {
    match a.command {
        RulesCommand::Show { agreement, hs } => show(&agreement, &hs),
    }
}

fn show(agreement: &str, hs: &str) -> Result<ExitCode> {
    let agreement = Agreement::parse(agreement)
        .map_err(|_| anyhow::anyhow!("AGREEMENT_UNKNOWN --agreement: `{agreement}` is not ATIGA or RCEP"))?;
    // Tables may be in an older edition (RCEP: HS 2012), so the code is checked for form only.
    let code = HsCode::parse_syntax(hs).with_context(|| format!("HS_MALFORMED --hs: `{hs}`"))?;
    let table = PsrTable::builtin(agreement);
    outln!("agreement: {agreement}");
    outln!("hs:        {} (table in {})", code.dotted(), table.hs_edition);
    if let Some(row) = table.lookup(&code) {
        outln!("rule:      {}", row.rule);
        outln!("matched:   {} {}", row.range.level_name(), row.range);
        outln!("source:    {}", row.source);
        return Ok(ExitCode::SUCCESS);
    }
    let below: Vec<String> = table.rows_below(&code).map(|r| r.range.to_string()).collect();
    if !below.is_empty() {
        outln!("note:      the table has lines below this code: {}", below.join(", "));
    }
    let settings = OriginSettings::builtin(Regime::Agreement(agreement));
    match settings.general_rule {
        Some(rule) => {
            outln!("rule:      {rule}");
            outln!("matched:   no product-specific rule; the general rule applies");
            outln!("source:    {}", settings.source("general_rule").unwrap_or(""));
            Ok(ExitCode::SUCCESS)
        }
        None => {
            outln!("rule:      none shipped");
            outln!("source:    {}", settings.source("general_rule").unwrap_or(""));
            Ok(ExitCode::from(1))
        }
    }
}
