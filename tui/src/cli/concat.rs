//! `fleet concat add|remove|list|build`: one round of the concat agent each, with every node's
//! answer as a few lines of text and nodes that said the same thing folded into a compact set
//! (`web-[01-03] (3): would change` and the diff once). A build ends with how many nodes changed.

use std::io::Read as _;

use anyhow::{Context as _, Result};
use fleet_client::concat::{self, AGENT, Build, FragmentBody, NodeResult, Summary};
use fleet_client::{Outcome, ReplyRecord};
use serde_json::{Map, Value};

use super::args::{ConcatCommand, ResultArgs};
use super::output::{ended_early, print_no_reply};
use super::results::print_rollout;
use super::{Ctx, FilterArgs, OutputArgs};

pub async fn run(ctx: &Ctx, cmd: ConcatCommand) -> Result<i32> {
    match cmd {
        ConcatCommand::Add { target, name, order, content, content_file, source, filter, output, results } => {
            let body = match (content, content_file, source) {
                (Some(text), _, _) => FragmentBody::Content(text),
                (_, Some(file), _) => FragmentBody::Content(read_local(&file)?),
                (_, _, Some(path)) => FragmentBody::Source(path),
                _ => unreachable!("clap requires one of --content, --content-file, --source"),
            };
            let args = concat::add_args(&target, &name, order, &body);
            let text = |r: &ReplyRecord| {
                if r.reply.data["changed"] == Value::Bool(true) {
                    format!("fragment {name} stored")
                } else {
                    format!("fragment {name} unchanged")
                }
            };
            each_node(ctx, "add_fragment", args, &filter, &output, &results, text).await
        }
        ConcatCommand::Remove { target, name, filter, output, results } => {
            let text = |r: &ReplyRecord| {
                if r.reply.data["removed"] == Value::Bool(true) {
                    format!("fragment {name} removed")
                } else {
                    format!("no fragment {name}")
                }
            };
            each_node(ctx, "remove_fragment", concat::remove_args(&target, &name), &filter, &output, &results, text).await
        }
        ConcatCommand::List { target, filter, output, results } => {
            let args = concat::list_args(target.as_deref().unwrap_or(""));
            each_node(ctx, "list", args, &filter, &output, &results, list_text).await
        }
        ConcatCommand::Build { target, dry_run, owner, group, mode, notify, notify_unit, filter, output, results } => {
            let build = Build {
                target,
                owner: owner.unwrap_or_default(),
                group: group.unwrap_or_default(),
                mode: mode.unwrap_or_default(),
                dry_run,
                notify: notify.unwrap_or_default(),
                notify_unit: notify_unit.unwrap_or_default(),
            };
            let (o, code, hidden) = match ask(ctx, "build", build.args(), &filter, &output, &results).await? {
                Asked::Printed(code) => return Ok(code),
                Asked::Replies(o, code, hidden) => (o, code, hidden),
            };
            print_folded(concat::results(&o).into_iter().map(|(node, r)| (node, build_text(&r, dry_run))));
            println!("{}{}", Summary::of(&o).line(dry_run), if dry_run { " (dry run: nothing written)" } else { "" });
            print_no_reply(&o);
            print_rollout(&o, hidden);
            Ok(code)
        }
    }
}

/// A local file's text (`-`: standard input), to send as a fragment.
fn read_local(file: &std::path::Path) -> Result<String> {
    if file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).context("reading the fragment from standard input")?;
        return Ok(text);
    }
    std::fs::read_to_string(file).with_context(|| format!("reading the fragment from {}", file.display()))
}

/// What a round left to print.
enum Asked {
    /// Its end was printed already (JSON, or no node matched); the exit code.
    Printed(i32),
    /// The replies, the exit code, and how many replies `--filter-replies` left out.
    Replies(Box<Outcome>, i32, usize),
}

