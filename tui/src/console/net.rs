//! The network task: owns the hub links, runs what the UI asks for, and reports back as actions.
//! It never blocks the UI (they only share channels).
//!
//! One subscribed link watches the hub: link state, node events and the registry (node list and
//! the filter's members). Every piece of work (a discovery round, an RPC, an inventory fetch, the
//! Processes and Xen panels' commands) runs as its own task on its own link from a small pool, so
//! a slow request never holds up another, and a hub error or late reply can only reach the work
//! it belongs to. When the watching link fails the task says so and reconnects every couple of
//! seconds by itself; a round asked for meanwhile runs as soon as the link is back.
//!
//! The Metrics view's subscription lives on one more link of its own (`stream.rs`): its
//! updates arrive unasked, so they must not share a link with work that reads replies.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use fleet_protocol::{Filter, Message, MetricSubscribe};
use serde_json::{Map, Value};
use tokio::sync::Semaphore;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::task::AbortHandle;
use tokio::time::Instant;

use fleet_client::metrics::profile;
use fleet_client::{Client, Credentials, Outcome, Progress, SignatureCheck, Spec, round};

use super::action::{Action, LinkState, NetCommand, ReplyRow, RequestEvent, RequestInfo, Scope};
use super::discovery::filter_of;
use super::inventory::{self, Part};
use super::rpc::{self, FleetAgent};
use super::{concat, jobs, metrics};
use super::{processes, xen};

const RETRY_EVERY: Duration = Duration::from_secs(2);
const PING_EVERY: Duration = Duration::from_secs(2);
/// With a ping every 2 s, this much silence means the hub is gone even if the socket says nothing.
const SILENCE_LIMIT: Duration = Duration::from_secs(6);
/// Node events come in bursts (a rack rebooting); one registry read per burst is enough.
const RESYNC_DELAY: Duration = Duration::from_millis(150);
/// Time the nodes get to answer a ping once discovery is done.
const PING_ACTION_TIMEOUT: Duration = Duration::from_secs(5);
/// Links doing work at once; more work waits for one to be free.
const MAX_WORK_LINKS: usize = 8;
/// An idle work link older than this is closed rather than reused.
const IDLE_LINK_AGE: Duration = Duration::from_secs(30);

/// What the network task needs: the request settings (hubs, collective, ttl, timeouts) and the
/// credentials every link it opens proves itself with.
#[derive(Clone)]
pub struct NetSettings {
    pub settings: fleet_client::Settings,
    pub credentials: Credentials,
}

impl NetSettings {
    /// A request on `scope`, built by the client core like every CLI command's.
    pub fn spec(&self, agent: &str, action: &str, args: Map<String, Value>, scope: &Scope, action_timeout: Duration) -> Spec {
        self.settings.spec(agent, action, args, &scope.client(), action_timeout)
    }

    /// An rpcutil ping round on the nodes matching `filter`, like `fleet ping -S FILTER`.
    pub fn ping_spec(&self, filter: &str) -> Spec {
        let mut spec = self.spec("rpcutil", "ping", Map::new(), &Scope::filter(filter), PING_ACTION_TIMEOUT);
        spec.timeout = self.settings.discovery_timeout + PING_ACTION_TIMEOUT;
        spec
    }

    async fn connect(&self, subscribe: bool) -> fleet_client::Result<Client> {
        Client::connect(&self.settings, &self.credentials, subscribe).await
    }
}

/// Work links: reused while fresh, at most [`MAX_WORK_LINKS`] busy at once.
struct Pool {
    net: Arc<NetSettings>,
    idle: Mutex<Vec<(Client, Instant)>>,
    busy: Semaphore,
}

impl Pool {
    fn new(net: Arc<NetSettings>) -> Pool {
        Pool { net, idle: Mutex::new(Vec::new()), busy: Semaphore::new(MAX_WORK_LINKS) }
    }

    async fn take(&self) -> Result<Client> {
        let reused = {
            let mut idle = self.idle.lock().expect("pool lock");
            idle.retain(|(_, since)| since.elapsed() < IDLE_LINK_AGE);
            idle.pop()
        };
        match reused {
            Some((client, _)) => Ok(client),
            None => Ok(self.net.connect(false).await?),
        }
    }

    /// Gives a link back after work that ended cleanly (a link whose work was cut short is
    /// dropped: it may still carry that work's answers).
    fn give(&self, client: Client) {
        self.idle.lock().expect("pool lock").push((client, Instant::now()));
    }

    fn clear(&self) {
        self.idle.lock().expect("pool lock").clear();
    }
}

