//! The accepting side: handshake (mutual TLS, enforced by the verifiers before any stream
//! exists), the peer's node id from its certificate, one task per stream, graceful shutdown.

use bytes::Bytes;
use quinn::{Connection, Endpoint, Incoming, RecvStream, SendStream};
use rustls_pki_types::CertificateDer;
use tokio::sync::{mpsc, watch};

use super::frame::{self, Status};
use crate::identity::{node_id_of_cert, NodeId};
use crate::rpc::Handlers;

/// QUIC application close code when a peer is refused after the handshake.
const CLOSE_REFUSED: u32 = 1;

/// What every connection task shares.
#[derive(Clone)]
pub(crate) struct ServeCtx {
    pub(crate) handlers: Handlers,
    pub(crate) max_frame: usize,
    pub(crate) shutdown: watch::Receiver<bool>,
    /// Held by every task that may still answer; shutdown waits until all clones are gone.
    pub(crate) inflight: mpsc::Sender<()>,
}

/// The node id in a connection's verified peer certificate.
pub(crate) fn peer_node_id(conn: &Connection) -> Option<NodeId> {
    let identity = conn.peer_identity()?;
    let chain = identity.downcast::<Vec<CertificateDer<'static>>>().ok()?;
    node_id_of_cert(chain.first()?).ok()
}

/// Accepts connections until shutdown.
pub(crate) async fn accept_loop(endpoint: Endpoint, ctx: ServeCtx) {
    let mut shutdown = ctx.shutdown.clone();
    loop {
        let incoming = tokio::select! {
            _ = shutdown.wait_for(|s| *s) => break,
            incoming = endpoint.accept() => match incoming {
                Some(i) => i,
                None => break,
            },
        };
        tokio::spawn(serve_connection(incoming, ctx.clone()));
    }
}

async fn serve_connection(incoming: Incoming, ctx: ServeCtx) {
    let remote = incoming.remote_address();
    let conn = match incoming.await {
        Ok(c) => c,
        Err(e) => {
            // Includes every refused certificate: no stream was ever accepted.
            tracing::info!(%remote, error = %e, "inter-node handshake refused");
            return;
        }
    };
    let Some(peer) = peer_node_id(&conn) else {
        // The verifier already requires the id; this is a second lock on the same door.
        conn.close(CLOSE_REFUSED.into(), b"no node id");
        return;
    };
    tracing::debug!(%remote, peer, "inter-node connection up");
    let mut shutdown = ctx.shutdown.clone();
    loop {
        let (send, recv) = tokio::select! {
            _ = shutdown.wait_for(|s| *s) => break,
            stream = conn.accept_bi() => match stream {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(peer, error = %e, "inter-node connection closed");
                    break;
                }
            },
        };
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let _inflight = ctx.inflight.clone();
            if let Err(e) = serve_stream(peer, send, recv, &ctx).await {
                tracing::debug!(peer, error = %e, "rpc stream failed");
            }
        });
    }
}

async fn serve_stream(
    peer: NodeId,
    mut send: SendStream,
    mut recv: RecvStream,
    ctx: &ServeCtx,
) -> Result<(), frame::FrameError> {
    let head = match frame::read_request_head(&mut recv).await {
        Ok(h) => h,
        Err(e) => {
            let msg = Bytes::from(e.to_string());
            return frame::write_reply(&mut send, Status::BadRequest, msg).await;
        }
    };
    if head.len > ctx.max_frame as u64 {
        // Do not read (or buffer) the body: tell the sender to stop.
        let _ = recv.stop(0u32.into());
        let msg = Bytes::from(ctx.max_frame.to_string());
        return frame::write_reply(&mut send, Status::TooLarge, msg).await;
    }
    let Some(handler) = ctx.handlers.get(&head.channel) else {
        let _ = recv.stop(0u32.into());
        let msg = Bytes::from(head.channel);
        return frame::write_reply(&mut send, Status::UnknownChannel, msg).await;
    };
    let payload = frame::read_payload(&mut recv, head.len, ctx.max_frame).await?;
    match handler.handle(peer, payload).await {
        Ok(reply) if reply.len() > ctx.max_frame => {
            let msg = Bytes::from(format!(
                "reply of {} bytes exceeds the limit of {}",
                reply.len(),
                ctx.max_frame
            ));
            frame::write_reply(&mut send, Status::HandlerError, msg).await
        }
        Ok(reply) => frame::write_reply(&mut send, Status::Ok, reply).await,
        Err(e) => frame::write_reply(&mut send, Status::HandlerError, Bytes::from(e.message)).await,
    }
}
