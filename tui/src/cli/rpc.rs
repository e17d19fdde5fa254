//! `fleet rpc AGENT ACTION key=value...` (and `fleet policy check`, an rpcutil call): inputs
//! coerced and validated against the DDL before anything is sent, replies with the DDL's labels,
//! then the aggregates.

use anyhow::Result;
use fleet_client::format::value_text;
use fleet_client::{Outcome, aggregate, round};
use fleet_ddl::Display;
use fleet_protocol::Status;
use serde_json::Value;

use super::output::{aggregates_text, print_no_reply, reply_mark};
use super::{Ctx, FilterArgs, OutputArgs};

/// One call as typed.
pub struct Call {
    pub agent: String,
    pub action: String,
    pub inputs: Vec<String>,
    pub no_reply: bool,
    /// ok, failed, always or flatten; the DDL's choice when not given.
    pub display: Option<String>,
}

pub async fn run(ctx: &Ctx, call: &Call, f: &FilterArgs, out: &OutputArgs) -> Result<i32> {
    let ddl = fleet_client::ddl::find(&call.agent)?;
    let args = fleet_client::ddl::parse_inputs(&ddl, &call.action, &call.inputs)?;
    let act = ddl.action(&call.action).expect("parse_inputs checked the action");
    let timeout = std::time::Duration::from_secs(ddl.metadata.timeout);
    let spec = ctx.settings.spec(&call.agent, &call.action, args, &f.scope(), timeout);
    if call.no_reply {
        let mut client = ctx.client().await?;
        let id = round::fire_and_forget(&mut client, &spec).await?;
        println!("Request sent with id: {id}");
        return Ok(0);
    }
    let o = super::ping::with_progress(ctx, &spec, out).await?;
    if super::output::ended_early(&o, out, &spec.filter)? {
        return Ok(o.exit_code());
    }
    let display = match call.display.as_deref() {
        Some("ok") => Display::Ok,
        Some("failed") => Display::Failed,
        Some("flatten") => Display::Flatten,
        Some(_) => Display::Always,
        None => act.display,
    };
    print_replies(act, &o, display);
    print!("{}", aggregates_text(&aggregates(act, &o)));
    println!(
        "\nFinished processing {} / {} hosts in {:.2} ms ({} ok, {} failed)",
        o.replies.len(),
        o.discovered.len(),
        o.elapsed_ms,
        o.ok_count(),
        o.failed_count()
    );
    print_no_reply(&o);
    Ok(o.exit_code())
}

/// The action's aggregates over a round's replies.
pub fn aggregates(act: &fleet_ddl::Action, o: &Outcome) -> Vec<aggregate::Aggregate> {
    aggregate::compute(act, o.replies.iter().map(|r| (&r.reply.status, &r.reply.data)))
}

fn print_replies(act: &fleet_ddl::Action, o: &Outcome, display: Display) {
    let mut sorted: Vec<_> = o.replies.iter().collect();
    sorted.sort_by(|a, b| a.reply.sender.cmp(&b.reply.sender));
    let label_width = act.output.values().map(|v| v.display_as.len()).max().unwrap_or(0);
    for r in sorted {
        let ok = r.reply.status == Status::Ok;
        let show = match display {
            Display::Ok => ok,
            Display::Failed => !ok,
            Display::Always | Display::Flatten => true,
        };
        if !show {
            continue;
        }
        let mark = reply_mark(r.expected, r.signature).trim_start();
        let mark = if mark.is_empty() { String::new() } else { format!(" {mark}") };
        if !ok {
            println!("{:<40} {}: {}{mark}", r.reply.sender, r.reply.status, r.reply.status_msg);
            continue;
        }
        if display == Display::Flatten {
            let parts: Vec<String> = act.output.keys().map(|k| value_text(&r.reply.data[k])).collect();
            println!("{:<40} {}{mark}", r.reply.sender, parts.join(" "));
            continue;
        }
        println!("{}{mark}", r.reply.sender);
        match r.reply.data.as_object() {
            Some(map) => {
                for (key, out) in &act.output {
                    if let Some(v) = map.get(key) {
                        println!("   {:>label_width$}: {}", out.display_as, pretty(v, label_width + 5));
                    }
                }
                for (key, v) in map.iter().filter(|(k, _)| !act.output.contains_key(*k)) {
                    println!("   {key:>label_width$}: {}", pretty(v, label_width + 5));
                }
            }
            None => println!("   {}", value_text(&r.reply.data)),
        }
        println!();
    }
}

/// Structured values pretty-printed and indented under their label.
fn pretty(v: &Value, indent: usize) -> String {
    match v {
        Value::Object(_) | Value::Array(_) => {
            let text = serde_json::to_string_pretty(v).unwrap_or_default();
            text.replace('\n', &format!("\n{}", " ".repeat(indent)))
        }
        other => value_text(other),
    }
}
