//! The network task: owns the hub link, runs what the UI asks for, and reports back as actions.
//! It never blocks the UI (they only share channels). When the link fails it says so and
//! reconnects every couple of seconds by itself. The node count is re-read from the hub's registry
//! on connect, after node events, and after each round.

use std::time::Duration;

use anyhow::Result;
use fleet_protocol::{Filter, Message};
use serde_json::Map;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio::time::Instant;

use super::Options;
use super::action::{Action, LinkState, NetCommand, RoundEvent};
use super::discovery::filter_of;
use crate::client::Client;
use crate::request::{self, DiscoveryMethod, Progress, Spec};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const RETRY_EVERY: Duration = Duration::from_secs(2);
const PING_EVERY: Duration = Duration::from_secs(2);
/// With a ping every 2 s, this much silence means the hub is gone even if the socket says nothing.
const SILENCE_LIMIT: Duration = Duration::from_secs(6);
/// Node events come in bursts (a rack rebooting); one registry read per burst is enough.
const RESYNC_DELAY: Duration = Duration::from_millis(150);
/// Time the nodes get to answer a ping once discovery is done.
const PING_ACTION_TIMEOUT: Duration = Duration::from_secs(5);

/// What the network task needs from the console's options.
#[derive(Debug, Clone)]
pub struct NetSettings {
    pub hubs: Vec<String>,
    pub collective: String,
    pub caller: String,
    pub ttl: u32,
    pub discovery_timeout: Duration,
}

impl NetSettings {
    pub fn from_options(opts: &Options) -> NetSettings {
        let discovery = if opts.discovery_timeout.is_finite() && opts.discovery_timeout > 0.0 { opts.discovery_timeout } else { 2.0 };
        NetSettings {
            hubs: opts.hubs.clone(),
            collective: opts.collective.clone(),
            caller: opts.caller.clone(),
            ttl: opts.ttl,
            discovery_timeout: Duration::from_secs_f64(discovery),
        }
    }

    /// An rpcutil ping round on the nodes matching `filter`, like `fleet ping -S FILTER`.
    pub fn ping_spec(&self, filter: &str) -> Spec {
        Spec {
            agent: "rpcutil".into(),
            action: "ping".into(),
            args: Map::new(),
            filter: filter_of(filter),
            collective: self.collective.clone(),
            caller: self.caller.clone(),
            method: DiscoveryMethod::Registry,
            nodes_file: None,
            targets: None,
            timeout: self.discovery_timeout + PING_ACTION_TIMEOUT,
            discovery_timeout: self.discovery_timeout,
            ttl: self.ttl,
        }
    }
}

/// Why a connected session ended.
enum Ended {
    /// The UI is gone (its command channel closed).
    Quit,
    LinkLost(String),
}

/// How a round ended.
enum RoundEnd {
    Done,
    Failed,
    /// The UI asked for another round before this one finished.
    Superseded(u64, String),
    Quit,
}

/// The task. Runs until the UI drops its command sender.
pub async fn run(settings: NetSettings, actions: UnboundedSender<Action>, mut commands: UnboundedReceiver<NetCommand>) {
    // The round the UI wants next; asked for while no hub was reachable, it runs on connect.
    let mut wanted: Option<(u64, String)> = None;
    let mut active_filter = String::new();
    loop {
        match Client::connect(&settings.hubs, CONNECT_TIMEOUT, true).await {
            Ok(mut client) => {
                tracing::info!(hub = %client.hub(), "hub link up");
                let _ = actions.send(Action::Link(LinkState::Connected { hub: client.hub().to_string() }));
                match session(&mut client, &settings, &actions, &mut commands, &mut wanted, &mut active_filter).await {
                    Ended::Quit => return,
                    Ended::LinkLost(reason) => {
                        tracing::warn!(hub = %client.hub(), %reason, "hub link lost");
                        let _ = actions.send(Action::Link(LinkState::Disconnected { reason }));
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "cannot attach to a hub; retrying");
                let _ = actions.send(Action::Link(LinkState::Disconnected { reason: format!("{e:#}") }));
            }
        }
        if !wait_for_retry(&mut commands, &mut wanted).await {
            return;
        }
    }
}

/// Sleeps until the next connection attempt, keeping the latest round asked for meanwhile.
/// Returns false when the UI is gone.
async fn wait_for_retry(commands: &mut UnboundedReceiver<NetCommand>, wanted: &mut Option<(u64, String)>) -> bool {
    let until = Instant::now() + RETRY_EVERY;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(until) => return true,
            cmd = commands.recv() => match cmd {
                Some(NetCommand::Round { round, filter }) => *wanted = Some((round, filter)),
                None => return false,
            },
        }
    }
}

