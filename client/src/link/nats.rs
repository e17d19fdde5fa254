//! The console on a NATS cluster: one connection (the client reconnects by itself, to any server
//! of the cluster), one inbox subscription for every reply, requests published on the subjects
//! of [`fleet_protocol::nats`], and discovery asked of the registries' queue group.
//!
//! A request is published once: to each target's own subject, or, without targets, to its
//! agent's subject. The signed frame is kept, so a round can publish the very same bytes again to
//! the nodes it still waits for ([`NatsWay::resend`]): a node that already ran it sends its reply
//! again, one that is running it ignores the copy, one that never got it runs it once.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use fleet_protocol::codec::{Limits, decode_message, encode_message};
use fleet_protocol::nats::{NatsConfig, NatsEvent, Subjects, redact};
use fleet_protocol::{Discover, Dispatched, Message};
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::Inbound;

/// Request frames kept for retries, at most (a round sends one, a rollout one per node).
const KEPT_FRAMES: usize = 4096;

/// What a link did with a message.
pub(super) enum Sent {
    Yes,
    /// The message has no meaning on this transport (hub counters, live metrics).
    NotHere,
}

pub(super) struct NatsWay {
    client: async_nats::Client,
    inbox: String,
    to_client: mpsc::UnboundedSender<Inbound>,
    link: usize,
    reader: JoinHandle<()>,
    /// Signed request frames sent, by request id, with their collective's subjects.
    kept: HashMap<String, (Subjects, Bytes)>,
    kept_order: VecDeque<String>,
    /// How many cells' registries answer a discovery question.
    cells: usize,
    /// The task forwarding the registries' events, once the console asked to watch.
    events: Option<JoinHandle<()>>,
}

impl Drop for NatsWay {
    fn drop(&mut self) {
        self.reader.abort();
        if let Some(events) = &self.events {
            events.abort();
        }
    }
}

