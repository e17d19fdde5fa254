//! `fleet doctor`: checks this console's set-up end to end and prints each problem with the
//! command or step that fixes it: the signing key (present, mode, readable), the pinned hub key,
//! each hub (reachable, this key enrolled), the caller known to the hub and to the nodes, the
//! policies of the built-in agents for this caller, the node keys, and clock skew.

use std::time::Duration;

use anyhow::Result;
use fleet_client::{Client, ClientError, Scope, Settings, Signer, exit, round};
use serde_json::{Map, json};

use super::Ctx;
use crate::config::ClientConfig;

/// A check's verdict.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Ok,
    Warn,
    Fail,
}

struct Report {
    failed: bool,
}

impl Report {
    fn line(&mut self, level: Level, what: &str, text: &str, fix: Option<String>) {
        let tag = match level {
            Level::Ok => "ok  ",
            Level::Warn => "WARN",
            Level::Fail => "FAIL",
        };
        println!("  {tag}  {what:<10} {text}");
        if let Some(fix) = fix {
            println!("        {:<10} fix: {fix}", "");
        }
        self.failed |= level == Level::Fail;
    }
}

/// Nodes asked at most, for the per-node checks.
const SAMPLE: usize = 50;
/// Beyond this a node refuses requests as from the future or expired (its `max_clock_skew`).
const SKEW_LIMIT_MS: i64 = 5_000;

pub async fn run(ctx: &Ctx) -> Result<i32> {
    let mut r = Report { failed: false };
    println!("fleet doctor");
    let config = &ctx.config;
    match ClientConfig::default_path() {
        Some(p) if p.exists() => r.line(Level::Ok, "config", &p.display().to_string(), None),
        Some(p) => r.line(Level::Ok, "config", &format!("no file at {} (defaults)", p.display()), None),
        None => r.line(Level::Warn, "config", "no config directory (HOME unset?)", None),
    }
    let signer = check_key(&mut r, config);
    let hub_key = check_hub_key(&mut r, config);
    check_node_keys(&mut r);
    let (Some(signer), Some(hub_key)) = (signer, hub_key) else {
        println!("\nfix the key problems above first; nothing was sent");
        return Ok(exit::SOME_FAILED);
    };
    let credentials = fleet_client::Credentials { signer: Some(signer.clone()), hub_key: Some(hub_key), ..ctx.credentials.clone() };
    let mut attached = Vec::new();
    for hub in &ctx.settings.hubs {
        let one = Settings { hubs: vec![hub.clone()], ..ctx.settings.clone() };
        match Client::connect(&one, &credentials, false).await {
            Ok(client) => {
                r.line(Level::Ok, "hub", &format!("{hub}: attached as {}", signer.caller), None);
                attached.push((one, client));
            }
            Err(e) => r.line(Level::Fail, "hub", &e.to_string(), Some(hub_fix(&e.to_string(), &signer.caller))),
        }
    }
    if let Some((settings, mut client)) = attached.into_iter().next() {
        check_fleet(&mut r, &mut client, &settings, &signer.caller).await;
    }
    println!();
    if r.failed {
        println!("problems found: see the fixes above");
        Ok(exit::SOME_FAILED)
    } else {
        println!("no problem found");
        Ok(exit::OK)
    }
}

fn check_key(r: &mut Report, config: &ClientConfig) -> Option<Signer> {
    let Some(path) = config.key_path() else {
        r.line(
            Level::Fail,
            "key",
            "no config directory to look for keys in",
            Some("fleet keygen NAME --dir DIR, then FLEET_KEY=DIR/NAME.key".into()),
        );
        return None;
    };
    if !path.exists() {
        r.line(
            Level::Fail,
            "key",
            &format!("no signing key at {}", path.display()),
            Some("fleet keygen NAME (NAME is your caller id), or --caller NAME / FLEET_KEY=FILE for an existing key".into()),
        );
        return None;
    }
    match Signer::load(&path) {
        Ok(s) => {
            r.line(Level::Ok, "key", &format!("{} (caller {})", path.display(), s.caller), None);
            Some(s)
        }
        Err(e) => {
            use std::os::unix::fs::PermissionsExt;
            let loose = std::fs::metadata(&path).map(|m| m.permissions().mode() & 0o077 != 0).unwrap_or(false);
            let fix = if loose { format!("chmod 600 {}", path.display()) } else { "fleet keygen NAME to make a new one".into() };
            r.line(Level::Fail, "key", &e.to_string(), Some(fix));
            None
        }
    }
}

