//! `noded registry`: the live-node view of a fleet on NATS, where there is no hub to keep it.
//!
//! A registry reads every signed registration on `fleet.*.registration`, believes one only when
//! it verifies with the key enrolled as a node under that very name (`noded hub enroll`, in
//! `hub.enroll_dir`), lists a node as down after `hub.missed_heartbeats` missed heartbeats (kept
//! `hub.keep_down_for`, at most `hub.max_down_nodes`, until it comes back or `noded hub forget`),
//! and answers discovery on `fleet.*.discover` exactly as the ZeroMQ hub does. Registries answer
//! in the queue group `registry`: run two or more, and each question gets one answer. In a fleet of
//! cells (NATS clusters joined by gateways) each cell's registries answer in their cell's own group
//! (`[nats] cell`), for the nodes of their cell, and a console merges one answer per cell.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use fleet_protocol::codec::{Limits, decode_message, encode_message};
use fleet_protocol::keys::Keyring;
use fleet_protocol::nats::{NatsEvent, Subjects, redact, registry_queue};
use fleet_protocol::{Envelope, ErrorNotice, Event, Message};
use futures::StreamExt;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::NodeConfig;
use crate::hub::registry::{DownNodes, NodeRecord, SharedLists, discovered, is_stale};

/// How often node keys are re-read at most when a registration comes from an unknown name.
const KEY_RESCAN: Duration = Duration::from_secs(2);
/// Registrations held until the next key scan (a node enrolled a moment ago), at most.
const HELD_MAX: usize = 10_000;

/// The live nodes and the nodes that went down.
#[derive(Default)]
pub struct Registry {
    live: HashMap<String, (NodeRecord, Instant)>,
    down: DownNodes,
    /// The collective, class and agent lists the records share.
    shared: SharedLists,
}

/// What became of one registration message.
#[derive(Debug, PartialEq)]
pub enum Registered {
    /// Believed; what watching consoles of the node's main collective should hear (a node that
    /// joined or came back, or changed its facts, classes, agents or collectives), nothing for a
    /// plain heartbeat.
    Accepted(Option<Told>),
    /// The signature does not check with the node keys known now: a key enrolled since the last
    /// scan, or a forgery. `signer` is the name the envelope claims.
    Unverified { signer: String, why: String },
    /// Refused, and why (for the log).
    Refused(String),
}

/// An event for the consoles of one collective.
#[derive(Debug, PartialEq)]
pub struct Told {
    pub collective: String,
    pub event: Event,
}

impl Told {
    fn about(record: &NodeRecord, event: Event) -> Told {
        Told { collective: record.collectives.first().cloned().unwrap_or_else(|| "fleet".into()), event }
    }
}

impl Registry {
    pub fn live(&self) -> usize {
        self.live.len()
    }

    pub fn down(&self) -> usize {
        self.down.len()
    }

    /// A registration frame off the wire: the signature is checked against `nodes` before the
    /// body is decoded, and the signer must be the node the registration names.
    pub fn on_frame(&mut self, frame: &[u8], nodes: &Keyring, limits: &Limits, now: Instant) -> Registered {
        let env = match Envelope::from_frame(frame, limits) {
            Ok(env) => env,
            Err(e) => return Registered::Refused(format!("malformed: {e}")),
        };
        let signer = match env.verify(nodes) {
            Ok(signer) => signer,
            Err(e) => {
                let why = format!("signature: {e}");
                return match env.signer {
                    Some(signer) => Registered::Unverified { signer, why },
                    None => Registered::Refused(why),
                };
            }
        };
        let reg = match env.open(limits) {
            Ok(Message::Registration(reg)) => *reg,
            Ok(other) => return Registered::Refused(format!("a {:?} on the registration subject", other.kind())),
            Err(e) => return Registered::Refused(format!("malformed: {e}")),
        };
        if reg.identity != signer {
            return Registered::Refused(format!("signed by {signer} but registers {}", reg.identity));
        }
        let identity = reg.identity.clone();
        let record = self.shared.record(reg);
        let event = match self.live.get(&identity).map(|(old, _)| record.changed_from(old)) {
            Some(false) => None,
            Some(true) => Some(Told::about(&record, Event::NodeChanged { identity: identity.clone() })),
            None => {
                let back = self.down.remove(&identity);
                info!(node = %identity, live = self.live.len() + 1, "node {}", if back { "is back" } else { "joined" });
                Some(Told::about(&record, Event::NodeJoined { identity: identity.clone() }))
            }
        };
        self.live.insert(identity, (record, now));
        Registered::Accepted(event)
    }

    /// Moves nodes that missed `missed` heartbeats to the down list; returns what to tell.
    pub fn expire(&mut self, now: Instant, missed: u32, max_down: usize) -> Vec<Told> {
        let stale: Vec<String> =
            self.live.iter().filter(|(_, (record, seen))| is_stale(record, *seen, now, missed)).map(|(id, _)| id.clone()).collect();
        let mut told = Vec::new();
        for identity in stale {
            if let Some((record, _)) = self.live.remove(&identity) {
                info!(node = %identity, "node left ({missed} heartbeats missed); listed as down");
                let reason = format!("{missed} heartbeats missed");
                told.push(Told::about(&record, Event::NodeLeft { identity, reason }));
                self.down.insert(record, max_down);
            }
        }
        told
    }