/// Runs `concat#action` on the filtered nodes with the progress bar.
async fn ask(
    ctx: &Ctx,
    action: &str,
    mut args: Map<String, Value>,
    f: &FilterArgs,
    out: &OutputArgs,
    results: &ResultArgs,
) -> Result<Asked> {
    let (_, timeout) = fleet_client::ddl::checked(AGENT, action, &mut args)?;
    let spec = ctx.settings.spec(AGENT, action, args, &f.scope(), timeout);
    let (o, code, hidden) = super::ping::with_progress(ctx, &spec, out, results).await?;
    if ended_early(&o, code, out, &spec.filter)? {
        return Ok(Asked::Printed(code));
    }
    Ok(Asked::Replies(Box::new(o), code, hidden))
}

/// A round whose replies are each told in `text` (failures in their own words), folded.
async fn each_node(
    ctx: &Ctx,
    action: &str,
    args: Map<String, Value>,
    f: &FilterArgs,
    out: &OutputArgs,
    results: &ResultArgs,
    text: impl Fn(&ReplyRecord) -> String,
) -> Result<i32> {
    let (o, code, hidden) = match ask(ctx, action, args, f, out, results).await? {
        Asked::Printed(code) => return Ok(code),
        Asked::Replies(o, code, hidden) => (o, code, hidden),
    };
    print_folded(o.replies.iter().map(|r| {
        let said = if r.reply.status.is_ok() { text(r) } else { format!("failed: {}: {}", r.reply.status, r.reply.status_msg) };
        (r.reply.sender.clone(), said)
    }));
    println!("{} ok, {} failed of {} nodes", o.ok_count(), o.failed_count(), o.discovered.len());
    print_no_reply(&o);
    print_rollout(&o, hidden);
    Ok(code)
}

/// Prints each distinct text once under its nodes: the first line after the compact set, the
/// rest below it, then a blank line.
fn print_folded(texts: impl IntoIterator<Item = (String, String)>) {
    for g in concat::fold(texts) {
        let (first, rest) = g.item.split_once('\n').unwrap_or((&g.item, ""));
        println!("{} ({}): {first}", g.nodes, g.count);
        if !rest.is_empty() {
            println!("{}", rest.trim_end_matches('\n'));
        }
        println!();
    }
}

/// Indents every line of `text` by `by` spaces.
fn indented(text: &str, by: usize) -> String {
    let pad = " ".repeat(by);
    text.lines().map(|l| format!("{pad}{l}\n")).collect()
}

/// A node's build result: its headline, then owner/group/mode changes, the diff and the notify's
/// output, indented.
fn build_text(r: &NodeResult, dry_run: bool) -> String {
    let mut text = format!("{}\n", r.headline(dry_run));
    for change in &r.attributes {
        text.push_str(&format!("   {change}\n"));
    }
    text.push_str(&indented(&r.diff, 3));
    if !r.notify_output.is_empty() {
        text.push_str("   notify output:\n");
        text.push_str(&indented(&r.notify_output, 6));
    }
    text
}

/// A node's list reply: its fragments in build order, or its targets.
fn list_text(r: &ReplyRecord) -> String {
    let data = &r.reply.data;
    if let Some(targets) = data["targets"].as_array() {
        if targets.is_empty() {
            return "no targets".into();
        }
        let rows: String = targets.iter().map(|t| format!("   {}  ({} fragments)\n", value(&t["target"]), t["fragments"])).collect();
        return format!("{} target(s)\n{rows}", targets.len());
    }
    let fragments = data["fragments"].as_array().cloned().unwrap_or_default();
    if fragments.is_empty() {
        return "no fragments".into();
    }
    let width = fragments.iter().map(|f| value(&f["name"]).len()).max().unwrap_or(0);
    let rows: String = fragments
        .iter()
        .map(|f| {
            let what = match f["source"].as_str() {
                Some(source) => format!("source {source}"),
                None => format!("{} bytes, sha256 {}", f["bytes"], &value(&f["sha256"])[..12.min(value(&f["sha256"]).len())]),
            };
            format!("   {:>6}  {:<width$}  {what}\n", f["order"], value(&f["name"]))
        })
        .collect();
    format!("{} fragment(s)\n{rows}", fragments.len())
}

fn value(v: &Value) -> String {
    v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())
}
