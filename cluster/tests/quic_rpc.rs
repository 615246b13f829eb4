//! QUIC transport between real endpoints on loopback: calls, sizes, deadlines, reconnects.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use coffer_cluster::{QuicConfig, Transport, TransportError};
use common::*;

#[tokio::test]
async fn round_trip_names_the_caller_from_its_certificate() {
    let ca = Ca::generate();
    let a = node(&ca, 1);
    let b = node(&ca, 2);
    assert_eq!((a.node_id(), b.node_id()), (1, 2));
    let echo = with_echo(&b);
    let t = a.transport();
    t.set_peer(2, b.local_addr().to_string());
    let reply = t.call(2, "echo", Bytes::from_static(b"hi")).await.unwrap();
    assert_eq!(&reply[..], b"1:hi");
    // An empty payload is a valid call too, and the connection is reused.
    let reply = t.call(2, "echo", Bytes::new()).await.unwrap();
    assert_eq!(&reply[..], b"1:");
    assert_eq!(echo.calls(), 2);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn concurrent_calls_share_one_connection() {
    let ca = Ca::generate();
    let a = node(&ca, 1);
    let b = node(&ca, 2);
    let echo = with_echo(&b);
    let t = a.transport();
    t.set_peer(2, b.local_addr().to_string());
    let calls = (0..200u32).map(|i| {
        let t = t.clone();
        async move {
            let reply = t.call(2, "echo", Bytes::from(i.to_string())).await.unwrap();
            assert_eq!(reply, Bytes::from(format!("1:{i}")));
        }
    });
    futures::future::join_all(calls).await;
    assert_eq!(echo.calls(), 200);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn eight_mib_payload_both_ways() {
    let ca = Ca::generate();
    let a = node(&ca, 1);
    let b = node(&ca, 2);
    with_echo(&b);
    let t = a.transport();
    t.set_peer(2, b.local_addr().to_string());
    let payload: Vec<u8> = (0..8 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let reply = t
        .call(2, "echo", Bytes::from(payload.clone()))
        .await
        .unwrap();
    assert_eq!(&reply[..2], b"1:");
    assert!(reply[2..] == payload[..], "8 MiB came back intact");
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn frame_limits_are_enforced_on_both_sides() {
    let ca = Ca::generate();
    let mut small = QuicConfig::new(any_port(), ca.tls(2));
    small.max_frame = 1024;
    let b = coffer_cluster::QuicNode::bind(small).unwrap();
    let echo = with_echo(&b);
    let a = node(&ca, 1);
    let t = a.transport();
    t.set_peer(2, b.local_addr().to_string());
    // The server refuses a request above its limit without running the handler.
    let err = t
        .call(2, "echo", Bytes::from(vec![0u8; 4096]))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            TransportError::FrameTooLarge {
                len: 4096,
                max: 1024
            }
        ),
        "{err}"
    );
    assert_eq!(echo.calls(), 0);
    // The client refuses above its own limit before sending.
    let err = t
        .call(2, "echo", Bytes::from(vec![0u8; 17 * 1024 * 1024]))
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::FrameTooLarge { .. }), "{err}");
    // And the connection still works.
    assert_eq!(&t.call(2, "echo", Bytes::new()).await.unwrap()[..], b"1:");
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn unknown_channel_handler_error_and_unknown_peer() {
    let ca = Ca::generate();
    let a = node(&ca, 1);
    let b = node(&ca, 2);
    b.register("refuse", Arc::new(Refuse));
    let t = a.transport();
    t.set_peer(2, b.local_addr().to_string());
    let err = t.call(2, "nope", Bytes::new()).await.unwrap_err();
    assert!(
        matches!(err, TransportError::UnknownChannel { node: 2, ref channel } if channel == "nope")
    );
    let err = t.call(2, "refuse", Bytes::new()).await.unwrap_err();
    assert!(
        matches!(err, TransportError::Remote { node: 2, ref message } if message == "no thanks")
    );
    let err = t.call(9, "echo", Bytes::new()).await.unwrap_err();
    assert!(
        matches!(err, TransportError::Unreachable { node: 9, .. }),
        "{err}"
    );
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn deadline_fires_against_a_slow_handler() {
    let ca = Ca::generate();
    let a = node(&ca, 1);
    let mut cfg_b = QuicConfig::new(any_port(), ca.tls(2));
    cfg_b.shutdown_grace = Duration::from_millis(300);
    let b = coffer_cluster::QuicNode::bind(cfg_b).unwrap();
    b.register("slow", Arc::new(Sleepy(Duration::from_secs(30))));
    with_echo(&b);
    let t = a.transport();
    t.set_peer(2, b.local_addr().to_string());
    let start = Instant::now();
    let err = t
        .call_with_deadline(2, "slow", Bytes::new(), Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(
        matches!(err, TransportError::Timeout { node: 2, .. }),
        "{err}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    // The default deadline comes from the config.
    let mut cfg = QuicConfig::new(any_port(), ca.tls(3));
    cfg.default_deadline = Duration::from_millis(200);
    let c = coffer_cluster::QuicNode::bind(cfg).unwrap();
    let tc = c.transport();
    tc.set_peer(2, b.local_addr().to_string());
    let err = tc.call(2, "slow", Bytes::new()).await.unwrap_err();
    assert!(matches!(err, TransportError::Timeout { .. }), "{err}");
    // A timed-out call does not spoil the connection.
    assert_eq!(&t.call(2, "echo", Bytes::new()).await.unwrap()[..], b"1:");
    a.shutdown().await;
    c.shutdown().await;
    // Shutdown waits for the sleeping handlers no longer than its grace period.
    let start = Instant::now();
    b.shutdown().await;
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn reconnects_after_the_peer_restarts() {
    let ca = Ca::generate();
    let a = node(&ca, 1);
    let b = node(&ca, 2);
    with_echo(&b);
    let addr = b.local_addr();
    let t = a.transport();
    t.set_peer(2, addr.to_string());
    assert_eq!(&t.call(2, "echo", Bytes::new()).await.unwrap()[..], b"1:");

    b.shutdown().await;
    drop(b);
    let err = t
        .call_with_deadline(2, "echo", Bytes::new(), Duration::from_millis(500))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            TransportError::Unreachable { .. } | TransportError::Timeout { .. }
        ),
        "{err}"
    );

    // Same address, new endpoint (new TLS session, new connection).
    let b = bind_retry(QuicConfig::new(addr, ca.tls(2))).await;
    let echo = with_echo(&b);
    let reply = t
        .call_with_deadline(
            2,
            "echo",
            Bytes::from_static(b"again"),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert_eq!(&reply[..], b"1:again");
    assert_eq!(echo.calls(), 1);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn calls_after_shutdown_are_refused_locally() {
    let ca = Ca::generate();
    let a = node(&ca, 1);
    let t = a.transport();
    a.shutdown().await;
    let err = t.call(2, "echo", Bytes::new()).await.unwrap_err();
    assert_eq!(err, TransportError::Closed);
}
