//! Running a long-lived service (`originlink node`, `originlink gateway`): announce the bound
//! address on standard output, serve until SIGTERM or Ctrl-C
//! ([`originlink_service::serve_until_signal`]), then stop gracefully.

use std::future::Future;
use std::io::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::{Result, bail};
use originlink_exchange::server::Shutdown;

/// Prints `originlink WHAT listening on https://ADDR` (tests and scripts read the port from
/// it), then drives `run` until a signal triggers `stop`.
pub async fn serve_until_signal(
    what: &str,
    addr: SocketAddr,
    stop: Shutdown,
    run: impl Future<Output = std::io::Result<()>>,
) -> Result<ExitCode> {
    outln!("originlink {what} listening on https://{addr}");
    std::io::stdout().flush().ok();
    if let Err(e) = originlink_service::serve_until_signal(move || stop.trigger(), run).await {
        bail!("server failed: {e}");
    }
    Ok(ExitCode::SUCCESS)
}
