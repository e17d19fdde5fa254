//! `fleet rpc AGENT ACTION key=value...` (and `fleet policy check`, an rpcutil call): inputs
//! coerced and validated against the DDL before anything is sent, replies with the DDL's labels,
//! then the aggregates.

use anyhow::Result;
use fleet_client::format::value_text;
use std::collections::BTreeMap;

use fleet_client::{Outcome, ReplyRecord, aggregate, nodeset, round};
use fleet_ddl::Display;
use fleet_protocol::Status;
use serde_json::Value;

use super::args::ResultArgs;
use super::output::{aggregates_text, print_no_reply, reply_mark};
use super::results::print_rollout;
use super::{Ctx, FilterArgs, OutputArgs};

/// One call as typed.
pub struct Call {
    pub agent: String,
    pub action: String,
    pub inputs: Vec<String>,
    pub no_reply: bool,
    /// ok, failed, always or flatten; the DDL's choice when not given.
    pub display: Option<String>,
    /// Each distinct reply once, with its nodes as a compact set.
    pub fold: bool,
}

pub async fn run(ctx: &Ctx, call: &Call, f: &FilterArgs, out: &OutputArgs, results: &ResultArgs) -> Result<i32> {
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
    let (o, code, hidden) = super::ping::with_progress(ctx, &spec, out, results).await?;
    if super::output::ended_early(&o, code, out, &spec.filter)? {
        return Ok(code);
    }
    let display = match call.display.as_deref() {
        Some("ok") => Display::Ok,
        Some("failed") => Display::Failed,
        Some("flatten") => Display::Flatten,
        Some(_) => Display::Always,
        None => act.display,
    };
    print_replies(act, &o, display, call.fold);
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
    print_rollout(&o, hidden);
    Ok(code)
}

/// The action's aggregates over a round's replies.
pub fn aggregates(act: &fleet_ddl::Action, o: &Outcome) -> Vec<aggregate::Aggregate> {
    aggregate::compute(act, o.replies.iter().map(|r| (&r.reply.status, &r.reply.data)))
}

/// The replies in sender order, or with `fold` each distinct reply once under the compact set of
/// the nodes that gave it (as clush -b and dshbak do).
fn print_replies(act: &fleet_ddl::Action, o: &Outcome, display: Display, fold: bool) {
    let mut sorted: Vec<_> = o
        .replies
        .iter()
        .filter(|r| match display {
            Display::Ok => r.reply.status == Status::Ok,
            Display::Failed => r.reply.status != Status::Ok,
            Display::Always | Display::Flatten => true,
        })
        .collect();
    sorted.sort_by(|a, b| a.reply.sender.cmp(&b.reply.sender));
    let label_width = act.output.values().map(|v| v.display_as.len()).max().unwrap_or(0);
    if !fold {
        for r in sorted {
            print_reply(act, r, &r.reply.sender, display, label_width);
        }
        return;
    }
    // Identical replies: the same status, message, data and marks. serde_json's maps are sorted,
    // so equal data gives equal text.
    let mut groups: BTreeMap<(u8, String, String, String), Vec<&ReplyRecord>> = BTreeMap::new();
    for r in sorted {
        let key = (r.reply.status.code(), r.reply.status_msg.clone(), r.reply.data.to_string(), reply_mark(r.expected, r.signature).into());
        groups.entry(key).or_default().push(r);
    }
    let mut folded: Vec<(String, &ReplyRecord, usize)> = groups
        .into_values()
        .map(|rs| (nodeset::fold(&rs.iter().map(|r| r.reply.sender.as_str()).collect::<Vec<_>>()), rs[0], rs.len()))
        .collect();
    folded.sort_by(|a, b| a.1.reply.sender.cmp(&b.1.reply.sender));
    for (nodes, r, count) in folded {
        let header = format!("{nodes} ({count})");
        let rule = "-".repeat(header.len().min(78));
        println!("{rule}\n{header}\n{rule}");
        print_reply(act, r, "", display, label_width);
    }
}

/// One reply under `who` (its sender, or nothing when a folded group's header names the nodes).
fn print_reply(act: &fleet_ddl::Action, r: &ReplyRecord, who: &str, display: Display, label_width: usize) {
    let mark = reply_mark(r.expected, r.signature).trim_start();
    let mark = if mark.is_empty() { String::new() } else { format!(" {mark}") };
    let lead = if who.is_empty() { "   ".to_string() } else { format!("{who:<40} ") };
    if r.reply.status != Status::Ok {
        println!("{lead}{}: {}{mark}", r.reply.status, r.reply.status_msg);
        return;
    }
    if display == Display::Flatten {
        let parts: Vec<String> = act.output.keys().map(|k| value_text(&r.reply.data[k])).collect();
        println!("{lead}{}{mark}", parts.join(" "));
        return;
    }
    if !who.is_empty() || !mark.is_empty() {
        println!("{who}{mark}");
    }
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
