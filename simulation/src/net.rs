//! The simulated network: an in-memory message bus behind the node's real `Transport` seam.
//!
//! Every request and every reply is a message with a seeded delay; a link can lose, duplicate
//! or hold messages, and partitions cut one direction or both. Each node has an inbox served by
//! a task on that node's own runtime (its turmoil host), so crashing the host stops its handlers
//! and loses what was in flight to it. Every random choice comes from the network's one seeded
//! stream, drawn in a fixed order, so a seed replays the same deliveries.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use coffer_cluster::{Handlers, NodeId, Transport, TransportError};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::{mpsc, oneshot};

/// Faults applied to every message (requests and replies alike).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkFaults {
    /// Shortest delivery delay.
    pub min_delay: Duration,
    /// Longest delivery delay (delays are uniform in between, so messages reorder).
    pub max_delay: Duration,
    /// Probability that a message is lost.
    pub loss: f64,
    /// Probability that a request is delivered twice (the second reply is dropped).
    pub duplicate: f64,
}

impl Default for LinkFaults {
    fn default() -> Self {
        Self {
            min_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(10),
            loss: 0.0,
            duplicate: 0.0,
        }
    }
}

/// What happened to a message, for the trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetEvent {
    /// A request was handed to the destination's inbox.
    Delivered {
        /// Sender.
        from: NodeId,
        /// Receiver.
        to: NodeId,
        /// The channel.
        channel: String,
        /// A second copy of a duplicated request.
        copy: bool,
    },
    /// A request or reply was dropped (loss, a cut link, a held link at crash).
    Dropped {
        /// Sender.
        from: NodeId,
        /// Receiver.
        to: NodeId,
    },
}

struct Inbox {
    tx: mpsc::UnboundedSender<Envelope>,
}

struct Envelope {
    from: NodeId,
    channel: String,
    payload: Bytes,
    reply: Option<oneshot::Sender<Result<Bytes, TransportError>>>,
}

struct NetState {
    rng: StdRng,
    faults: LinkFaults,
    /// Directed links that drop everything.
    cut: BTreeSet<(NodeId, NodeId)>,
    /// Directed links whose messages wait until released.
    held: BTreeSet<(NodeId, NodeId)>,
    inboxes: BTreeMap<NodeId, Inbox>,
    /// Endpoints whose links never duplicate (S3 clients: HTTP over TCP delivers a request
    /// at most once; only node-to-node retries can repeat one).
    no_duplicates: BTreeSet<NodeId>,
    events: Vec<NetEvent>,
}

/// The network all simulated nodes share. Cheap to clone.
#[derive(Clone)]
pub struct SimNet {
    state: Arc<Mutex<NetState>>,
    released: Arc<tokio::sync::Notify>,
}

