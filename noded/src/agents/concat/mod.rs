//! concat: files built from ordered fragments (Puppet's concat), fleet-wide and safely.
//! `add_fragment`, `remove_fragment` and `list` keep fragments under `<state_dir>/concat/`;
//! `build` renders them, diffs against the file on disk, writes atomically where the content or
//! the owner, group or mode differ, and notifies only when the content changed.
//!
//! Targets must lie under the `[concat] roots` of noded.toml; with none (the default) the agent
//! refuses every target. Requests on one node run one at a time, so a build never renders
//! fragments half replaced.

mod build;
mod notify;
mod paths;
mod store;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use fleet_ddl::Ddl;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{ActionError, ActionFuture, Agent, AgentContext, RequestMeta};
use crate::config::NodeConfig;
use build::Wanted;
use notify::Notify;
use store::{Fragment, Store};

/// `[concat]` in noded.toml.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ConcatConfig {
    /// Directories under which targets may be built. None (the default): every target is refused.
    pub roots: Vec<PathBuf>,
    /// Further directories source fragments may be read from; targets never go there.
    pub source_roots: Vec<PathBuf>,
    /// Run `notify` shell commands after a change. Off by default: whoever may build may then run
    /// any command as noded's user. `notify_unit` (systemctl reload-or-restart) is always allowed.
    pub allow_notify_commands: bool,
    /// Seconds a notify may run before it is killed.
    pub notify_timeout: f64,
}

impl Default for ConcatConfig {
    fn default() -> Self {
        ConcatConfig { roots: Vec::new(), source_roots: Vec::new(), allow_notify_commands: false, notify_timeout: 60.0 }
    }
}

impl ConcatConfig {
    /// The key that is wrong and why, for the config error.
    pub fn check(&self) -> Result<(), (String, String)> {
        for (key, dirs) in [("concat.roots", &self.roots), ("concat.source_roots", &self.source_roots)] {
            if let Some(bad) =
                dirs.iter().find(|d| paths::plain_absolute("root", &d.display().to_string()).is_err() && d.as_path() != Path::new("/"))
            {
                return Err((key.into(), format!("'{}' is not a plain absolute directory", bad.display())));
            }
        }
        if !(self.notify_timeout.is_finite() && self.notify_timeout > 0.0) {
            return Err(("concat.notify_timeout".into(), format!("must be a positive number of seconds (got {})", self.notify_timeout)));
        }
        Ok(())
    }
}

/// The agent: its settings and the node's fragment store.
pub struct ConcatAgent {
    ddl: Arc<Ddl>,
    inner: Arc<Inner>,
}

struct Inner {
    config: ConcatConfig,
    store: Store,
    /// One request at a time per node (see the module docs).
    busy: tokio::sync::Mutex<()>,
}

impl ConcatAgent {
    /// The agent of a node with `config`: fragments under `state_dir/concat`.
    pub fn for_config(config: &NodeConfig) -> ConcatAgent {
        Self::new(config.concat.clone(), config.state_dir.join("concat"))
    }

    pub fn new(config: ConcatConfig, store_dir: PathBuf) -> ConcatAgent {
        let inner = Inner { config, store: Store::new(store_dir), busy: tokio::sync::Mutex::new(()) };
        ConcatAgent { ddl: super::builtin_ddl("concat", fleet_ddl::builtin::CONCAT), inner: Arc::new(inner) }
    }
}

fn text<'a>(args: &'a Map<String, Value>, key: &str) -> &'a str {
    args.get(key).and_then(Value::as_str).unwrap_or("")
}

fn storage_error(e: std::io::Error) -> ActionError {
    ActionError::aborted(format!("the fragment store failed: {e}"))
}

/// Cuts `text` to at most `max` bytes on a character boundary, saying so at the end.
fn cut(text: &mut String, max: usize, what: &str) {
    if text.len() > max {
        let total = text.len();
        let at = (0..=max).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
        text.truncate(at);
        text.push_str(&format!("\n... {what} cut at {max} of {total} bytes\n"));
    }
}

