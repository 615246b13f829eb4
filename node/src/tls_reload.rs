//! Reloading the HTTPS certificates without a restart: on SIGHUP, and when the configured files
//! change. Both go through [`SniResolver::reload`], which swaps the certificate set for new
//! handshakes only (open connections keep theirs) and keeps the old set when the new files do
//! not load.

use std::sync::Arc;
use std::time::Duration;

use coffer_cluster::tls::{Fingerprint, SniResolver};
use tokio_util::sync::CancellationToken;

/// What started a reload (for the logs).
#[derive(Debug, Clone, Copy)]
enum Trigger {
    Sighup,
    FileChange,
}

impl Trigger {
    fn name(self) -> &'static str {
        match self {
            Trigger::Sighup => "SIGHUP",
            Trigger::FileChange => "file change",
        }
    }
}

/// Reads the files again off the runtime threads (file reads and certificate parsing block).
async fn reload(resolver: &Arc<SniResolver>, trigger: Trigger) -> bool {
    let r = resolver.clone();
    match tokio::task::spawn_blocking(move || r.reload()).await {
        Ok(Ok(())) => {
            for (file, names) in resolver.summary() {
                tracing::info!(trigger = trigger.name(), file = %file.display(), names = ?names,
                    "TLS certificate reloaded");
            }
            true
        }
        Ok(Err(e)) => {
            tracing::warn!(trigger = trigger.name(), error = %e,
                "TLS reload failed: keeping the old certificates");
            false
        }
        Err(e) => {
            tracing::error!(trigger = trigger.name(), error = %e, "TLS reload task failed");
            false
        }
    }
}

/// Reloads the TLS certificates on every SIGHUP. Without TLS, SIGHUP is ignored (instead of
/// ending the process).
pub(crate) async fn on_sighup(resolver: Option<Arc<SniResolver>>, shutdown: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot install the SIGHUP handler: certificate reload on SIGHUP disabled");
        return;
    };
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            got = hup.recv() => if got.is_none() { return },
        }
        match &resolver {
            None => tracing::info!("SIGHUP: no TLS configured, nothing to reload"),
            Some(r) => {
                reload(r, Trigger::Sighup).await;
            }
        }
    }
}

/// Checks the certificate files every `interval` and reloads when their content changed.
///
/// A pair replaced one file at a time is, for a moment, a new certificate with the old key: that
/// load fails, the old certificates stay, and the next check tries again (the warning is logged
/// once per distinct file state, not on every check), so the new pair is taken once both files
/// are in place.
pub(crate) async fn watch_files(
    resolver: Arc<SniResolver>,
    interval: Duration,
    shutdown: CancellationToken,
) {
    // A zero interval (possible from a hand-built Config) would panic in tokio and spin anyway.
    let mut tick = tokio::time::interval(interval.max(Duration::from_millis(10)));
    // A slow disk must not turn into a burst of back-to-back checks.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // the first tick is immediate: the files were just loaded
    let mut failed: Option<Fingerprint> = None;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let r = resolver.clone();
        let Ok(now) = tokio::task::spawn_blocking(move || r.files_fingerprint()).await else {
            continue;
        };
        if resolver.is_loaded(now) {
            failed = None;
            continue;
        }
        if failed == Some(now) {
            // Same files as the last failed attempt: retry quietly.
            let r = resolver.clone();
            if let Ok(Ok(())) = tokio::task::spawn_blocking(move || r.reload()).await {
                tracing::info!("TLS certificates reloaded after an earlier failure");
                failed = None;
            }
            continue;
        }
        if !reload(&resolver, Trigger::FileChange).await {
            failed = Some(now);
        }
    }
}