impl SimNet {
    /// A network whose random choices all come from `seed`.
    pub fn new(seed: u64, faults: LinkFaults) -> Self {
        Self {
            state: Arc::new(Mutex::new(NetState {
                rng: StdRng::seed_from_u64(seed),
                faults,
                cut: BTreeSet::new(),
                held: BTreeSet::new(),
                inboxes: BTreeMap::new(),
                no_duplicates: BTreeSet::new(),
                events: Vec::new(),
            })),
            released: Arc::new(tokio::sync::Notify::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, NetState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Serves `node`'s inbox with `handlers` on the current runtime (call it from the node's
    /// host); the inbox closes when that runtime stops (a crash). Returns the node's transport.
    pub fn attach(&self, node: NodeId, handlers: Handlers) -> SimTransport {
        let (tx, mut rx) = mpsc::unbounded_channel::<Envelope>();
        self.lock().inboxes.insert(node, Inbox { tx });
        tokio::spawn(async move {
            while let Some(env) = rx.recv().await {
                let handlers = handlers.clone();
                tokio::spawn(async move {
                    let answer = match handlers.get(&env.channel) {
                        Some(h) => h.handle(env.from, env.payload).await.map_err(|e| {
                            TransportError::Remote {
                                node,
                                message: e.message,
                            }
                        }),
                        None => Err(TransportError::UnknownChannel {
                            node,
                            channel: env.channel,
                        }),
                    };
                    if let Some(reply) = env.reply {
                        let _ = reply.send(answer);
                    }
                });
            }
        });
        SimTransport {
            me: node,
            net: self.clone(),
        }
    }

    /// [`SimNet::attach`] for a client: its requests are never duplicated (a request over
    /// TCP arrives at most once), though they are delayed, lost and cut like any other.
    pub fn attach_client(&self, client: NodeId, handlers: Handlers) -> SimTransport {
        self.lock().no_duplicates.insert(client);
        self.attach(client, handlers)
    }

    /// Cuts `from → to` (one way); [`SimNet::heal`] undoes it.
    pub fn cut_one_way(&self, from: NodeId, to: NodeId) {
        self.lock().cut.insert((from, to));
    }

    /// Cuts both directions between `a` and `b`.
    pub fn cut(&self, a: NodeId, b: NodeId) {
        let mut s = self.lock();
        s.cut.insert((a, b));
        s.cut.insert((b, a));
    }

    /// Isolates `node` from every other attached node, both ways.
    pub fn isolate(&self, node: NodeId) {
        let mut s = self.lock();
        let others: Vec<NodeId> = s.inboxes.keys().copied().filter(|&n| n != node).collect();
        for o in others {
            s.cut.insert((node, o));
            s.cut.insert((o, node));
        }
    }

    /// Removes every cut.
    pub fn heal(&self) {
        self.lock().cut.clear();
    }

    /// Holds messages on `from → to` until [`SimNet::release`].
    pub fn hold(&self, from: NodeId, to: NodeId) {
        self.lock().held.insert((from, to));
    }

    /// Lets held messages go on (each still with its own delay).
    pub fn release(&self) {
        self.lock().held.clear();
        self.released.notify_waiters();
    }

    /// Replaces the faults applied from now on.
    pub fn set_faults(&self, faults: LinkFaults) {
        self.lock().faults = faults;
    }

    /// What happened to messages so far, in order.
    pub fn events(&self) -> Vec<NetEvent> {
        self.lock().events.clone()
    }

    /// One message's fate, drawn in a fixed order: (delay, lost, duplicated).
    fn draw(&self, from: NodeId, to: NodeId) -> (Duration, bool, bool) {
        let mut s = self.lock();
        let f = s.faults;
        let span = f.max_delay.saturating_sub(f.min_delay).as_micros() as u64;
        let delay = f.min_delay + Duration::from_micros(s.rng.gen_range(0..=span));
        let lost = s.rng.gen_bool(f.loss.clamp(0.0, 1.0)) || s.cut.contains(&(from, to));
        let dup = s.rng.gen_bool(f.duplicate.clamp(0.0, 1.0))
            && !s.no_duplicates.contains(&from)
            && !s.no_duplicates.contains(&to);
        if lost {
            s.events.push(NetEvent::Dropped { from, to });
        }
        (delay, lost, dup)
    }

    /// Waits out a message's delay and any hold on its link.
    async fn travel(&self, from: NodeId, to: NodeId, delay: Duration) {
        tokio::time::sleep(delay).await;
        loop {
            let released = self.released.notified();
            if !self.lock().held.contains(&(from, to)) {
                return;
            }
            released.await;
        }
    }

    fn deliver(&self, env: Envelope, to: NodeId, copy: bool) -> bool {
        let mut s = self.lock();
        let (from, channel) = (env.from, env.channel.clone());
        let ok = s.inboxes.get(&to).is_some_and(|i| i.tx.send(env).is_ok());
        s.events.push(if ok {
            NetEvent::Delivered {
                from,
                to,
                channel,
                copy,
            }
        } else {
            NetEvent::Dropped { from, to }
        });
        ok
    }
}

/// One node's side of the [`SimNet`]: the node's real code sends through this.
#[derive(Clone)]
pub struct SimTransport {
    me: NodeId,
    net: SimNet,
}

impl SimTransport {
    /// The node this transport sends from.
    pub fn node(&self) -> NodeId {
        self.me
    }

    async fn exchange(
        &self,
        node: NodeId,
        channel: &str,
        payload: Bytes,
    ) -> Result<Bytes, TransportError> {
        let (delay, lost, dup) = self.net.draw(self.me, node);
        if lost {
            // The sender cannot tell a lost request from a slow peer: it waits out its deadline.
            std::future::pending::<()>().await;
        }
        self.net.travel(self.me, node, delay).await;
        let (tx, rx) = oneshot::channel();
        let env = Envelope {
            from: self.me,
            channel: channel.to_owned(),
            payload: payload.clone(),
            reply: Some(tx),
        };
        if !self.net.deliver(env, node, false) {
            return Err(TransportError::Unreachable {
                node,
                reason: "not attached or crashed".into(),
            });
        }
        if dup {
            let copy = Envelope {
                from: self.me,
                channel: channel.to_owned(),
                payload,
                reply: None,
            };
            self.net.deliver(copy, node, true);
        }
        let answer = match rx.await {
            Ok(a) => a,
            // The receiver's runtime stopped with the request in it: a crash mid-call.
            Err(_) => {
                return Err(TransportError::Network {
                    node,
                    reason: "peer crashed during the call".into(),
                })
            }
        };
        let (delay, lost, _) = self.net.draw(node, self.me);
        if lost {
            std::future::pending::<()>().await;
        }
        self.net.travel(node, self.me, delay).await;
        answer
    }
}

#[async_trait::async_trait]
impl Transport for SimTransport {
    async fn call_with_deadline(
        &self,
        node: NodeId,
        channel: &str,
        payload: Bytes,
        deadline: Duration,
    ) -> Result<Bytes, TransportError> {
        match tokio::time::timeout(deadline, self.exchange(node, channel, payload)).await {
            Ok(r) => r,
            Err(_) => Err(TransportError::Timeout { node, deadline }),
        }
    }
}