async fn session(
    client: &mut Client,
    settings: &NetSettings,
    actions: &UnboundedSender<Action>,
    commands: &mut UnboundedReceiver<NetCommand>,
    wanted: &mut Option<(u64, String)>,
    active_filter: &mut String,
) -> Ended {
    if let Err(e) = resync(client, settings, actions, active_filter).await {
        return Ended::LinkLost(format!("{e:#}"));
    }
    let mut last_heard = Instant::now();
    let mut resync_at: Option<Instant> = None;
    let mut ping = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if let Some((round, filter)) = wanted.take() {
            *active_filter = filter.clone();
            match run_round(client, settings, round, &filter, actions, commands).await {
                RoundEnd::Done => last_heard = Instant::now(),
                RoundEnd::Failed => {}
                RoundEnd::Superseded(round, filter) => {
                    *wanted = Some((round, filter));
                    continue;
                }
                RoundEnd::Quit => return Ended::Quit,
            }
            // Events that came in during the round were consumed by it; read the registry again.
            resync_at = Some(Instant::now());
            continue;
        }
        let resync_deadline = resync_at.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            cmd = commands.recv() => match cmd {
                Some(NetCommand::Round { round, filter }) => *wanted = Some((round, filter)),
                None => return Ended::Quit,
            },
            msg = client.recv() => match msg {
                Ok(msg) => {
                    last_heard = Instant::now();
                    match msg {
                        Message::Event(ev) => {
                            tracing::debug!(?ev, "node event");
                            resync_at.get_or_insert(Instant::now() + RESYNC_DELAY);
                        }
                        Message::Pong | Message::Welcome(_) => {}
                        other => tracing::debug!(kind = ?other.kind(), "ignored a message between rounds"),
                    }
                }
                Err(e) => return Ended::LinkLost(format!("{e:#}")),
            },
            _ = tokio::time::sleep_until(resync_deadline), if resync_at.is_some() => {
                resync_at = None;
                if let Err(e) = resync(client, settings, actions, active_filter).await {
                    return Ended::LinkLost(format!("{e:#}"));
                }
                last_heard = Instant::now();
            },
            _ = ping.tick() => {
                if last_heard.elapsed() > SILENCE_LIMIT {
                    return Ended::LinkLost(format!("no answer from the hub for {} s", SILENCE_LIMIT.as_secs()));
                }
                if let Err(e) = client.send(&Message::Ping).await {
                    return Ended::LinkLost(format!("{e:#}"));
                }
            },
        }
    }
}

/// Reads the registry: how many nodes there are, and who matches the filter in force.
async fn resync(client: &mut Client, settings: &NetSettings, actions: &UnboundedSender<Action>, active_filter: &str) -> Result<()> {
    let all = client.discover(&Filter::default(), &settings.collective, CONNECT_TIMEOUT).await?;
    let _ = actions.send(Action::NodeCount(all.len()));
    let members = if active_filter.trim().is_empty() {
        all
    } else {
        match client.discover(&filter_of(active_filter), &settings.collective, CONNECT_TIMEOUT).await {
            Ok(nodes) => nodes,
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), filter = %active_filter, "cannot re-read the filter's members");
                return Ok(());
            }
        }
    };
    let _ = actions.send(Action::Members { filter: active_filter.to_string(), nodes: members });
    Ok(())
}

fn round_event(p: &Progress) -> Option<RoundEvent> {
    match p {
        Progress::Discovered(nodes) => Some(RoundEvent::Discovered(nodes.clone())),
        Progress::Reply { reply, expected, rtt } => Some(RoundEvent::Reply {
            sender: reply.sender.clone(),
            status: reply.status,
            message: reply.status_msg.clone(),
            ms: rtt.as_secs_f64() * 1000.0,
            expected: *expected,
        }),
        Progress::Sent { unknown, .. } => {
            if !unknown.is_empty() {
                tracing::info!(?unknown, "the hub has no link to some discovered nodes");
            }
            None
        }
    }
}

async fn run_round(
    client: &mut Client,
    settings: &NetSettings,
    round: u64,
    filter: &str,
    actions: &UnboundedSender<Action>,
    commands: &mut UnboundedReceiver<NetCommand>,
) -> RoundEnd {
    let spec = settings.ping_spec(filter);
    tracing::info!(round, filter = %spec.filter.describe(), "round started");
    // A round may only be dropped for a newer one once its discovery is answered: the hub's
    // `Discovered` carries no request id, so an abandoned one would answer the next round's question.
    let (discovered_tx, mut discovered_rx) = tokio::sync::watch::channel(false);
    let progress = actions.clone();
    let on_progress = move |p: &Progress| {
        if matches!(p, Progress::Discovered(_)) {
            let _ = discovered_tx.send(true);
        }
        if let Some(event) = round_event(p) {
            let _ = progress.send(Action::Round { round, event });
        }
    };
    let mut outcome = std::pin::pin!(request::run(client, &spec, on_progress));
    let mut cancellable = false;
    loop {
        tokio::select! {
            result = &mut outcome => return match result {
                Ok(o) => {
                    tracing::info!(round, discovered = o.discovered.len(), ok = o.ok_count(), failed = o.failed_count(), no_reply = o.no_reply.len(), "round done");
                    let _ = actions.send(Action::Round { round, event: RoundEvent::Finished { no_reply: o.no_reply, elapsed_ms: o.elapsed_ms } });
                    RoundEnd::Done
                }
                Err(e) => {
                    tracing::warn!(round, error = %format!("{e:#}"), "round failed");
                    let _ = actions.send(Action::Round { round, event: RoundEvent::Failed(format!("{e:#}")) });
                    RoundEnd::Failed
                }
            },
            _ = discovered_rx.changed(), if !cancellable => cancellable = true,
            cmd = commands.recv(), if cancellable => return match cmd {
                Some(NetCommand::Round { round: next, filter }) => {
                    tracing::info!(round, next, "round superseded");
                    RoundEnd::Superseded(next, filter)
                }
                None => RoundEnd::Quit,
            },
        }
    }
}