fn check_hub_key(r: &mut Report, config: &ClientConfig) -> Option<[u8; 32]> {
    let path = config.hub_key_path()?;
    if !path.exists() {
        r.line(
            Level::Fail,
            "hub key",
            &format!("no hub key at {}", path.display()),
            Some(format!("copy the hub's hub.pub to {} (or FLEET_HUB_KEY=FILE)", path.display())),
        );
        return None;
    }
    match fleet_protocol::keys::PublicKeys::load(&path) {
        Ok(k) => {
            r.line(Level::Ok, "hub key", &path.display().to_string(), None);
            Some(k.link)
        }
        Err(e) => {
            r.line(Level::Fail, "hub key", &e.to_string(), Some("copy the hub's hub.pub again".into()));
            None
        }
    }
}

fn check_node_keys(r: &mut Report) {
    let Some(dir) = ClientConfig::nodes_dir() else { return };
    let count = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(Result::ok).filter(|e| e.path().extension().is_some_and(|x| x == "pub")).count())
        .unwrap_or(0);
    if count == 0 {
        r.line(
            Level::Warn,
            "node keys",
            &format!("none in {}: replies show as unverified", dir.display()),
            Some(format!("copy each node's node.pub to {}/IDENTITY.pub (or FLEET_NODES_DIR=DIR)", dir.display())),
        );
    } else {
        r.line(Level::Ok, "node keys", &format!("{count} in {}", dir.display()), None);
    }
}

/// What to do about a hub that could not be attached, from what went wrong.
fn hub_fix(error: &str, caller: &str) -> String {
    if error.contains("not enrolled") || error.contains("no answer to the link handshake") {
        format!(
            "on the hub: noded hub enroll --list, then noded hub enroll --accept {caller} --role console (and check the pinned hub key)"
        )
    } else if error.contains("connection refused") {
        "start the hub there (noded hub), or fix the address in `hubs` / --hub / FLEET_HUB".into()
    } else if error.contains("cannot resolve") {
        "fix the host name in `hubs` / --hub / FLEET_HUB".into()
    } else {
        "check the hub's log".into()
    }
}

