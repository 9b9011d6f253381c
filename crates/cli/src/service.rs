//! Running a long-lived service (`originlink node`, `originlink gateway`): announce the bound
//! address on standard output, serve until SIGTERM or Ctrl-C, then stop gracefully.

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
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        stop.trigger();
    });
    if let Err(e) = run.await {
        bail!("server failed: {e}");
    }
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
