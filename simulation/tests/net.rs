//! The simulated network under the real `Transport` seam, on turmoil hosts: deliveries replay
//! from the seed, and loss, duplication, cuts (one way and both), holds and crashes behave as
//! a node must expect from a real network.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use coffer_cluster::{HandlerError, Handlers, NodeId, RpcHandler, Transport, TransportError};
use coffer_simulation::net::{LinkFaults, NetEvent, SimNet};

/// Answers with its node id and the payload; counts the requests it handled.
struct Echo {
    me: NodeId,
    handled: Arc<AtomicU64>,
}

#[async_trait::async_trait]
impl RpcHandler for Echo {
    async fn handle(&self, from: NodeId, payload: Bytes) -> Result<Bytes, HandlerError> {
        self.handled.fetch_add(1, Ordering::SeqCst);
        let mut out = format!("{}<-{from}:", self.me).into_bytes();
        out.extend_from_slice(&payload);
        Ok(Bytes::from(out))
    }
}

const CLIENT: NodeId = 100;
const DEADLINE: Duration = Duration::from_millis(500);

/// A turmoil simulation with storage nodes 1..=n serving "echo" on `net`.
fn sim_with_nodes(
    seed: u64,
    net: &SimNet,
    n: u64,
    handled: &[Arc<AtomicU64>],
) -> turmoil::Sim<'static> {
    let mut sim = turmoil::Builder::new()
        .rng_seed(seed)
        .simulation_duration(Duration::from_secs(120))
        .build();
    for id in 1..=n {
        let net = net.clone();
        let handled = handled[(id - 1) as usize].clone();
        sim.host(format!("n{id}"), move || {
            let net = net.clone();
            let handled = handled.clone();
            async move {
                let handlers = Handlers::default();
                handlers.register("echo", Arc::new(Echo { me: id, handled }));
                let _transport = net.attach(id, handlers);
                std::future::pending::<()>().await;
                Ok(())
            }
        });
    }
    sim
}

fn counters(n: usize) -> Vec<Arc<AtomicU64>> {
    (0..n).map(|_| Arc::new(AtomicU64::new(0))).collect()
}

