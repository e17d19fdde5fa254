//! Runs the panel's [`Cmd`]s on a hub link of their own: `process list` on the nodes in scope,
//! and `process kill` with exact `pid@start_time` targets, one request per host. The network task
//! calls [`execute`]; the results go back to the panel as `Action::Processes(Msg)`.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Result;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc::UnboundedSender;

use super::{Cmd, Column, KillOutcome, KillReport, Listing, Msg, Prepared, ProcKey, Signal};
use crate::client::Client;
use crate::console::action::{Action, Scope};
use crate::console::discovery::filter_of;
use crate::procs::{list_args, procs_of};
use crate::request::{self, DiscoveryMethod, Spec};

/// The fields the table shows; `threads` is left out because the node counts them per process.
const LIST_FIELDS: &str =
    "pid,ppid,user,state,rss,vsz,cpu,start_time,started,name,cmdline,zombie,parent_pid,parent_start_time,parent_cmdline";

/// Where the panel's requests go: the console's collective, TTL and discovery timeout. (The
/// caller is the signing key's name; the client sets it on every request.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub collective: String,
    pub ttl: u32,
    pub discovery_timeout: Duration,
}

impl Default for Route {
    /// A fresh config's values.
    fn default() -> Self {
        Route { collective: "fleet".into(), ttl: 60, discovery_timeout: Duration::from_secs(2) }
    }
}

static ROUTE: OnceLock<Route> = OnceLock::new();

/// Sets the [`Route`] for the life of the process (once, when the console starts; later calls
/// change nothing). Without it a fresh config's values apply.
pub fn set_route(route: Route) {
    let _ = ROUTE.set(route);
}

fn route() -> Route {
    ROUTE.get().cloned().unwrap_or_default()
}

impl Route {
    fn spec(&self, client: &Client, action: &str, args: Map<String, Value>, scope: &Scope, action_timeout: Duration) -> Spec {
        Spec {
            agent: "process".into(),
            action: action.into(),
            args,
            filter: filter_of(&scope.filter),
            collective: self.collective.clone(),
            caller: client.signer().map(|s| s.caller.clone()).unwrap_or_default(),
            method: DiscoveryMethod::Registry,
            nodes_file: None,
            targets: scope.targets.clone(),
            timeout: self.discovery_timeout + action_timeout,
            discovery_timeout: self.discovery_timeout,
            ttl: self.ttl,
        }
    }
}

/// Runs one command on `client` and sends what the panel should be told on `tx`. Errors come
/// back as [`Msg::ListFailed`], [`Msg::KillFailed`] or per-target outcomes, never as silence.
pub async fn execute(cmd: Cmd, client: &mut Client, tx: &UnboundedSender<Action>) {
    let route = route();
    let msg = match cmd {
        Cmd::List { seq, pattern, zombies, user, scope, sort } => match list(client, &route, &pattern, zombies, &user, &scope).await {
            Ok(listing) => Msg::Listed { seq, listing: Arc::new(prepare(listing, sort).await) },
            Err(e) => Msg::ListFailed { seq, error: format!("{e:#}") },
        },
        Cmd::Kill { targets, signal } => match kill(client, &route, &targets, signal).await {
            Ok(reports) => Msg::Killed(reports),
            Err(e) => Msg::KillFailed(format!("{e:#}")),
        },
    };
    // The panel may be gone (the console is quitting): nothing to tell then.
    let _ = tx.send(Action::Processes(msg));
}

/// Sorts and measures the rows on a blocking thread: with 50,000 rows that is tens of
/// milliseconds the UI thread does not spend.
async fn prepare(mut listing: Listing, sort: (Column, bool)) -> Listing {
    tokio::task::spawn_blocking(move || {
        listing.prepared = Some(Prepared::of(&listing, sort));
        listing
    })
    .await
    .expect("preparing a listing does not panic")
}

fn action_timeout(ddl: &fleet_ddl::Ddl) -> Duration {
    Duration::from_secs(ddl.metadata.timeout.max(1))
}

async fn list(client: &mut Client, route: &Route, pattern: &str, zombies: bool, user: &str, scope: &Scope) -> Result<Listing> {
    let ddl = crate::commands::find_ddl("process")?;
    let user = user.trim();
    let mut args = list_args(pattern, zombies, (!user.is_empty()).then_some(user), false);
    args.insert("fields".into(), json!(LIST_FIELDS));
    fleet_ddl::validate_request(&ddl, "list", &mut args)?;
    let spec = route.spec(client, "list", args, scope, action_timeout(&ddl));
    let outcome = request::run(client, &spec, |_| {}).await?;
    let failed = outcome
        .replies
        .iter()
        .filter(|r| !r.reply.status.is_ok())
        .map(|r| (r.reply.sender.clone(), format!("{}: {}", r.reply.status, r.reply.status_msg)))
        .collect();
    Ok(Listing {
        procs: procs_of(&outcome),
        hosts_asked: outcome.discovered.len(),
        hosts_answered: outcome.replies.len(),
        failed,
        no_reply: outcome.no_reply,
        prepared: None,
    })
}

