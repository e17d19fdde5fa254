//! The detail pane of one process (`enter`): what the listing had at once, then the process
//! agent's `detail` (full command line, environment, cwd, open files, cgroup, threads, start
//! date) fetched from its host on demand. It opens in the shell's inspector, so `y` and `w` work
//! on it as on any reply.

use serde_json::{Map, Value, json};

use super::table::{cpu_text, started_text};
use super::{Cmd, ProcessesPanel, net};
use crate::console::action::Action;
use crate::console::inspector::pretty::{Unit, text_lines, value_lines};
use crate::console::inspector::{InspectLine, Inspection, LineKind};
use fleet_client::process::{Proc, ProcKey};
use fleet_client::{Client, Settings};

/// The detail's fields in the order an admin reads them; the environment, the longest, last.
const ORDER: [&str; 16] = [
    "cmdline",
    "argv",
    "cwd",
    "exe",
    "user",
    "state",
    "ppid",
    "threads",
    "open_files",
    "cgroup",
    "started",
    "rss",
    "vsz",
    "cpu",
    "start_time",
    "environment",
];

/// `web-01:1234@5678`: exactly one process, as `fleet kill` takes it.
pub fn key_text(key: &ProcKey) -> String {
    format!("{}:{}@{}", key.host, key.pid, key.start_time)
}

/// What the pane shows: the listed row, then the node's detail, an error, or that it is on its way.
pub fn inspection(key: &ProcKey, listed: Option<&Proc>, detail: Option<&Result<Value, String>>) -> Inspection {
    let mut lines = vec![InspectLine::heading("Listed")];
    let field = |lines: &mut Vec<InspectLine>, label: &str, value: String| lines.push(InspectLine::field(1, label, &value));
    field(&mut lines, "Host", key.host.clone());
    field(&mut lines, "PID", key.pid.to_string());
    field(&mut lines, "Start ticks", key.start_time.to_string());
    if let Some(p) = listed {
        field(&mut lines, "User", p.user.clone());
        field(&mut lines, "State", p.state.clone());
        field(&mut lines, "CPU %", cpu_text(p.cpu));
        field(&mut lines, "RSS", Unit::Bytes.full(&json!(p.rss)));
        field(&mut lines, "VSZ", Unit::Bytes.full(&json!(p.vsz)));
        field(&mut lines, "Started", format!("{} ({})", Unit::EpochSecs.short(&json!(p.started)), started_text(p.started, None)));
        text_lines(&mut lines, 1, "Command line", &p.cmdline, LineKind::Field);
        if let Some(ppid) = p.parent_pid.filter(|_| p.zombie) {
            field(&mut lines, "Zombie of", format!("{ppid} {}", p.parent_cmdline.as_deref().unwrap_or_default()));
        }
    }
    lines.push(InspectLine::heading(&format!("Detail from {}", key.host)));
    match detail {
        None => lines.push(InspectLine::note("fetching process#detail ...")),
        Some(Err(e)) => text_lines(&mut lines, 1, "failed", e, LineKind::Error),
        Some(Ok(data)) => detail_lines(&mut lines, data),
    }
    let id = format!("process:{}", key_text(key));
    let file_stem = format!("process-{}-{}", key.host, key.pid);
    Inspection { id, title: format!("Process {}", key_text(key)), file_stem, lines }
}

/// The node's detail under the DDL's labels and units; what it could not read, with the reason.
fn detail_lines(lines: &mut Vec<InspectLine>, data: &Value) {
    let ddl = fleet_client::ddl::find("process").ok();
    let act = ddl.as_ref().and_then(|d| d.action("detail"));
    let Value::Object(m) = data else { return };
    let keys =
        ORDER.iter().map(|k| k.to_string()).chain(m.keys().filter(|k| !ORDER.contains(&k.as_str()) && !k.ends_with("_error")).cloned());
    for key in keys {
        let Some(v) = m.get(&key) else { continue };
        let output = act.and_then(|a| a.output.get(&key));
        let label = output.map_or(key.clone(), |o| o.display_as.clone());
        if let Some(why) = m.get(&format!("{key}_error")).and_then(Value::as_str) {
            lines.push(InspectLine { indent: 1, label, value: format!("not readable: {why}"), kind: LineKind::Error });
            continue;
        }
        let unit = output.map_or_else(|| Unit::guess(&key, v), Unit::of_output);
        value_lines(lines, 1, &label, v, unit);
    }
}

impl ProcessesPanel {
    /// `enter`: the pane opens at once with the listed row, and the detail is asked for.
    pub(super) fn open_detail(&self) -> Option<Action> {
        let p = self.selected()?;
        let key = ProcKey::of(p);
        let pane = inspection(&key, Some(p), None);
        Some(Action::Batch(vec![Action::Inspect(Box::new(pane)), net(Cmd::Detail { key })]))
    }

    /// The detail came back: the open pane shows it (if it still shows this process).
    pub(super) fn on_detail(&self, key: ProcKey, result: Result<Value, String>) -> Option<Action> {
        let listed = self.listing.procs.iter().find(|p| key.is(p));
        Some(Action::InspectUpdate(Box::new(inspection(&key, listed, Some(&result)))))
    }
}

/// process#detail of exactly `key` on its host, through the client core.
pub async fn fetch(client: &mut Client, settings: &Settings, key: &ProcKey) -> Result<Value, String> {
    let mut args = Map::new();
    args.insert("target".into(), json!(format!("{}@{}", key.pid, key.start_time)));
    let (_, timeout) = fleet_client::ddl::checked("process", "detail", &mut args).map_err(|e| e.to_string())?;
    let spec = settings.spec("process", "detail", args, &fleet_client::Scope::nodes(vec![key.host.clone()]), timeout);
    let outcome = fleet_client::round::run(client, &spec, |_| {}).await.map_err(|e| e.to_string());
    crate::console::net::single_reply(&key.host, outcome)
}
