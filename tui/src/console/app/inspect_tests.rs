//! The reply inspector over the panels (RPC results, Discovery, Log), RPC result cells in units,
//! and Discovery's fact columns: state and TestBackend snapshots at 40x10, 80x24 and 160x48.

use std::collections::HashMap;
use std::time::UNIX_EPOCH;

use crossterm::event::KeyCode;
use fleet_protocol::Status;
use serde_json::{Value, json};

use super::tests::{ch, demo_app, finished_demo, key, render, send};
use super::*;
use crate::console::action::{ReplyRow, RequestEvent};
use crate::console::record::{RequestKey, RequestRecord};

const SIZES: [(u16, u16); 3] = [(40, 10), (80, 24), (160, 48)];

/// The error a node gave for a bad pattern, longer than any table cell.
const LONG_ERROR: &str = "input 'pattern' is not a valid regex: regex parse error: (nginx: unclosed group; \
                          the pattern is matched against the whole command line, so escape ( and ) with \\";

fn row(sender: &str, status: Status, message: &str, ms: f64, data: Value) -> ReplyRow {
    ReplyRow { data, ..ReplyRow::new(sender, status, message, ms) }
}

/// process#list reopened from the Log: one node refused the pattern, two listed.
fn process_results() -> App {
    let mut app = finished_demo();
    let mut rec = RequestRecord::new(RequestKey::Done(1), "process", "list", Default::default(), Scope::default(), UNIX_EPOCH);
    let listed = |rss: u64| {
        json!({"matched": 1, "rss_total": rss, "vsz_total": rss * 4,
               "processes": [{"pid": 811, "user": "root", "rss": rss, "started": 1_764_424_980u64, "cmdline": "nginx: master process"}]})
    };
    rec.finish(
        vec![
            row("web-01", Status::Ok, "", 3.2, listed(9_437_184)),
            row("db-01", Status::InvalidData, LONG_ERROR, 2.9, Value::Null),
            row("web-02", Status::Ok, "", 4.1, listed(48 * 1024 * 1024)),
        ],
        None,
        41.0,
    );
    send(&mut app, Action::Reopen(Box::new(rec)));
    send(&mut app, Action::FocusPanel(PanelId::Rpc));
    app
}

fn snapshot_all(name: &str, app: &App) {
    for (cols, rows) in SIZES {
        insta::assert_snapshot!(format!("{name}_{cols}x{rows}"), render(app, cols, rows));
    }
}

#[test]
fn result_cells_show_errors_whole_and_bytes_in_units() {
    let app = process_results();
    let screen = render(&app, 160, 48);
    assert!(screen.contains("InvalidData: input 'pattern' is not a valid regex: regex parse error"), "{screen}");
    assert!(screen.contains("9.0 MiB") && screen.contains("48.0 MiB"), "RSS in units:\n{screen}");
    insta::assert_snapshot!("rpc_results_in_units_160x48", screen);
}

#[test]
fn the_inspector_shows_a_full_error_and_pretty_data() {
    let mut app = process_results();
    // The rows are in node name order: db-01 (failed) first.
    send(&mut app, key(KeyCode::Enter));
    assert_eq!(app.mode(), Mode::Inspector);
    let text = app.inspector().shown().unwrap().text();
    assert!(text.contains(&format!("Message: {LONG_ERROR}")), "{text}");
    assert!(text.contains("Status: failed (InvalidData)"), "{text}");
    snapshot_all("inspect_error", &app);

    // esc closes; the next row is an ok reply with its data labelled and in units.
    send(&mut app, key(KeyCode::Esc));
    assert!(!app.inspector().visible());
    send(&mut app, ch('j'));
    send(&mut app, key(KeyCode::Enter));
    let text = app.inspector().shown().unwrap().text();
    for want in [
        "RSS (bytes) (rss_total): 9.0 MiB (9,437,184 bytes)",
        "  Processes (processes): 1 items",
        "      started: 2025-11-29 14:03:00 UTC (1764424980)",
        "      cmdline: nginx: master process",
    ] {
        assert!(text.contains(want), "{want:?} in:\n{text}");
    }
    snapshot_all("inspect_data", &app);

    // Scrolling stays within the text; the global keys still work and close it.
    for _ in 0..100 {
        send(&mut app, ch('j'));
    }
    let bottom = app.inspector().scroll();
    send(&mut app, ch('j'));
    assert_eq!(app.inspector().scroll(), bottom);
    send(&mut app, ch('1'));
    assert_eq!((app.focus(), app.inspector().visible()), (PanelId::Discovery, false));
}