/// The per-node checks, over one hub: the caller known to the hub and the nodes, the built-in
/// agents' policies, clock skew.
async fn check_fleet(r: &mut Report, client: &mut Client, settings: &Settings, caller: &str) {
    let started_ms = fleet_protocol::now_ms() as i64;
    let spec = settings.spec("rpcutil", "ping", Map::new(), &Scope::default(), Duration::from_secs(5));
    let o = match round::run(client, &spec, |_| {}).await {
        Ok(o) => o,
        Err(ClientError::Hub(e)) if e.contains("unknown caller") => {
            let fix = format!("copy {caller}.pub into the hub's callers directory (hub.callers_dir, default /etc/fleet/callers)");
            r.line(Level::Fail, "caller", &format!("the hub does not know caller '{caller}': {e}"), Some(fix));
            return;
        }
        Err(e) => {
            r.line(Level::Fail, "ping", &e.to_string(), None);
            return;
        }
    };
    r.line(Level::Ok, "caller", &format!("the hub knows caller '{caller}'"), None);
    if o.discovered.is_empty() {
        r.line(
            Level::Warn,
            "nodes",
            "no node is registered with the hub",
            Some("start noded on the nodes and enroll them: noded hub enroll --list".into()),
        );
        return;
    }
    let denied: Vec<&str> =
        o.replies.iter().filter(|x| x.reply.status == fleet_protocol::Status::Denied).map(|x| x.reply.sender.as_str()).collect();
    let ok: Vec<&fleet_client::ReplyRecord> = o.replies.iter().filter(|x| x.reply.status.is_ok()).collect();
    if o.no_reply.is_empty() && denied.is_empty() {
        r.line(Level::Ok, "nodes", &format!("{} of {} answered a ping", ok.len(), o.discovered.len()), None);
    }
    if !o.no_reply.is_empty() {
        let fix =
            format!("copy {caller}.pub into callers_dir on those nodes (nodes drop requests from unknown callers), or check they are up");
        r.line(
            Level::Fail,
            "nodes",
            &format!("{} of {} did not answer: {}", o.no_reply.len(), o.discovered.len(), sample(&o.no_reply)),
            Some(fix),
        );
    }
    if !denied.is_empty() {
        let fix = format!("write policy_dir/rpcutil.policy on those nodes: `policy default deny` then `allow\\t{caller}\\t*\\t*\\t*`");
        r.line(Level::Fail, "policy", &format!("rpcutil is denied to {caller} on {}", sample(&denied)), Some(fix));
    }
    check_policies(r, client, settings, caller, &ok).await;
    let mut worst: Option<(i64, &str)> = None;
    for rep in &ok {
        let Some(node_ms) = rep.reply.data["pong"].as_i64() else { continue };
        let local = started_ms + o.discovery_ms as i64 + (rep.time_ms / 2.0) as i64;
        let skew = node_ms - local;
        if worst.is_none_or(|(w, _)| skew.abs() > w.abs()) {
            worst = Some((skew, rep.reply.sender.as_str()));
        }
    }
    if let Some((skew, node)) = worst {
        let text = format!("largest clock skew {:+.2} s ({node})", skew as f64 / 1000.0);
        let level = if skew.abs() > SKEW_LIMIT_MS {
            Level::Fail
        } else if skew.abs() > 1_000 {
            Level::Warn
        } else {
            Level::Ok
        };
        let fix = (level != Level::Ok).then(|| "run NTP (chrony, systemd-timesyncd) on the nodes and here".to_string());
        r.line(level, "clock", &text, fix);
    }
}

/// Asks a sample of the nodes that answered how their policies treat this caller for each
/// built-in agent's first action.
async fn check_policies(r: &mut Report, client: &mut Client, settings: &Settings, caller: &str, ok: &[&fleet_client::ReplyRecord]) {
    let nodes: Vec<String> = ok.iter().take(SAMPLE).map(|x| x.reply.sender.clone()).collect();
    if nodes.is_empty() {
        return;
    }
    for (agent, _) in fleet_ddl::builtin::all() {
        if agent == "rpcutil" {
            continue;
        }
        let Ok(ddl) = fleet_client::ddl::find(agent) else { continue };
        let Some(action) = ddl.actions.keys().next().cloned() else { continue };
        let mut args = Map::new();
        args.insert("caller".into(), json!(caller));
        args.insert("agent".into(), json!(agent));
        args.insert("check_action".into(), json!(action));
        let spec = settings.spec("rpcutil", "policy_check", args, &Scope::nodes(nodes.clone()), Duration::from_secs(5));
        let Ok(o) = round::run(client, &spec, |_| {}).await else { continue };
        let denied: Vec<String> = o
            .replies
            .iter()
            .filter(|x| x.reply.status.is_ok() && x.reply.data["allowed"] == json!(false))
            .map(|x| format!("{} ({})", x.reply.sender, x.reply.data["rule"].as_str().unwrap_or("?")))
            .collect();
        if denied.is_empty() {
            r.line(Level::Ok, "policy", &format!("{agent}#{action} allowed to {caller} on {} node(s) asked", o.replies.len()), None);
        } else {
            let fix = format!("write policy_dir/{agent}.policy: `policy default deny` then `allow\\t{caller}\\t*\\t*\\t*` (or narrower)");
            r.line(Level::Warn, "policy", &format!("{agent}#{action} denied to {caller} on {}", sample(&denied)), Some(fix));
        }
    }
}

/// Up to five names, then how many more.
fn sample<S: AsRef<str>>(names: &[S]) -> String {
    let shown: Vec<&str> = names.iter().take(5).map(|s| s.as_ref()).collect();
    if names.len() > 5 { format!("{} and {} more", shown.join(", "), names.len() - 5) } else { shown.join(", ") }
}