    /// Answers a discovery question frame.
    pub fn answer(&self, frame: &[u8], limits: &Limits) -> Message {
        match decode_message(frame, limits) {
            Ok(Message::Discover(d)) => discovered(self.live.values().map(|(r, _)| r), &self.down, &d),
            Ok(other) => Message::Error(ErrorNotice { message: format!("a registry answers discovery only, not {:?}", other.kind()) }),
            Err(e) => Message::Error(ErrorNotice { message: format!("malformed discovery question: {e}") }),
        }
    }

    /// `noded hub forget NODE`: a down node is no longer listed (a live one stays).
    pub fn forget(&mut self, identity: &str) -> bool {
        self.down.remove(identity)
    }

    pub fn expire_down(&mut self, keep: Duration) {
        self.down.expire(keep);
    }
}

/// Runs a registry until `shutdown`.
pub async fn run(cfg: NodeConfig, mut shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
    let name = format!("registry-{}", cfg.identity.clone().unwrap_or_else(crate::facts::host_name));
    let options = cfg.nats_options(&name)?;
    if options.servers.is_empty() {
        anyhow::bail!("noded registry needs NATS servers: hubs = [\"nats://HOST:4222\", ...] in the config, or --hub nats://HOST:4222");
    }
    let shown = options.servers.iter().map(|s| redact(s)).collect::<Vec<_>>().join(",");
    let (client, mut events) = fleet_protocol::nats::connect(&options).await?;
    let mut registrations =
        client.subscribe(fleet_protocol::nats::registrations_of(cfg.nats.cell.as_deref())).await.context("subscribing to registrations")?;
    let queue = registry_queue(cfg.nats.cell.as_deref());
    let mut questions = client.queue_subscribe("fleet.*.discover", queue.clone()).await.context("subscribing to discovery")?;
    let limits = Limits { max_frame: cfg.max_frame, ..Limits::default() };
    let dir = cfg.hub.enroll_dir.clone();
    let mut nodes = crate::enroll::node_keyring(&dir);
    let mut scanned = Instant::now();
    info!(servers = %shown, nodes_enrolled = nodes.len(), enroll_dir = %dir.display(), %queue, "registry serving");
    println!("registry on {shown}, {} node keys enrolled in {}", nodes.len(), dir.display());
    let mut registry = Registry::default();
    // Registrations that failed the signature check, by claimed signer, tried again after the
    // next key scan: a node enrolled a moment ago need not wait for its next heartbeat.
    let mut held: HashMap<String, Bytes> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let keep_down = Duration::from_secs_f64(cfg.hub.keep_down_for);
    loop {
        tokio::select! {
            Some(msg) = registrations.next() => {
                let now = Instant::now();
                match registry.on_frame(&msg.payload, &nodes, &limits, now) {
                    Registered::Unverified { signer, .. } => {
                        if held.len() < HELD_MAX || held.contains_key(&signer) {
                            held.insert(signer, msg.payload.clone());
                        }
                    }
                    outcome => settle(&client, outcome, &msg.subject).await,
                }
            }
            Some(msg) = questions.next() => {
                let answer = registry.answer(&msg.payload, &limits);
                match (msg.reply, encode_message(&answer)) {
                    (Some(to), Ok(frame)) => {
                        if let Err(e) = client.publish(to, Bytes::from(frame)).await {
                            debug!(error = %e, "discovery answer not sent");
                        }
                    }
                    (None, _) => debug!("a discovery question without a reply subject"),
                    (_, Err(e)) => warn!(error = %e, "cannot encode a discovery answer"),
                }
            }
            Some(event) = events.recv() => match event {
                NatsEvent::Connected => info!(servers = %shown, "registry reconnected to NATS"),
                NatsEvent::Disconnected => warn!(servers = %shown, "registry lost NATS; reconnecting"),
            },
            _ = tick.tick() => {
                if !held.is_empty() && scanned.elapsed() > KEY_RESCAN {
                    nodes = crate::enroll::node_keyring(&dir);
                    scanned = Instant::now();
                    for (signer, frame) in held.drain() {
                        settle(&client, registry.on_frame(&frame, &nodes, &limits, scanned), &signer).await;
                    }
                }
                for told in registry.expire(Instant::now(), cfg.hub.missed_heartbeats, cfg.hub.max_down_nodes) {
                    tell(&client, told).await;
                }
                registry.expire_down(keep_down);
                for id in crate::enroll::take_forget_requests(&dir.join(crate::enroll::FORGET_DIR)) {
                    match registry.forget(&id) {
                        true => info!(node = %id, "down node forgotten at an admin's request"),
                        false => info!(node = %id, "asked to forget a node that is not listed as down"),
                    }
                }
            }
            _ = crate::until_set(&mut shutdown) => break,
        }
    }
    let _ = client.flush().await;
    Ok(())
}