/// Why a connected session ended.
enum Ended {
    /// The UI is gone (its command channel closed).
    Quit,
    LinkLost(String),
}

/// The work that is running, so a newer round can replace an older one.
struct Work {
    settings: Arc<NetSettings>,
    pool: Arc<Pool>,
    actions: UnboundedSender<Action>,
    round: Option<AbortHandle>,
    /// The filter of the latest round: whose members the registry reads report.
    active_filter: Arc<Mutex<String>>,
    /// The metrics stream's inbox of subscriptions, once the Metrics view first asked.
    metrics: Option<UnboundedSender<MetricSubscribe>>,
}

impl Work {
    fn start(&mut self, cmd: NetCommand) {
        let (settings, pool, actions) = (self.settings.clone(), self.pool.clone(), self.actions.clone());
        match cmd {
            NetCommand::Round { round, filter } => {
                if let Some(previous) = self.round.take() {
                    previous.abort();
                }
                *self.active_filter.lock().expect("filter lock") = filter.clone();
                let task = tokio::spawn(async move { run_round(&settings, &pool, round, &filter, &actions).await });
                self.round = Some(task.abort_handle());
            }
            NetCommand::Rpc(info) => {
                tokio::spawn(async move { run_rpc(&settings, &pool, *info, &actions).await });
            }
            NetCommand::FetchNode { node } => {
                tokio::spawn(async move { fetch_node(&settings, &pool, &node, &actions).await });
            }
            NetCommand::FleetAgents { scope } => {
                tokio::spawn(async move {
                    let result = fleet_agents(&settings, &pool, &scope).await;
                    let _ = actions.send(Action::Rpc(rpc::Msg::Agents(result)));
                });
            }
            NetCommand::Facts { scope, facts } => {
                tokio::spawn(async move {
                    let result = fleet_facts(&settings, &pool, &scope, &facts).await;
                    let _ = actions.send(Action::Discovery(super::discovery::Msg::Facts(result)));
                });
            }
            NetCommand::Processes(cmd) => {
                tokio::spawn(async move {
                    with_link(&pool, &actions, "processes", async |client, actions| {
                        processes::execute(cmd, client, &settings.settings, actions).await
                    })
                    .await
                });
            }
            NetCommand::Xen(cmd) => {
                tokio::spawn(async move {
                    with_link(&pool, &actions, "xen", async |client, actions| xen::execute(cmd, client, &settings.settings, actions).await)
                        .await
                });
            }
            NetCommand::Jobs(cmd) => {
                tokio::spawn(async move {
                    with_link(&pool, &actions, "jobs", async |client, actions| {
                        jobs::execute(cmd, client, &settings.settings, actions).await
                    })
                    .await
                });
            }
            NetCommand::Metrics(metrics::Cmd::Subscribe(ask)) => {
                // One stream for the console's lifetime; each ask replaces its subscription.
                let stream = self.metrics.get_or_insert_with(|| {
                    let (tx, rx) = unbounded_channel();
                    tokio::spawn(metrics_stream(settings.clone(), rx, actions.clone()));
                    tx
                });
                if stream.send(ask).is_err() {
                    tracing::error!("the metrics stream is gone");
                }
            }
            NetCommand::Metrics(metrics::Cmd::Facts { nodes, fact }) => {
                tokio::spawn(async move {
                    let scope = Scope { filter: String::new(), targets: Some(nodes) };
                    let result = fleet_facts(&settings, &pool, &scope, std::slice::from_ref(&fact)).await.map(|by_node| {
                        by_node.into_iter().map(|(node, mut values)| (node, values.remove(&fact).unwrap_or(Value::Null))).collect()
                    });
                    let _ = actions.send(Action::Metrics(metrics::Msg::Facts { fact, result }));
                });
            }
            NetCommand::Metrics(metrics::Cmd::Matching(profiles)) => {
                tokio::spawn(async move {
                    let result = on_link(&pool, async |client| profile::matching(client, &settings.settings, &profiles).await).await;
                    let _ = actions.send(Action::Metrics(metrics::Msg::Matching(result)));
                });
            }
            NetCommand::Metrics(metrics::Cmd::Count(wanted)) => {
                tokio::spawn(async move {
                    let result = on_link(&pool, async |client| profile::process_counts(client, &settings.settings, &wanted).await).await;
                    let time_ms = fleet_protocol::now_ms();
                    let _ = actions.send(Action::Metrics(metrics::Msg::Counts { time_ms, result }));
                });
            }
            NetCommand::Concat(cmd) => {
                tokio::spawn(async move {
                    with_link(&pool, &actions, "concat", async |client, actions| {
                        concat::execute(cmd, client, &settings.settings, actions).await
                    })
                    .await
                });
            }
        }
    }
}