impl Inner {
    fn target(&self, args: &Map<String, Value>) -> Result<PathBuf, ActionError> {
        paths::checked_target(&self.config.roots, text(args, "target")).map_err(ActionError::invalid)
    }

    fn add_fragment(&self, args: &Map<String, Value>) -> Result<Value, ActionError> {
        let target = self.target(args)?;
        let name = paths::checked_name(text(args, "name")).map_err(ActionError::invalid)?.to_string();
        let order = args.get("order").and_then(Value::as_i64).unwrap_or(10);
        let (content, source) = (args.get("content").and_then(Value::as_str), args.get("source").and_then(Value::as_str));
        let fragment = match (content, source) {
            (Some(c), None) => Fragment { name, order, content: Some(c.to_string()), source: None },
            (None, Some(s)) => {
                let source = paths::checked_source(&self.config.roots, &self.config.source_roots, s).map_err(ActionError::invalid)?;
                Fragment { name, order, content: None, source: Some(source) }
            }
            _ => return Err(ActionError::invalid("give a fragment either content or source, not both and not neither")),
        };
        let changed = self.store.add(&target, &fragment).map_err(storage_error)?;
        Ok(json!({ "target": target, "fragment": fragment.name, "changed": changed }))
    }

    fn remove_fragment(&self, args: &Map<String, Value>) -> Result<Value, ActionError> {
        let target = self.target(args)?;
        let name = paths::checked_name(text(args, "name")).map_err(ActionError::invalid)?;
        let removed = self.store.remove(&target, name).map_err(storage_error)?;
        Ok(json!({ "removed": removed }))
    }

    fn list(&self, args: &Map<String, Value>) -> Result<Value, ActionError> {
        if text(args, "target").is_empty() {
            let targets = self.store.targets().map_err(storage_error)?;
            let rows: Vec<Value> = targets.into_iter().map(|(t, n)| json!({ "target": t, "fragments": n })).collect();
            return Ok(json!({ "targets": rows }));
        }
        let target = self.target(args)?;
        let rows: Vec<Value> = self
            .store
            .fragments(&target)
            .map_err(storage_error)?
            .into_iter()
            .map(|f| {
                let mut row = json!({ "name": f.name, "order": f.order });
                if let Some(c) = &f.content {
                    row["bytes"] = json!(c.len());
                    row["sha256"] = json!(store::sha256_hex(c.as_bytes()));
                }
                if let Some(s) = &f.source {
                    row["source"] = json!(s);
                }
                row
            })
            .collect();
        Ok(json!({ "fragments": rows }))
    }

    /// What a build asks for, checked before anything is read or written.
    fn build_request(&self, args: &Map<String, Value>) -> Result<(PathBuf, Wanted, Notify, bool), ActionError> {
        let target = self.target(args)?;
        let wanted = Wanted {
            owner: build::Ids::Users.id(text(args, "owner")).map_err(ActionError::invalid)?,
            group: build::Ids::Groups.id(text(args, "group")).map_err(ActionError::invalid)?,
            mode: build::mode_bits(text(args, "mode")).map_err(ActionError::invalid)?,
        };
        let notify = match (text(args, "notify"), text(args, "notify_unit")) {
            ("", "") => Notify::Nothing,
            (cmd, "") if self.config.allow_notify_commands => Notify::Command(cmd.to_string()),
            (_, "") => {
                return Err(ActionError::invalid(
                    "this node runs no notify commands: its noded.toml has no [concat] allow_notify_commands = true (notify_unit is allowed)",
                ));
            }
            ("", unit) => Notify::Unit(unit.to_string()),
            _ => return Err(ActionError::invalid("give notify or notify_unit, not both")),
        };
        Ok((target, wanted, notify, args.get("dry_run").and_then(Value::as_bool).unwrap_or(false)))
    }