/// One `process kill` per host, each with exactly that host's `pid@start_time` targets; every
/// target gets a report, also when its host failed or did not answer.
async fn kill(client: &mut Client, route: &Route, targets: &[ProcKey], signal: Signal) -> Result<Vec<KillReport>> {
    let ddl = crate::commands::find_ddl("process")?;
    let mut by_host: BTreeMap<&str, Vec<&ProcKey>> = BTreeMap::new();
    for t in targets {
        by_host.entry(t.host.as_str()).or_default().push(t);
    }
    let mut reports = Vec::with_capacity(targets.len());
    for (host, keys) in by_host {
        let pairs: Vec<String> = keys.iter().map(|k| format!("{}@{}", k.pid, k.start_time)).collect();
        let mut args = Map::new();
        args.insert("targets".into(), json!(pairs.join(",")));
        args.insert("signal".into(), json!(signal.name()));
        fleet_ddl::validate_request(&ddl, "kill", &mut args)?;
        let exactly_this_host = Scope { filter: String::new(), targets: Some(vec![host.to_string()]) };
        let spec = route.spec(client, "kill", args, &exactly_this_host, action_timeout(&ddl));
        let all = |outcome: KillOutcome| keys.iter().map(move |k| KillReport { key: (*k).clone(), outcome: outcome.clone() });
        match request::run(client, &spec, |_| {}).await {
            Ok(o) => match o.replies.first() {
                Some(r) if r.reply.status.is_ok() => {
                    let answered = reports_of(host, &r.reply.data);
                    // A target the node did not mention was not signalled.
                    for k in &keys {
                        let outcome = answered
                            .iter()
                            .find(|a| a.key == **k)
                            .map(|a| a.outcome.clone())
                            .unwrap_or_else(|| KillOutcome::Other("not in the node's reply".into()));
                        reports.push(KillReport { key: (*k).clone(), outcome });
                    }
                }
                Some(r) => reports.extend(all(KillOutcome::Other(format!("{}: {}", r.reply.status, r.reply.status_msg)))),
                None => reports.extend(all(KillOutcome::Other("no reply from the host".into()))),
            },
            Err(e) => reports.extend(all(KillOutcome::Other(format!("not sent: {e:#}")))),
        }
    }
    Ok(reports)
}

/// The `results` array of a kill reply.
fn reports_of(host: &str, data: &Value) -> Vec<KillReport> {
    data["results"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|x| KillReport {
            key: ProcKey {
                host: host.to_string(),
                pid: x["pid"].as_u64().unwrap_or(0) as u32,
                start_time: x["start_time"].as_u64().unwrap_or(0),
            },
            outcome: KillOutcome::parse(x["outcome"].as_str().unwrap_or("no outcome in the reply")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_results_become_reports() {
        let data = json!({ "results": [
            { "pid": 10, "start_time": 99, "outcome": "signalled" },
            { "pid": 11, "start_time": 98, "outcome": "pid reused" },
            { "pid": 12, "start_time": 97, "outcome": "refused: pid 1 and the kernel are never signalled" },
        ]});
        let r = reports_of("web-01", &data);
        assert_eq!(r[0], KillReport { key: ProcKey { host: "web-01".into(), pid: 10, start_time: 99 }, outcome: KillOutcome::Signalled });
        assert_eq!(r[1].outcome, KillOutcome::PidReused);
        assert_eq!(r[2].outcome.to_string(), "refused: pid 1 and the kernel are never signalled");
    }

    #[test]
    fn the_ddl_accepts_what_the_panel_sends() {
        let ddl = crate::commands::find_ddl("process").unwrap();
        let mut args = list_args("sleep 98765", true, Some("root"), false);
        args.insert("fields".into(), json!(LIST_FIELDS));
        fleet_ddl::validate_request(&ddl, "list", &mut args).unwrap();
        let mut args = Map::new();
        args.insert("targets".into(), json!("10@99,11@98"));
        args.insert("signal".into(), json!(Signal::Chld.name()));
        fleet_ddl::validate_request(&ddl, "kill", &mut args).unwrap();
        for s in Signal::MENU {
            let mut args = Map::new();
            args.insert("targets".into(), json!("10@99"));
            args.insert("signal".into(), json!(s.name()));
            fleet_ddl::validate_request(&ddl, "kill", &mut args).unwrap_or_else(|e| panic!("{s}: {e}"));
        }
    }
}