#[test]
fn y_copies_with_osc52_and_w_writes_a_new_file() {
    let mut app = process_results();
    send(&mut app, key(KeyCode::Enter));
    send(&mut app, ch('y'));
    let copied = app.take_clipboard().expect("y puts the text on the clipboard");
    assert!(copied.contains(LONG_ERROR));
    assert!(crate::console::inspector::osc52("hi").starts_with("\x1b]52;c;aGk=\x07"));
    assert_eq!(app.take_clipboard(), None, "once per y");

    let dir = tempfile::tempdir().unwrap();
    send(&mut app, ch('w'));
    assert_eq!(app.mode(), Mode::InspectorPath);
    let default = app.inspector().path().unwrap().to_string();
    assert!(default.starts_with("db-01-process-list-") && default.ends_with(".txt"), "{default}");
    snapshot_all("inspect_write_path", &app);
    send(&mut app, Action::Inspector(crate::console::inspector::Msg::PathEdit(crate::console::action::TextEdit::Clear)));
    let path = dir.path().join("reply.txt");
    for c in path.display().to_string().chars() {
        send(&mut app, ch(c));
    }
    send(&mut app, key(KeyCode::Enter));
    assert!(std::fs::read_to_string(&path).unwrap().contains(LONG_ERROR));
    assert!(app.notice().unwrap().text.starts_with("wrote "), "{:?}", app.notice());
    // The same path again: an existing file is not overwritten.
    send(&mut app, ch('w'));
    send(&mut app, Action::Inspector(crate::console::inspector::Msg::PathEdit(crate::console::action::TextEdit::Clear)));
    for c in path.display().to_string().chars() {
        send(&mut app, ch(c));
    }
    send(&mut app, key(KeyCode::Enter));
    assert!(app.notice().unwrap().error, "{:?}", app.notice());
}

#[test]
fn discovery_inspects_a_reply_and_shows_chosen_fact_columns() {
    let mut app = finished_demo();
    // enter on the first node (cache-01, failed): its full message.
    send(&mut app, key(KeyCode::Enter));
    let text = app.inspector().shown().unwrap().text();
    assert!(text.contains("Message: redis is not running"), "{text}");
    send(&mut app, key(KeyCode::Esc));
    send(&mut app, ch('j'));
    send(&mut app, key(KeyCode::Enter));
    let text = app.inspector().shown().unwrap().text();
    assert!(text.contains("Timestamp (pong): 2023-11-14 22:13:20 UTC (1700000000000)"), "{text}");
    send(&mut app, key(KeyCode::Esc));

    // :columns country,role asks the nodes for the facts; they show as columns.
    send(&mut app, ch(':'));
    for c in "columns country,role".chars() {
        send(&mut app, ch(c));
    }
    let net = send(&mut app, key(KeyCode::Enter));
    assert_eq!(net, vec![NetCommand::Facts { scope: Scope::default(), facts: vec!["country".into(), "role".into()] }]);
    let facts: HashMap<String, serde_json::Map<String, Value>> = [("web-01", "uk", "web"), ("db-01", "uk", "db"), ("web-02", "us", "web")]
        .into_iter()
        .map(|(n, c, r)| (n.to_string(), json!({"country": c, "role": r}).as_object().cloned().unwrap()))
        .collect();
    send(&mut app, Action::Discovery(discovery::Msg::Facts(Ok(facts))));
    assert_eq!(app.discovery().columns(), ["country", "role"]);
    snapshot_all("discovery_fact_columns", &app);
    // Kept for the session: the next round asks again when it is over.
    let net = send(&mut app, Action::Discovery(discovery::Msg::Rerun));
    assert!(matches!(&net[..], [NetCommand::Round { round: 2, .. }]), "{net:?}");
    send(&mut app, Action::Round { round: 2, event: RequestEvent::Discovered(vec!["web-01".into()]) });
    let net = send(&mut app, Action::Round { round: 2, event: RequestEvent::Finished { no_reply: vec![], down: vec![], elapsed_ms: 3.0 } });
    assert!(matches!(&net[..], [NetCommand::Facts { .. }]), "{net:?}");
    assert_eq!(app.discovery().columns(), ["country", "role"]);
}

#[test]
fn the_log_inspects_a_whole_request() {
    let mut app = demo_app();
    send(&mut app, ch('6'));
    send(&mut app, ch('i'));
    let text = app.inspector().shown().unwrap().text();
    assert!(
        text.contains("Request: rpcutil#ping") && text.contains("cache-01:") && text.contains("Message: redis is not running"),
        "{text}"
    );
    assert_eq!(app.mode(), Mode::Inspector);
}