    /// Renders, compares and (unless a dry run) writes; the notify is the caller's.
    fn build(&self, target: &Path, wanted: Wanted, dry_run: bool) -> Result<build::Plan, ActionError> {
        let path = paths::resolved_target(&self.config.roots, target).map_err(ActionError::invalid)?;
        let fragments = self.store.fragments(target).map_err(storage_error)?;
        if fragments.is_empty() {
            return Err(ActionError::aborted(format!("{} has no fragments on this node", target.display())));
        }
        let content = build::render(&fragments, &self.config.roots, &self.config.source_roots).map_err(ActionError::aborted)?;
        let plan = build::plan(target, path, content, fragments.len(), wanted).map_err(ActionError::aborted)?;
        if !dry_run {
            plan.apply().map_err(ActionError::aborted)?;
        }
        Ok(plan)
    }
}

/// The reply of a build, before any notify.
fn build_reply(target: &Path, plan: &build::Plan, dry_run: bool) -> Value {
    json!({
        "target": target, "changed": plan.changed, "created": plan.created, "attributes": plan.attributes,
        "diff": plan.diff, "checksum": plan.checksum, "fragments": plan.fragments, "dry_run": dry_run,
        "notified": false, "notify_status": null, "notify_output": "",
    })
}

async fn build_action(inner: Arc<Inner>, args: Map<String, Value>) -> Result<Value, ActionError> {
    let (target, wanted, notify, dry_run) = inner.build_request(&args)?;
    let blocking = inner.clone();
    let target_for_build = target.clone();
    let plan = tokio::task::spawn_blocking(move || blocking.build(&target_for_build, wanted, dry_run))
        .await
        .map_err(|e| ActionError::new(fleet_protocol::Status::UnknownError, format!("concat build task failed: {e}")))??;
    let mut reply = build_reply(&target, &plan, dry_run);
    tracing::info!(target = %target.display(), changed = plan.changed, attributes = plan.attributes.len(), dry_run, "concat build");
    // Owner, group or mode changes alone never notify: the service reads the same content.
    if dry_run || !plan.changed {
        return Ok(reply);
    }
    let timeout = Duration::from_secs_f64(inner.config.notify_timeout);
    let Some(ran) = notify.run(&plan.path, timeout).await else { return Ok(reply) };
    reply["notified"] = json!(true);
    reply["notify_status"] = json!(ran.status);
    reply["notify_output"] = json!(ran.output);
    tracing::info!(target = %target.display(), status = ?ran.status, "concat notify");
    if ran.ok() {
        return Ok(reply);
    }
    let how = match ran.status {
        Some(code) => format!("exited with status {code}"),
        None if ran.timed_out => format!("was killed after {} s", inner.config.notify_timeout),
        None => "did not finish".to_string(),
    };
    Err(ActionError::aborted(format!("{} written, but its {} {how}", target.display(), notify.describe())).with_data(reply))
}

impl Agent for ConcatAgent {
    fn ddl(&self) -> &Ddl {
        &self.ddl
    }

    fn call(&self, _node: Arc<dyn AgentContext>, _meta: RequestMeta, action: &str, args: Map<String, Value>) -> ActionFuture {
        Box::pin(dispatch(self.inner.clone(), action.to_string(), args))
    }
}

/// Runs one action, after the node's previous concat request ended.
async fn dispatch(inner: Arc<Inner>, action: String, args: Map<String, Value>) -> super::ActionResult {
    let _turn = inner.busy.lock().await;
    match action.as_str() {
        "build" => build_action(inner.clone(), args).await,
        // Small file operations: done in place rather than on the blocking pool.
        "add_fragment" => inner.add_fragment(&args),
        "remove_fragment" => inner.remove_fragment(&args),
        "list" => inner.list(&args),
        other => Err(ActionError::new(fleet_protocol::Status::UnknownAction, format!("concat has no action '{other}'"))),
    }
}
