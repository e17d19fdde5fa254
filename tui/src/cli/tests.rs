//! The CLI and the console's RPC panel over the same replies: the same aggregates.

use fleet_client::{Outcome, ReplyRecord, SignatureCheck};
use fleet_protocol::{Reply, Status};
use serde_json::{Value, json};

use crate::console::action::ReplyRow;

fn replies() -> Vec<(String, Status, Value)> {
    vec![
        ("web-01".into(), Status::Ok, json!({"matched": 3, "rss_total": 1000, "vsz_total": 10})),
        ("web-02".into(), Status::Ok, json!({"matched": 4, "rss_total": 2048, "vsz_total": 10})),
        ("db-01".into(), Status::Aborted, json!({"matched": 100})),
    ]
}

#[test]
fn cli_and_rpc_panel_print_the_same_aggregates() {
    let ddl = fleet_client::ddl::find("process").unwrap();
    let act = &ddl.actions["list"];
    let outcome = Outcome {
        request_id: "r".into(),
        discovered: replies().iter().map(|r| r.0.clone()).collect(),
        replies: replies()
            .into_iter()
            .map(|(sender, status, data)| ReplyRecord {
                reply: Reply { request_id: "r".into(), sender, status, status_msg: String::new(), data, elapsed_us: 0 },
                time_ms: 1.0,
                expected: true,
                signature: SignatureCheck::Verified,
            })
            .collect(),
        no_reply: Vec::new(),
        down: Vec::new(),
        hub_lost: None,
        discovery_ms: 0.0,
        rollout: None,
        elapsed_ms: 1.0,
        resent: 0,
    };
    let rows: Vec<ReplyRow> = replies()
        .into_iter()
        .map(|(sender, status, data)| ReplyRow { sender, status, message: String::new(), data, ms: 1.0, expected: true })
        .collect();
    let cli = super::output::aggregates_text(&super::rpc::aggregates(act, &outcome));
    let console = crate::console::rpc::aggregate_lines(act, &rows);
    // The failed reply is left out by both; the numbers and their format are the same.
    assert_eq!(console.len(), 3, "{console:?}");
    for line in &console {
        assert!(cli.contains(line.as_str()), "the CLI lacks {line:?}:\n{cli}");
    }
    assert!(cli.contains("Sum of Matched: 7\n") && cli.contains("Sum of RSS (bytes): 3048\n"), "{cli}");
}

#[test]
fn summaries_count_alike_in_both_faces() {
    let ddl = fleet_client::ddl::find("rpcutil").unwrap();
    let act = &ddl.actions["get_fact"];
    let data =
        [json!({"fact": "country", "value": "uk"}), json!({"fact": "country", "value": "uk"}), json!({"fact": "country", "value": "de"})];
    let rows: Vec<ReplyRow> = data
        .iter()
        .enumerate()
        .map(|(i, d)| ReplyRow {
            sender: format!("n{i}"),
            status: Status::Ok,
            message: String::new(),
            data: d.clone(),
            ms: 1.0,
            expected: true,
        })
        .collect();
    let console = crate::console::rpc::aggregate_lines(act, &rows);
    let aggs = fleet_client::aggregate::compute(act, rows.iter().map(|r| (&r.status, &r.data)));
    let cli = super::output::aggregates_text(&aggs);
    assert_eq!(console, ["Summary of Value: uk = 2, de = 1"]);
    assert!(cli.contains("Summary of Value:\n") && cli.contains("uk = 2\n") && cli.contains("de = 1\n"), "{cli}");
}
