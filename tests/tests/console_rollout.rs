//! End to end: the RPC panel's rollout fields in `fleet demo` (an embedded hub and six nodes), in a
//! real pseudo-terminal. A batch of 2 over the six nodes shows batches 1 to 3 in the result grid;
//! a canary of 1 with max failures 0 on a request every node refuses stops after the canary and
//! names the nodes that were never asked.

use std::time::Duration;

use fleet_e2e::pty::{PtySession, demo_console, fill_rpc_field, keys};

const WAIT: Duration = Duration::from_secs(30);
const NODES: [&str; 6] = ["web-01", "web-02", "db-01", "cache-01", "xen-01", "xen-02"];

/// Opens `agent#action`'s form: `agent_downs` and `action_downs` are the `j`s from the first
/// agent and action; `waits` the text that shows each arrived.
fn open_form(console: &mut PtySession, agent_downs: &str, agent_text: &str, action_downs: &str, action_text: &str) {
    console.send("5").unwrap();
    console.wait_for_all(&["echo 1.0.0", "process 1.0.0", "rpcutil 1.0.0"], WAIT).unwrap();
    console.send(agent_downs).unwrap();
    console.wait_for_text(agent_text, WAIT).unwrap();
    console.send(keys::ENTER).unwrap();
    console.send(action_downs).unwrap();
    console.wait_for_text(action_text, WAIT).unwrap();
    console.send(keys::ENTER).unwrap();
    console.wait_for_text("RPC FORM", WAIT).unwrap();
}

/// The result grid's rows: each node with its status and batch, read from the lines under the
/// `BATCH` header (`│  web-01   ok   2   hello ...`).
fn grid(screen: &str) -> Vec<(String, String, Option<usize>)> {
    screen
        .lines()
        .skip_while(|l| !(l.contains("NODE") && l.contains("BATCH")))
        .skip(1)
        .filter_map(|l| {
            let words: Vec<&str> = l.split(|c: char| c.is_whitespace() || c == '│').filter(|w| !w.is_empty() && *w != ">").collect();
            let node = *words.first()?;
            if !NODES.contains(&node) {
                return None;
            }
            let (status, rest) = match words.get(1..3)? {
                ["not", "asked"] => ("not asked".to_string(), words.get(3)),
                ["no", "reply"] => ("no reply".to_string(), words.get(3)),
                [s, _] => (s.to_string(), words.get(2)),
                _ => return None,
            };
            Some((node.to_string(), status, rest.and_then(|b| b.parse().ok())))
        })
        .collect()
}

#[test]
fn a_batch_of_two_runs_the_six_nodes_in_three_batches() {
    let home = tempfile::tempdir().unwrap();
    let mut console = demo_console(home.path(), 48, 160);
    // Agents: concat, echo, ...; echo's one action.
    open_form(&mut console, "j", "Echoes a message back", "", "Returns the message");
    fill_rpc_field(&mut console, "hello");
    // After the message: limit, seed, batch.
    console.send("jjj").unwrap();
    console.wait_for_text("--batch: never more than N", WAIT).unwrap();
    fill_rpc_field(&mut console, "2");
    console.wait_for_text("Rollout: batch 2", WAIT).unwrap();
    console.send("r").unwrap();
    let screen =
        console.wait_for("six replies in three batches", WAIT, |s| s.contains("6 ok") && s.contains("Rollout: 3 batches")).unwrap();
    let rows = grid(&screen);
    assert_eq!(rows.len(), 6, "every node in the grid:\n{screen}");
    for batch in 1..=3 {
        let in_batch: Vec<_> = rows.iter().filter(|(_, status, b)| status == "ok" && *b == Some(batch)).collect();
        assert_eq!(in_batch.len(), 2, "two nodes in batch {batch}: {rows:?}\n{screen}");
    }
    console.send("q").unwrap();
    console.send("q").unwrap();
    assert!(console.wait_exit(WAIT).unwrap().success());
}

#[test]
fn a_failing_canary_stops_the_rollout_and_names_who_was_never_asked() {
    let home = tempfile::tempdir().unwrap();
    let mut console = demo_console(home.path(), 48, 160);
    // process#list with a pattern every node refuses (not a valid regex).
    open_form(&mut console, "jjj", "Lists processes and signals them", "jj", "Lists the processes that match");
    // The fields: fields, match_name, pattern, user, zombies; then the rollout fields.
    console.send("jj").unwrap();
    fill_rpc_field(&mut console, "(nginx");
    // pattern -> user, zombies, limit, seed, batch, sleep, canary.
    console.send("jjjjjjj").unwrap();
    console.wait_for_text("--canary: ask N", WAIT).unwrap();
    fill_rpc_field(&mut console, "1");
    console.send("j").unwrap();
    console.wait_for_text("--max-failures: stop once", WAIT).unwrap();
    fill_rpc_field(&mut console, "0");
    console.wait_for_text("Rollout: canary 1, max failures 0", WAIT).unwrap();
    console.send("r").unwrap();
    let screen = console.wait_for("the stop", WAIT, |s| s.contains("STOPPED in batch 1 of") && s.contains("Never asked:")).unwrap();
    assert!(screen.contains("1 failure(s) passed --max-failures 0 (0 tolerated)"), "{screen}");
    let rows = grid(&screen);
    let failed: Vec<_> = rows.iter().filter(|(_, status, _)| status == "failed").collect();
    let never: Vec<_> = rows.iter().filter(|(_, status, _)| status == "not asked").collect();
    assert_eq!(failed.len(), 1, "the canary alone was asked, and refused: {rows:?}\n{screen}");
    assert_eq!(failed[0].2, Some(1), "the canary is batch 1: {rows:?}");
    assert_eq!(never.len(), 5, "the five others were never asked: {rows:?}\n{screen}");
    assert!(never.iter().all(|(_, _, b)| b.is_some_and(|b| b > 1)), "{rows:?}");
    // The line under the results names them as a node set.
    let line = screen.lines().find(|l| l.contains("Never asked:")).unwrap();
    for (node, _, _) in &never {
        let base = node.split('-').next().unwrap();
        assert!(line.contains(base), "{node} in {line}");
    }
    assert!(screen.contains("0 ok") && screen.contains("1 failed"), "{screen}");
    console.send("q").unwrap();
    console.send("q").unwrap();
    assert!(console.wait_exit(WAIT).unwrap().success());
}