/// 40 calls with loss, duplication and reordering; returns (outcomes, network events).
fn lossy_run(seed: u64) -> (Vec<String>, Vec<NetEvent>) {
    let net = SimNet::new(
        seed,
        LinkFaults {
            min_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(40),
            loss: 0.1,
            duplicate: 0.1,
        },
    );
    let handled = counters(3);
    let mut sim = sim_with_nodes(seed, &net, 3, &handled);
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let (net2, out2) = (net.clone(), outcomes.clone());
    sim.client("client", async move {
        let t = net2.attach(CLIENT, Handlers::default());
        let mut calls = Vec::new();
        for i in 0..40u64 {
            let t = t.clone();
            let out = out2.clone();
            calls.push(tokio::spawn(async move {
                let r = t
                    .call_with_deadline(1 + i % 3, "echo", Bytes::from(format!("m{i}")), DEADLINE)
                    .await;
                let line = match r {
                    Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                    Err(e) => format!("err {e}"),
                };
                out.lock()
                    .unwrap()
                    .push(format!("{:?} {line}", turmoil::elapsed()));
            }));
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
        for c in calls {
            c.await?;
        }
        Ok(())
    });
    sim.run().unwrap();
    let got = outcomes.lock().unwrap().clone();
    (got, net.events())
}

#[test]
fn the_same_seed_replays_the_same_deliveries() {
    let (a, ea) = lossy_run(11);
    let (b, eb) = lossy_run(11);
    assert_eq!(a, b, "outcomes in the same order");
    assert_eq!(ea, eb, "network events in the same order");
    let (c, ec) = lossy_run(12);
    assert!(a != c || ea != ec, "another seed, another run");
    // The faults did happen: some calls timed out, some requests came twice.
    assert!(a.iter().any(|l| l.contains("timed out")), "{a:?}");
    assert!(ea
        .iter()
        .any(|e| matches!(e, NetEvent::Delivered { copy: true, .. })));
    assert!(a.iter().any(|l| l.contains("<-100:m")), "{a:?}");
}

/// Runs `script` as the client; `crash` (if set) crashes that host once the client sets the
/// phase to 1.
fn scripted<F>(seed: u64, faults: LinkFaults, crash: Option<&str>, script: F) -> Vec<Arc<AtomicU64>>
where
    F: FnOnce(
            SimNet,
            coffer_simulation::net::SimTransport,
            Arc<AtomicU8>,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>
        + 'static,
{
    let net = SimNet::new(seed, faults);
    let handled = counters(2);
    let mut sim = sim_with_nodes(seed, &net, 2, &handled);
    let phase = Arc::new(AtomicU8::new(0));
    let (net2, phase2) = (net.clone(), phase.clone());
    sim.client("client", async move {
        let t = net2.attach(CLIENT, Handlers::default());
        script(net2, t, phase2).await;
        Ok(())
    });
    let mut crashed = false;
    while !sim.step().unwrap() {
        if let (Some(host), false) = (crash, crashed) {
            if phase.load(Ordering::SeqCst) == 1 {
                sim.crash(host);
                crashed = true;
                phase.store(2, Ordering::SeqCst);
            }
        }
    }
    handled
}

fn quiet() -> LinkFaults {
    LinkFaults::default()
}

#[test]
fn cuts_time_out_and_heal() {
    let handled = scripted(1, quiet(), None, |net, t, _| {
        Box::pin(async move {
            let ok = t
                .call_with_deadline(1, "echo", Bytes::from_static(b"a"), DEADLINE)
                .await;
            assert_eq!(ok.unwrap(), Bytes::from_static(b"1<-100:a"));
            net.cut(CLIENT, 1);
            let r = t
                .call_with_deadline(1, "echo", Bytes::from_static(b"b"), DEADLINE)
                .await;
            assert!(
                matches!(r, Err(TransportError::Timeout { node: 1, .. })),
                "{r:?}"
            );
            // The other node is still reachable.
            assert!(t
                .call_with_deadline(2, "echo", Bytes::new(), DEADLINE)
                .await
                .is_ok());
            net.heal();
            assert!(t
                .call_with_deadline(1, "echo", Bytes::new(), DEADLINE)
                .await
                .is_ok());
            let r = t
                .call_with_deadline(1, "nope", Bytes::new(), DEADLINE)
                .await;
            assert!(
                matches!(r, Err(TransportError::UnknownChannel { node: 1, .. })),
                "{r:?}"
            );
        })
    });
    assert_eq!(
        handled[0].load(Ordering::SeqCst),
        2,
        "the cut request never arrived"
    );
}

#[test]
fn a_one_way_cut_loses_the_reply_after_the_request_ran() {
    let handled = scripted(2, quiet(), None, |net, t, _| {
        Box::pin(async move {
            net.cut_one_way(1, CLIENT);
            let r = t
                .call_with_deadline(1, "echo", Bytes::new(), DEADLINE)
                .await;
            assert!(matches!(r, Err(TransportError::Timeout { .. })), "{r:?}");
        })
    });
    assert_eq!(
        handled[0].load(Ordering::SeqCst),
        1,
        "unknown outcome: it ran"
    );
}

#[test]
fn held_messages_arrive_after_release_and_duplicates_run_twice() {
    let handled = scripted(
        3,
        LinkFaults {
            duplicate: 1.0,
            ..quiet()
        },
        None,
        |net, t, _| {
            Box::pin(async move {
                net.hold(CLIENT, 2);
                let t2 = t.clone();
                let call = tokio::spawn(async move {
                    t2.call_with_deadline(2, "echo", Bytes::new(), Duration::from_secs(5))
                        .await
                });
                tokio::time::sleep(Duration::from_secs(1)).await;
                assert!(!call.is_finished(), "held");
                let started = tokio::time::Instant::now();
                net.release();
                assert!(call.await.unwrap().is_ok());
                assert!(started.elapsed() < Duration::from_millis(100));
            })
        },
    );
    assert_eq!(
        handled[1].load(Ordering::SeqCst),
        2,
        "every request came twice"
    );
}

#[test]
fn a_crashed_node_is_unreachable() {
    scripted(4, quiet(), Some("n2"), |_, t, phase| {
        Box::pin(async move {
            assert!(t
                .call_with_deadline(2, "echo", Bytes::new(), DEADLINE)
                .await
                .is_ok());
            phase.store(1, Ordering::SeqCst);
            while phase.load(Ordering::SeqCst) != 2 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            let r = t
                .call_with_deadline(2, "echo", Bytes::new(), DEADLINE)
                .await;
            assert!(
                matches!(r, Err(TransportError::Unreachable { node: 2, .. })),
                "{r:?}"
            );
            assert!(t
                .call_with_deadline(1, "echo", Bytes::new(), DEADLINE)
                .await
                .is_ok());
        })
    });
}