/// What becomes of a registration once it is decided: the consoles told of a change, or the
/// refusal logged with `from` (the subject or the claimed signer).
async fn settle(client: &async_nats::Client, outcome: Registered, from: &str) {
    match outcome {
        Registered::Accepted(Some(told)) => tell(client, told).await,
        Registered::Accepted(None) => {}
        Registered::Unverified { why, .. } | Registered::Refused(why) => warn!(from, reason = %why, "registration refused"),
    }
}

/// Tells the watching consoles of a collective what happened (unsigned: an event only makes a
/// console ask the registries again).
async fn tell(client: &async_nats::Client, told: Told) {
    let Ok(subjects) = Subjects::new(&told.collective) else { return };
    match encode_message(&Message::Event(told.event)) {
        Ok(frame) => {
            if let Err(e) = client.publish(subjects.events(), Bytes::from(frame)).await {
                debug!(error = %e, "event not published");
            }
        }
        Err(e) => warn!(error = %e, "cannot encode an event"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleet_protocol::keys::KeyPair;
    use fleet_protocol::{Discover, Filter, Registration};

    fn registration(identity: &str) -> Registration {
        Registration {
            identity: identity.into(),
            collectives: vec!["fleet".into()],
            facts: serde_json::json!({"role": "web"}),
            classes: vec![],
            agents: vec![],
            stats: Default::default(),
            metrics: Default::default(),
            interval_ms: 1000,
            version: String::new(),
            started: 0,
        }
    }

    fn frame(reg: Registration, key: &KeyPair, signer: &str) -> Vec<u8> {
        let mut env = Envelope::seal(&Message::Registration(Box::new(reg))).unwrap();
        env.sign(key, signer);
        env.to_frame().unwrap()
    }

    #[test]
    fn only_a_node_signing_its_own_name_is_believed_and_the_silent_go_down() {
        let (web, other) = (KeyPair::generate(), KeyPair::generate());
        let mut ring = Keyring::default();
        ring.insert("web-01", web.public()).unwrap();
        ring.insert("db-01", other.public()).unwrap();
        let limits = Limits::default();
        let mut r = Registry::default();
        let t0 = Instant::now();
        let joined =
            |id: &str| Registered::Accepted(Some(Told { collective: "fleet".into(), event: Event::NodeJoined { identity: id.into() } }));
        assert_eq!(r.on_frame(&frame(registration("web-01"), &web, "web-01"), &ring, &limits, t0), joined("web-01"));
        assert_eq!(r.on_frame(&frame(registration("web-01"), &web, "web-01"), &ring, &limits, t0), Registered::Accepted(None));
        let mut moved = registration("web-01");
        moved.facts = serde_json::json!({"role": "db"});
        let changed = r.on_frame(&frame(moved, &web, "web-01"), &ring, &limits, t0);
        assert!(matches!(changed, Registered::Accepted(Some(Told { event: Event::NodeChanged { .. }, .. }))), "{changed:?}");
        // Another enrolled node cannot register (or keep alive) web-01.
        let forged = r.on_frame(&frame(registration("web-01"), &other, "db-01"), &ring, &limits, t0);
        assert!(matches!(&forged, Registered::Refused(w) if w.contains("signed by db-01")), "{forged:?}");
        // A key signing under a name it is not enrolled for fails the signature check.
        let stolen = r.on_frame(&frame(registration("web-01"), &other, "web-01"), &ring, &limits, t0);
        assert!(
            matches!(&stolen, Registered::Unverified { signer, why } if signer == "web-01" && why.starts_with("signature")),
            "{stolen:?}"
        );
        assert!(matches!(r.on_frame(b"\x01garbage", &ring, &limits, t0), Registered::Refused(_)));

        let question =
            encode_message(&Message::Discover(Discover { filter: Filter::default(), collective: Some("fleet".into()) })).unwrap();
        let Message::Discovered(d) = r.answer(&question, &limits) else { panic!() };
        assert_eq!((d.nodes, d.down.len()), (vec!["web-01".to_string()], 0));

        let left = r.expire(t0 + Duration::from_millis(3500), 3, 10);
        assert!(matches!(&left[..], [Told { event: Event::NodeLeft { identity, .. }, .. }] if identity == "web-01"), "{left:?}");
        let Message::Discovered(d) = r.answer(&question, &limits) else { panic!() };
        assert_eq!((d.nodes.len(), d.down[0].identity.as_str()), (0, "web-01"));
        let later = t0 + Duration::from_secs(5);
        assert_eq!(r.on_frame(&frame(registration("web-01"), &web, "web-01"), &ring, &limits, later), joined("web-01"));
        assert_eq!((r.live(), r.down()), (1, 0));
        assert!(matches!(r.answer(b"junk", &limits), Message::Error(_)));
    }
}