impl NatsWay {
    /// Connects to the cluster and starts reading the inbox into the client's queue as `link`.
    pub async fn attach(
        servers: Vec<String>,
        config: &NatsConfig,
        link: usize,
        to_client: mpsc::UnboundedSender<Inbound>,
        timeout: Duration,
    ) -> Result<NatsWay, String> {
        let shown = servers.iter().map(|s| redact(s)).collect::<Vec<_>>().join(",");
        let name = format!("fleet-{}", std::process::id());
        let options = config.options(servers, &name, timeout).map_err(|e| e.to_string())?;
        let (client, mut events) = fleet_protocol::nats::connect(&options).await.map_err(|e| e.to_string())?;
        let inbox = client.new_inbox();
        let sub = client.subscribe(inbox.clone()).await.map_err(|e| format!("NATS {shown}: subscribing to the inbox: {e}"))?;
        let reader = forward(sub, to_client.clone(), link);
        // The connection's own ups and downs, for the log: it reconnects by itself.
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                match event {
                    NatsEvent::Disconnected => tracing::warn!(servers = %shown, "NATS connection lost; reconnecting"),
                    NatsEvent::Connected => tracing::info!(servers = %shown, "reconnected to NATS"),
                }
            }
        });
        let cells = config.cells.unwrap_or(1).max(1);
        Ok(NatsWay { client, inbox, to_client, link, reader, kept: HashMap::new(), kept_order: VecDeque::new(), cells, events: None })
    }

    /// Publishes one message; `frame` is its signed (request) or plain encoding.
    pub async fn send(&mut self, msg: &Message, frame: &[u8]) -> Result<Sent, String> {
        let req = match msg {
            Message::Request(req) => req,
            // No hub to greet: a console that watches hears the registries' events instead.
            Message::Hello(hello) => {
                if hello.subscribe && self.events.is_none() {
                    self.events = Some(self.watch_events().await?);
                }
                return Ok(Sent::Yes);
            }
            // The link is the NATS connection, which keeps itself alive: up is the answer.
            Message::Ping => {
                if self.client.connection_state() == async_nats::connection::State::Connected {
                    self.answer(&Message::Pong);
                }
                return Ok(Sent::Yes);
            }
            // Discovery goes through `discover`.
            Message::Discover(_) => return Ok(Sent::Yes),
            _ => return Ok(Sent::NotHere),
        };
        let subjects = Subjects::new(&req.collective)?;
        let frame = Bytes::copy_from_slice(frame);
        let destinations = match req.targets.is_empty() {
            true => vec![subjects.agent(&req.agent)?],
            false => req.targets.iter().map(|t| subjects.node(t)).collect::<Result<Vec<_>, String>>()?,
        };
        for subject in destinations {
            self.client.publish_with_reply(subject, self.inbox.clone(), frame.clone()).await.map_err(|e| e.to_string())?;
        }
        self.client.flush().await.map_err(|e| e.to_string())?;
        if req.reply == fleet_protocol::ReplyMode::Normal {
            self.keep(&req.id, subjects, frame);
        }
        // What a hub would say once the request left: here, that it reached the cluster.
        self.answer(&Message::Dispatched(Dispatched { request_id: req.id.clone(), sent: req.targets.clone(), unknown: Vec::new() }));
        Ok(Sent::Yes)
    }

    /// Hands the client what a hub would have answered (there is none on NATS).
    fn answer(&self, msg: &Message) {
        if let Ok(frame) = encode_message(msg) {
            let _ = self.to_client.send(Inbound::Frame { link: self.link, frame });
        }
    }

    /// Forwards the registries' events (a node joined, left or changed) into the client's queue.
    async fn watch_events(&self) -> Result<JoinHandle<()>, String> {
        let events = self.client.subscribe("fleet.*.events").await.map_err(|e| format!("watching NATS events: {e}"))?;
        Ok(forward(events, self.to_client.clone(), self.link))
    }

    fn keep(&mut self, id: &str, subjects: Subjects, frame: Bytes) {
        self.kept.insert(id.to_string(), (subjects, frame));
        self.kept_order.push_back(id.to_string());
        while self.kept_order.len() > KEPT_FRAMES {
            if let Some(old) = self.kept_order.pop_front() {
                self.kept.remove(&old);
            }
        }
    }

    /// Publishes request `id` again, the same signed bytes, to each of `nodes` on its own
    /// subject. Returns how many copies went out.
    pub async fn resend(&mut self, id: &str, nodes: &[String]) -> usize {
        let Some((subjects, frame)) = self.kept.get(id) else { return 0 };
        let mut sent = 0;
        for node in nodes {
            let Ok(subject) = subjects.node(node) else { continue };
            if self.client.publish_with_reply(subject, self.inbox.clone(), frame.clone()).await.is_ok() {
                sent += 1;
            }
        }
        let _ = self.client.flush().await;
        sent
    }

    /// Asks the registries: one per cell answers (in its cell's queue group), and the console
    /// waits for `cells` answers. `Ok(None)`: no registry runs.
    pub async fn discover(&self, question: &Discover, timeout: Duration, limits: &Limits) -> Result<Option<Vec<Message>>, String> {
        let collective = question.collective.as_deref().unwrap_or("fleet");
        let subject = Subjects::new(collective)?.discover();
        let frame = Bytes::from(encode_message(&Message::Discover(question.clone())).map_err(|e| e.to_string())?);
        let late = || format!("no registry answered discovery within {:.1} s", timeout.as_secs_f64());
        if self.cells <= 1 {
            // One answer: a request, which also says at once when no registry listens.
            let answer = match tokio::time::timeout(timeout, self.client.request(subject, frame)).await {
                Err(_) => return Err(late()),
                Ok(Err(e)) if e.kind() == async_nats::client::RequestErrorKind::NoResponders => return Ok(None),
                Ok(Err(e)) => return Err(format!("discovery over NATS: {e}")),
                Ok(Ok(answer)) => answer,
            };
            return registry_answer(&answer.payload, limits).map(|m| Some(vec![m]));
        }
        let inbox = self.client.new_inbox();
        let mut answers_in = self.client.subscribe(inbox.clone()).await.map_err(|e| format!("discovery over NATS: {e}"))?;
        self.client.publish_with_reply(subject, inbox, frame).await.map_err(|e| format!("discovery over NATS: {e}"))?;
        self.client.flush().await.map_err(|e| format!("discovery over NATS: {e}"))?;
        let deadline = tokio::time::Instant::now() + timeout;
        let mut answers = Vec::new();
        let mut nobody = false;
        while answers.len() < self.cells {
            match tokio::time::timeout_at(deadline, answers_in.next()).await {
                // The server's own note that nothing listened when the question arrived.
                Ok(Some(msg)) if msg.status.is_some() => {
                    nobody |= msg.status == Some(async_nats::StatusCode::NO_RESPONDERS);
                    if nobody {
                        break;
                    }
                }
                Ok(Some(msg)) => answers.push(registry_answer(&msg.payload, limits)?),
                Ok(None) | Err(_) => break,
            }
        }
        match answers.len() {
            0 if nobody => Ok(None),
            0 => Err(late()),
            n if n < self.cells => {
                tracing::warn!(
                    "{n} of {} cells answered discovery within {:.1} s; the others' nodes are left out",
                    self.cells,
                    timeout.as_secs_f64()
                );
                Ok(Some(answers))
            }
            _ => Ok(Some(answers)),
        }
    }
}

/// Hands every message of `sub` to the client's queue as link `link`'s frames; when the
/// subscription ends (the connection closed for good), says the link closed.
fn forward(mut sub: async_nats::Subscriber, to_client: mpsc::UnboundedSender<Inbound>, link: usize) -> JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(msg) = sub.next().await {
            if to_client.send(Inbound::Frame { link, frame: msg.payload.to_vec() }).is_err() {
                return;
            }
        }
        let _ = to_client.send(Inbound::Closed { link, why: "the NATS connection closed".into() });
    })
}

/// A registry's answer, decoded: what it found, or why it refused.
fn registry_answer(payload: &[u8], limits: &Limits) -> Result<Message, String> {
    match decode_message(payload, limits) {
        Ok(m @ (Message::Discovered(_) | Message::Error(_))) => Ok(m),
        Ok(other) => Err(format!("the registry answered discovery with a {:?}", other.kind())),
        Err(e) => Err(format!("the registry's answer does not decode: {e}")),
    }
}
