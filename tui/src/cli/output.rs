//! What every CLI command prints the same way: the progress bar on stderr, JSON and JSON lines,
//! the reply marks, the list of nodes that did not reply, and the final aggregates.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use fleet_client::aggregate::{Aggregate, AggregateValue};
use fleet_client::chain::ReplyFilter;
use fleet_client::{Outcome, Progress, Rollout, SignatureCheck};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};

/// The progress bar on stderr, shown only when stderr is a terminal: `[=====>    ] 12 / 20`, with
/// the batch of the latest reply in a staged rollout (`batch 2/4`).
pub struct Bar {
    pb: Option<ProgressBar>,
    rollout: Option<Rollout>,
    /// The batch of each node, and how many batches, once the nodes are known.
    batches: Mutex<(BTreeMap<String, usize>, usize, bool)>,
}

impl Bar {
    pub fn new(enabled: bool) -> Bar {
        let pb = (enabled && std::io::stderr().is_terminal()).then(|| {
            let pb = ProgressBar::with_draw_target(Some(0), indicatif::ProgressDrawTarget::stderr());
            pb.set_style(ProgressStyle::with_template(" * [{bar:60}] {pos} / {len} {msg}").expect("static template").progress_chars("=> "));
            pb
        });
        Bar { pb, rollout: None, batches: Mutex::default() }
    }

    /// The same bar, showing the batch position of a staged rollout.
    pub fn staged(mut self, rollout: Option<Rollout>) -> Bar {
        self.rollout = rollout.filter(Rollout::is_staged);
        self
    }

    pub fn on(&self, p: &Progress) {
        let Some(pb) = &self.pb else { return };
        match p {
            Progress::Discovered(n) => {
                pb.set_length(n.len() as u64);
                if let Some(r) = &self.rollout {
                    let plan = r.plan(n);
                    *self.batches.lock().expect("bar lock") = (plan.batch_of(), plan.batches.len(), plan.canary);
                }
            }
            Progress::Reply { reply, .. } => {
                pb.inc(1);
                let batches = self.batches.lock().expect("bar lock");
                if let Some(b) = batches.0.get(&reply.sender) {
                    let canary = if *b == 1 && batches.2 { " (canary)" } else { "" };
                    pb.set_message(format!("batch {b}/{}{canary}", batches.1));
                }
            }
            Progress::Sent { unknown, .. } if !unknown.is_empty() => pb.set_message(format!("({} not connected)", unknown.len())),
            Progress::Sent { .. } => {}
        }
    }

    pub fn finish(&self) {
        if let Some(pb) = &self.pb {
            pb.finish_and_clear();
        }
    }
}

/// One JSON line on stdout, flushed at once (a consumer may be waiting for it).
pub fn jsonl_line(v: &Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

/// One JSON document on stdout, pretty-printed.
pub fn json_doc(v: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

pub fn reply_json(r: &fleet_protocol::Reply, time_ms: f64, expected: bool, signature: SignatureCheck) -> Value {
    json!({
        "sender": r.sender, "status": r.status, "status_code": r.status.code(), "status_msg": r.status_msg,
        "data": r.data, "time_ms": time_ms, "expected": expected, "signature": signature,
    })
}

/// A reply as a JSON line while the round runs, unless `keep` leaves it out.
pub fn progress_line(p: &Progress, keep: Option<&ReplyFilter>) {
    if let Progress::Reply { reply, expected, rtt, signature } = p
        && keep.is_none_or(|f| f.matches(reply))
    {
        jsonl_line(&reply_json(reply, rtt.as_secs_f64() * 1000.0, *expected, *signature));
    }
}

/// The round's summary; `code` is the exit code, taken before `--filter-replies` left replies out.
pub fn summary_json(o: &Outcome, code: i32) -> Value {
    json!({
        "request_id": o.request_id, "discovered": o.discovered.len(), "replies": o.replies.len(),
        "ok": o.ok_count(), "failed": o.failed_count(), "no_reply": o.no_reply, "down": o.down, "hub_lost": o.hub_lost,
        "discovery_ms": o.discovery_ms, "elapsed_ms": o.elapsed_ms, "exit_code": code, "rollout": o.rollout, "resent": o.resent,
    })
}

pub fn full_json(o: &Outcome, code: i32) -> Value {
    json!({
        "request_id": o.request_id, "discovered": o.discovered,
        "replies": o.replies.iter().map(|r| reply_json(&r.reply, r.time_ms, r.expected, r.signature)).collect::<Vec<_>>(),
        "no_reply": o.no_reply, "down": o.down, "rollout": o.rollout, "summary": summary_json(o, code),
    })
}

/// Prints what a round ends with when nothing more is to be said: the whole document (`--json`),
/// the summary line (`--jsonl`, whose replies were printed as they came), or that nothing matched.
/// Returns true when it printed, false when the caller prints the replies.
pub fn ended_early(o: &Outcome, code: i32, out: &super::OutputArgs, filter: &fleet_protocol::Filter) -> anyhow::Result<bool> {
    if out.json {
        json_doc(&full_json(o, code))?;
    } else if out.jsonl {
        jsonl_line(&json!({ "summary": summary_json(o, code) }));
    } else if o.discovered.is_empty() {
        println!("No nodes matched {}", filter.describe());
    } else {
        return Ok(false);
    }
    Ok(true)
}

/// What to say after a reply's sender: a bad signature, or a node that was not discovered.
pub fn reply_mark(expected: bool, signature: SignatureCheck) -> &'static str {
    match (expected, signature) {
        (_, SignatureCheck::Bad) => "  (BAD SIGNATURE: not from this node)",
        (false, _) => "  (not discovered)",
        _ => "",
    }
}

/// MCollective's closing list of the nodes that did not reply, four to a line; then the nodes
/// that are down, and a hub lost during the request, named as such.
pub fn print_no_reply(o: &Outcome) {
    if !o.no_reply.is_empty() {
        println!("\nNo response from:\n");
        for chunk in o.no_reply.chunks(4) {
            let line: Vec<String> = chunk.iter().map(|n| format!("{n:<30}")).collect();
            println!("   {}", line.join(" ").trim_end());
        }
    }
    if !o.down.is_empty() {
        println!("\nDown:\n");
        let w = o.down.iter().map(|d| d.identity.len()).max().unwrap_or(0);
        for d in &o.down {
            let when = if d.since_ms == 0 {
                "not connected to any hub".to_string()
            } else {
                format!("last heard {}", fleet_client::format::utc_datetime(d.since_ms / 1000))
            };
            println!("   {:<w$}  {when}", d.identity);
        }
    }
    if let Some(lost) = &o.hub_lost {
        eprintln!("fleet: {lost}; {} repl{} received before", o.replies.len(), if o.replies.len() == 1 { "y" } else { "ies" });
    }
}

/// The aggregates as the CLI prints them: a summary as a block of `value = count` lines, a number
/// on one line.
pub fn aggregates_text(aggregates: &[Aggregate]) -> String {
    let mut out = String::new();
    for agg in aggregates {
        match &agg.value {
            AggregateValue::Summary(counts) => {
                out.push_str(&format!("Summary of {}:\n", agg.label));
                let w = counts.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
                for (k, n) in counts {
                    out.push_str(&format!("   {k:>w$} = {n}\n"));
                }
                out.push('\n');
            }
            AggregateValue::Number { .. } => out.push_str(&format!("{}\n\n", agg.line())),
        }
    }
    out
}
