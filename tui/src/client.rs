//! The console's side of a hub link: attach, say hello, discover, send requests and read what
//! comes back. Used by the CLI commands and, from a background task, by the full-screen console.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use fleet_protocol::codec::{Limits, decode_message, encode_message};
use fleet_protocol::transport::{Link, LinkReceiver, LinkSender};
use fleet_protocol::{Discover, Filter, Hello, Message};

pub struct Client {
    tx: LinkSender,
    rx: LinkReceiver,
    limits: Limits,
    hub: String,
}

impl Client {
    /// Attaches to the first reachable hub of `hubs`.
    pub async fn connect(hubs: &[String], timeout: Duration, subscribe: bool) -> Result<Client> {
        let mut errors = Vec::new();
        for hub in hubs {
            match Link::connect(hub, timeout).await {
                Ok(link) => {
                    let (tx, rx) = link.split();
                    let mut c = Client { tx, rx, limits: Limits::default(), hub: hub.clone() };
                    let name = format!("fleet-{}", std::process::id());
                    c.send(&Message::Hello(Hello { name, subscribe })).await?;
                    return Ok(c);
                }
                Err(e) => errors.push(e.to_string()),
            }
        }
        bail!("no hub reachable: {}", errors.join("; "))
    }

    pub fn hub(&self) -> &str {
        &self.hub
    }

    pub async fn send(&mut self, msg: &Message) -> Result<()> {
        let frame = encode_message(msg).context("encoding message")?;
        self.tx.send(Bytes::from(frame)).await.with_context(|| format!("sending to hub {}", self.hub))
    }

    /// The next message from the hub; malformed frames are skipped.
    pub async fn recv(&mut self) -> Result<Message> {
        loop {
            let frame = self.rx.recv().await.with_context(|| format!("hub {} closed the link", self.hub))?;
            match decode_message(&frame, &self.limits) {
                Ok(m) => return Ok(m),
                Err(e) => tracing::warn!(error = %e, "dropping malformed frame from hub"),
            }
        }
    }

    /// Like [`recv`](Self::recv) with a deadline; `None` when it passes.
    pub async fn recv_until(&mut self, deadline: tokio::time::Instant) -> Result<Option<Message>> {
        match tokio::time::timeout_at(deadline, self.recv()).await {
            Ok(r) => r.map(Some),
            Err(_) => Ok(None),
        }
    }

    /// Asks the hub's registry which nodes match.
    pub async fn discover(&mut self, filter: &Filter, collective: &str, timeout: Duration) -> Result<Vec<String>> {
        self.send(&Message::Discover(Discover { filter: filter.clone(), collective: Some(collective.to_string()) })).await?;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match self.recv_until(deadline).await? {
                Some(Message::Discovered(d)) => return Ok(d.nodes),
                Some(Message::Error(e)) => bail!("hub refused discovery: {}", e.message),
                Some(_) => continue,
                None => bail!("hub {} did not answer discovery within {:.1} s", self.hub, timeout.as_secs_f64()),
            }
        }
    }
}
