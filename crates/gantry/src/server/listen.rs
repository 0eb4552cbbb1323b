//! The accept loop: each connection is served by hyper's HTTP/1.1 server with a header read
//! timeout, so a client that never finishes a request head (or sends nothing) is dropped
//! instead of holding a connection and a task forever. On shutdown it stops accepting, tells
//! long-lived responses to end (`stopping`: the SSE streams end at once), lets requests in
//! progress finish, closes any connection still busy after [`GRACE`], and returns once every
//! connection has closed.
//!
//! HTTP/1.1 only: hyper's HTTP/2 detection waits for the preface without a deadline, and no
//! Gantry client or GitHub speaks cleartext HTTP/2.

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::io;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{debug, error};

/// How long a connection may stay busy once the server stops.
pub const GRACE: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until `shutdown` completes and the open connections have closed;
/// `stopping` (whose receivers the app holds) becomes true when `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    header_read_timeout: Duration,
    shutdown: impl Future<Output = ()>,
    stopping: watch::Sender<bool>,
) {
    // Every connection task holds a receiver of each: `stop` tells them to finish, and
    // `open` counts them (its sender sees them all gone when every receiver is dropped).
    let stop_tx = stopping;
    let stop_rx = stop_tx.subscribe();
    let (open_tx, open_rx) = watch::channel(());
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = TowerToHyperService::new(app.clone());
        let conn = builder.serve_connection(TokioIo::new(stream), service);
        let mut stop = stop_rx.clone();
        let open = open_rx.clone();
        tokio::spawn(async move {
            tokio::pin!(conn);
            let mut stopping = false;
            let deadline = tokio::time::sleep(Duration::from_secs(365 * 86_400));
            tokio::pin!(deadline);
            loop {
                tokio::select! {
                    done = conn.as_mut() => {
                        if let Err(e) = done {
                            debug!(cause = %e, "connection ended with an error");
                        }
                        break;
                    }
                    _ = stop.changed(), if !stopping => {
                        stopping = true;
                        conn.as_mut().graceful_shutdown();
                        deadline.as_mut().reset(tokio::time::Instant::now() + GRACE);
                    }
                    () = &mut deadline, if stopping => {
                        debug!("connection still busy after the grace period: closed");
                        break;
                    }
                }
            }
            drop(open);
        });
    }
    drop(listener);
    drop(open_rx);
    let _ = stop_tx.send(true);
    open_tx.closed().await;
}

/// A connection that failed while being accepted is the client's problem; anything else (out
/// of file descriptors) is logged and waited out, as hyper and axum do.
async fn accept_failed(e: io::Error) {
    if matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    error!(cause = %e, "cannot accept a connection");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