/// Runs `work` on a pooled link; a link that cannot be had is reported in the footer.
async fn with_link(
    pool: &Pool,
    actions: &UnboundedSender<Action>,
    what: &str,
    work: impl AsyncFnOnce(&mut Client, &UnboundedSender<Action>),
) {
    let _permit = pool.busy.acquire().await;
    match pool.take().await {
        Ok(mut client) => {
            work(&mut client, actions).await;
            pool.give(client);
        }
        Err(e) => {
            let _ = actions.send(super::action::Notice::error(format!("{what}: {e:#}")));
        }
    }
}

/// Runs `work` on a pooled link and returns what it found; the error says why, also when no
/// link could be had (for views that wait on an answer either way).
async fn on_link<T>(pool: &Pool, work: impl AsyncFnOnce(&mut Client) -> fleet_client::Result<T>) -> Result<T, String> {
    let _permit = pool.busy.acquire().await;
    let mut client = pool.take().await.map_err(|e| format!("{e:#}"))?;
    let result = work(&mut client).await.map_err(|e| format!("{e:#}"));
    pool.give(client);
    result
}

/// The task. Runs until the UI drops its command sender.
pub async fn run(
    settings: fleet_client::Settings,
    credentials: Credentials,
    actions: UnboundedSender<Action>,
    mut commands: UnboundedReceiver<NetCommand>,
) {
    let settings = Arc::new(NetSettings { settings, credentials });
    let mut work = Work {
        pool: Arc::new(Pool::new(settings.clone())),
        settings: settings.clone(),
        actions: actions.clone(),
        round: None,
        active_filter: Arc::new(Mutex::new(String::new())),
        metrics: None,
    };
    // A round asked for while no hub was reachable runs on connect.
    let mut wanted: Option<NetCommand> = None;
    loop {
        match settings.connect(true).await {
            Ok(mut client) => {
                tracing::info!(hub = %client.hub(), "hub link up");
                let _ = actions.send(Action::Link(LinkState::Connected { hub: client.hub().to_string() }));
                if let Some(cmd) = wanted.take() {
                    work.start(cmd);
                }
                match session(&mut client, &settings, &actions, &mut commands, &mut work).await {
                    Ended::Quit => return,
                    Ended::LinkLost(reason) => {
                        tracing::warn!(hub = %client.hub(), %reason, "hub link lost");
                        work.pool.clear();
                        let _ = actions.send(Action::Link(LinkState::Disconnected { reason }));
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "cannot attach to a hub; retrying");
                let _ = actions.send(Action::Link(LinkState::Disconnected { reason: format!("{e:#}") }));
            }
        }
        if !wait_for_retry(&mut commands, &mut wanted, &mut work).await {
            return;
        }
    }
}

/// Sleeps until the next connection attempt. Rounds asked for meanwhile wait for the link (the
/// latest wins); other work is tried at once and reports its own failure. Returns false when the
/// UI is gone.
async fn wait_for_retry(commands: &mut UnboundedReceiver<NetCommand>, wanted: &mut Option<NetCommand>, work: &mut Work) -> bool {
    let until = Instant::now() + RETRY_EVERY;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(until) => return true,
            cmd = commands.recv() => match cmd {
                Some(round @ NetCommand::Round { .. }) => *wanted = Some(round),
                Some(other) => work.start(other),
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
    work: &mut Work,
) -> Ended {
    let filter = work.active_filter.lock().expect("filter lock").clone();
    if let Err(e) = resync(client, settings, actions, &filter).await {
        return Ended::LinkLost(format!("{e:#}"));
    }
    let mut last_heard = Instant::now();
    let mut resync_at: Option<Instant> = None;
    let mut ping = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let resync_deadline = resync_at.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            cmd = commands.recv() => match cmd {
                Some(cmd) => work.start(cmd),
                None => return Ended::Quit,
            },
            msg = client.recv() => match msg {
                Ok(msg) => {
                    last_heard = Instant::now();
                    match msg {
                        Message::Event(ev) => {
                            tracing::debug!(?ev, "node event");
                            let _ = actions.send(Action::NodeEvent(ev));
                            resync_at.get_or_insert(Instant::now() + RESYNC_DELAY);
                        }
                        Message::Pong | Message::Welcome(_) => {}
                        other => tracing::debug!(kind = ?other.kind(), "ignored a message on the watching link"),
                    }
                }
                Err(e) => return Ended::LinkLost(format!("{e:#}")),
            },
            _ = tokio::time::sleep_until(resync_deadline), if resync_at.is_some() => {
                resync_at = None;
                let filter = work.active_filter.lock().expect("filter lock").clone();
                if let Err(e) = resync(client, settings, actions, &filter).await {
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

/// Reads the registry: every node, and who matches the filter in force.
async fn resync(client: &mut Client, settings: &NetSettings, actions: &UnboundedSender<Action>, active_filter: &str) -> Result<()> {
    let (collective, timeout) = (&settings.settings.collective, settings.settings.connect_timeout);
    let all = client.discover(&Filter::default(), collective, timeout).await?;
    let members = if active_filter.trim().is_empty() {
        all.clone()
    } else {
        match client.discover(&filter_of(active_filter), collective, timeout).await {
            Ok(nodes) => nodes,
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), filter = %active_filter, "cannot re-read the filter's members");
                let _ = actions.send(Action::Nodes(all));
                return Ok(());
            }
        }
    };
    let _ = actions.send(Action::Nodes(all));
    let _ = actions.send(Action::Members { filter: active_filter.to_string(), nodes: members });
    Ok(())
}

/// A round's or request's progress as the console shows it.
fn request_event(p: &Progress) -> Option<RequestEvent> {
    match p {
        Progress::Discovered(nodes) => Some(RequestEvent::Discovered(nodes.clone())),
        // A reply whose signature does not check against the node's key is shown as failed.
        Progress::Reply { reply, expected, rtt, signature: SignatureCheck::Bad } => Some(RequestEvent::Reply(Box::new(ReplyRow {
            sender: reply.sender.clone(),
            status: fleet_protocol::Status::UnknownError,
            message: "BAD SIGNATURE: this reply does not check against the node's key".into(),
            data: serde_json::Value::Null,
            ms: rtt.as_secs_f64() * 1000.0,
            expected: *expected,
        }))),
        Progress::Reply { reply, expected, rtt, .. } => Some(RequestEvent::Reply(Box::new(ReplyRow {
            sender: reply.sender.clone(),
            status: reply.status,
            message: reply.status_msg.clone(),
            data: reply.data.clone(),
            ms: rtt.as_secs_f64() * 1000.0,
            expected: *expected,
        }))),
        Progress::Sent { request_id, unknown } => {
            if !unknown.is_empty() {
                tracing::info!(?unknown, "the hub has no link to some discovered nodes");
            }
            Some(RequestEvent::Sent { request_id: request_id.clone() })
        }
    }
}

/// Runs `spec` on a pooled link, reporting progress through `report`. Returns the outcome, or
/// the error as text (already reported as `Failed`).
async fn run_spec(pool: &Pool, spec: &Spec, report: impl Fn(RequestEvent)) -> Result<Outcome, String> {
    let _permit = pool.busy.acquire().await;
    let mut client = match pool.take().await {
        Ok(c) => c,
        Err(e) => {
            let e = format!("{e:#}");
            report(RequestEvent::Failed(e.clone()));
            return Err(e);
        }
    };
    let outcome = round::run(&mut client, spec, |p| {
        if let Some(event) = request_event(p) {
            report(event);
        }
    })
    .await;
    match outcome {
        Ok(o) => {
            pool.give(client);
            let down = o.down.iter().map(|d| (d.identity.clone(), d.since_ms)).collect();
            report(RequestEvent::Finished { no_reply: o.no_reply.clone(), down, elapsed_ms: o.elapsed_ms });
            Ok(o)
        }
        Err(e) => {
            let e = format!("{e:#}");
            report(RequestEvent::Failed(e.clone()));
            Err(e)
        }
    }
}

async fn run_round(settings: &NetSettings, pool: &Pool, round: u64, filter: &str, actions: &UnboundedSender<Action>) {
    let spec = settings.ping_spec(filter);
    tracing::info!(round, filter = %spec.filter.describe(), "round started");
    let result = run_spec(pool, &spec, |event| {
        let _ = actions.send(Action::Round { round, event });
    })
    .await;
    match result {
        Ok(o) => {
            tracing::info!(
                round,
                discovered = o.discovered.len(),
                ok = o.ok_count(),
                failed = o.failed_count(),
                no_reply = o.no_reply.len(),
                "round done"
            )
        }
        Err(e) => tracing::warn!(round, error = %e, "round failed"),
    }
    // Who joined or left while the round ran.
    if let Ok(mut client) = pool.take().await
        && resync(&mut client, settings, actions, filter).await.is_ok()
    {
        pool.give(client);
    }
}

async fn run_rpc(settings: &NetSettings, pool: &Pool, info: RequestInfo, actions: &UnboundedSender<Action>) {
    // The form's rollout goes into the client core's scope, as the CLI's flags do: the core picks
    // the subset, sends by batches and stops on failures.
    let mut scope = info.scope.client();
    scope.rollout = info.rollout.clone();
    let spec = settings.settings.spec(&info.agent, &info.action, info.args.clone(), &scope, info.timeout);
    let id = info.id;
    tracing::info!(id, agent = %info.agent, action = %info.action, scope = %info.scope.describe(), rollout = ?info.rollout, "request started");
    let result = run_spec(pool, &spec, |event| {
        let _ = actions.send(Action::Request { id, event });
    })
    .await;
    match result {
        Ok(o) => {
            if let Some(report) = o.rollout {
                let _ = actions.send(Action::Rpc(rpc::Msg::RolloutReport { id, report: Box::new(report) }));
            }
        }
        Err(e) => tracing::warn!(id, error = %e, "request failed"),
    }
}

/// The one reply of a single-node request, or why there is none.
pub(super) fn single_reply(node: &str, outcome: Result<Outcome, String>) -> Result<Value, String> {
    let o = outcome?;
    match o.replies.into_iter().find(|r| r.reply.sender == node) {
        Some(r) if r.reply.status.is_ok() => Ok(r.reply.data),
        Some(r) => Err(format!("{}: {}", r.reply.status, r.reply.status_msg)),
        None => Err(format!("no reply from {node}")),
    }
}

async fn fetch_node(settings: &NetSettings, pool: &Pool, node: &str, actions: &UnboundedSender<Action>) {
    let scope = Scope { filter: String::new(), targets: Some(vec![node.to_string()]) };
    for part in Part::ALL {
        let spec = settings.spec("rpcutil", part.action(), Map::new(), &scope, Duration::from_secs(5));
        let result = single_reply(node, run_spec(pool, &spec, |_| {}).await);
        let _ = actions.send(Action::Inventory(inventory::Msg::Fetched { node: node.to_string(), part, result }));
    }
}

/// rpcutil get_facts of `facts` over `scope`: each answering node's values.
async fn fleet_facts(
    settings: &NetSettings,
    pool: &Pool,
    scope: &Scope,
    facts: &[String],
) -> Result<std::collections::HashMap<String, Map<String, Value>>, String> {
    let mut args = Map::new();
    args.insert("facts".into(), Value::String(facts.join(",")));
    let spec = settings.spec("rpcutil", "get_facts", args, scope, Duration::from_secs(5));
    let o = run_spec(pool, &spec, |_| {}).await?;
    Ok(o.replies
        .into_iter()
        .filter(|r| r.reply.status.is_ok())
        .map(|r| (r.reply.sender, r.reply.data["values"].as_object().cloned().unwrap_or_default()))
        .collect())
}

/// rpcutil agent_inventory over `scope`: every agent some node reports, with the newest version
/// seen and how many nodes have it.
async fn fleet_agents(settings: &NetSettings, pool: &Pool, scope: &Scope) -> Result<Vec<FleetAgent>, String> {
    let spec = settings.spec("rpcutil", "agent_inventory", Map::new(), scope, Duration::from_secs(5));
    let o = run_spec(pool, &spec, |_| {}).await?;
    let mut agents: BTreeMap<String, FleetAgent> = BTreeMap::new();
    for r in o.replies.iter().filter(|r| r.reply.status.is_ok()) {
        for a in r.reply.data["agents"].as_array().into_iter().flatten() {
            let Some(name) = a["name"].as_str() else {
                continue;
            };
            let version = a["version"].as_str().unwrap_or_default().to_string();
            let entry =
                agents.entry(name.to_string()).or_insert_with(|| FleetAgent { name: name.to_string(), version: version.clone(), nodes: 0 });
            entry.nodes += 1;
            if version > entry.version {
                entry.version = version;
            }
        }
    }
    if agents.is_empty() {
        return Err(if o.discovered.is_empty() {
            "no nodes to ask for their agents".to_string()
        } else {
            "no node answered agent_inventory".to_string()
        });
    }
    Ok(agents.into_values().collect())
}

mod stream;
use stream::metrics_stream;

#[cfg(test)]
mod tests;
