//! Running the router on a TCP listener with graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;

use axum::serve::ListenerExt;
use tokio::net::TcpListener;

use crate::{AppState, router};

/// Serves the application on `listener` until `shutdown` completes, then lets in-flight requests
/// finish and checkpoints the state database.
///
/// Fails when accepting connections fails; a failed checkpoint is logged, not returned, because
/// the requests were already served.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let address = listener.local_addr()?;
    tracing::info!(%address, "serving HTTP");
    let app = router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    // Responses go out in several writes (headers, then streamed chunks); without TCP_NODELAY,
    // Nagle's algorithm holds the later ones until the client's delayed ACK, about 40 ms.
    let listener = listener.tap_io(|stream| {
        if let Err(error) = stream.set_nodelay(true) {
            tracing::warn!(%error, "cannot set TCP_NODELAY on a connection");
        }
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;

    tracing::info!("in-flight requests finished; checkpointing");
    let checkpoint = state.blocking(|instance| instance.close()).await;
    if let Err(e) = checkpoint {
        tracing::error!(error = %e.0, "checkpoint at shutdown failed; the next start replays the log");
    }
    tracing::info!("server stopped");
    Ok(())
}

/// Completes on ctrl-c or SIGTERM, the signals a terminal and a container runtime send.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = ctrl_c => tracing::info!("ctrl-c received; shutting down"),
        () = terminate => tracing::info!("SIGTERM received; shutting down"),
    }
}
