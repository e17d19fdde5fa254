//! The Jobs view through the shell, without a terminal: listing, output, a cancel from its
//! confirmation to the Log, read-only; and snapshots at 80x24, 160x48 and 40x10.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use fleet_client::jobs::{JobRow, LastRun, ListedJob};
use fleet_protocol::Status;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use serde_json::json;

use super::*;
use crate::console::app::{App, AppInit};
use crate::console::keys::Mode;

/// 2026-05-01 12:00:00 UTC.
const T0: u64 = 1_777_636_800_000;

pub(crate) fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(T0)
}

/// What the shell starts from in these tests: one hub, the demo's note, the fixed clock.
pub(crate) fn test_init(read_only: bool) -> AppInit {
    let mut init = AppInit::new(vec!["tcp://127.0.0.1:7402".into()], now());
    init.note = Some("demo: embedded hub + 6 in-process nodes".into());
    init.read_only = read_only;
    init
}

pub(crate) fn app_with(read_only: bool) -> App {
    App::new(test_init(read_only))
}

pub(crate) fn key(c: char) -> Action {
    key_code(KeyCode::Char(c))
}

pub(crate) fn key_code(code: KeyCode) -> Action {
    Action::Key(KeyEvent::new_with_kind(code, KeyModifiers::NONE, KeyEventKind::Press))
}

/// Dispatches and returns what went to the network.
pub(crate) fn send(app: &mut App, action: Action) -> Vec<NetCommand> {
    let mut out = Vec::new();
    app.dispatch(action, &mut |c| out.push(c));
    out
}

/// The whole screen as text.
pub(crate) fn render(app: &App, cols: u16, rows: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(cols, rows)).unwrap();
    terminal.draw(|f| app.draw(f, f.area())).unwrap();
    format!("{}", terminal.backend())
}

fn row(state: &str, runs: u64, last: Option<(u64, u64, &str, &str)>, next_run: u64) -> JobRow {
    JobRow {
        id: String::new(),
        agent: String::new(),
        action: String::new(),
        caller: "demo".into(),
        created: T0 - 600_000,
        state: state.into(),
        every: 0,
        next_run,
        runs,
        last: last.map(|(started, ended, status, message)| LastRun {
            started,
            ended,
            status: status.into(),
            statuscode: None,
            message: message.into(),
        }),
    }
}

fn job(id: &str, agent: &str, action: &str, created: u64, nodes: &[(&str, JobRow)]) -> ListedJob {
    let nodes: BTreeMap<String, JobRow> = nodes
        .iter()
        .map(|(n, r)| (n.to_string(), JobRow { id: id.into(), agent: agent.into(), action: action.into(), created, ..r.clone() }))
        .collect();
    let next_run = nodes.values().map(|r| r.next_run).filter(|t| *t > 0).min().unwrap_or(0);
    ListedJob { id: id.into(), agent: agent.into(), action: action.into(), caller: "demo".into(), created, every: 0, next_run, nodes }
}

/// Two jobs: one scheduled an hour ahead on three nodes, one that ran (ok on two, failed on one).
pub(crate) fn listing() -> Listing {
    let later = T0 + 3_600_000;
    let scheduled = job(
        "20260501-115500-3f2a9c",
        "echo",
        "echo",
        T0 - 300_000,
        &[
            ("web-01", row("scheduled", 0, None, later)),
            ("web-02", row("scheduled", 0, None, later)),
            ("db-01", row("running", 1, Some((T0 - 5_000, 0, "", "")), 0)),
        ],
    );
    let ran = job(
        "20260501-114000-a1b2c3",
        "process",
        "list",
        T0 - 1_200_000,
        &[
            ("cache-01", row("ok", 1, Some((T0 - 1_199_000, T0 - 1_198_500, "ok", "OK")), 0)),
            ("web-01", row("ok", 1, Some((T0 - 1_199_000, T0 - 1_198_700, "ok", "OK")), 0)),
            ("xen-01", row("failed", 1, Some((T0 - 1_199_000, T0 - 1_198_000, "failed", "no such process")), 0)),
        ],
    );
    Listing { jobs: vec![scheduled, ran], answered: 6, no_reply: vec![] }
}

/// The shell on the Jobs tab with the listing in.
pub(crate) fn jobs_app(read_only: bool) -> App {
    let mut app = app_with(read_only);
    let net = send(&mut app, key('7'));
    assert!(matches!(net.as_slice(), [NetCommand::Jobs(Cmd::List { .. })]), "showing the tab lists the jobs: {net:?}");
    send(&mut app, Action::Jobs(Msg::Listed { at_ms: T0 + 1_000, result: Ok(listing()) }));
    app
}

#[test]
fn the_tab_lists_jobs_and_follows_the_selection() {
    let mut app = jobs_app(false);
    assert_eq!(app.focus(), PanelId::Jobs);
    assert_eq!(app.mode(), Mode::Jobs);
    assert_eq!(app.jobs().selected().unwrap().id, "20260501-115500-3f2a9c", "the newest job first");
    send(&mut app, key('j'));
    assert_eq!(app.jobs().selected().unwrap().id, "20260501-114000-a1b2c3");
    // A refresh that reorders keeps the same job selected.
    let mut reordered = listing();
    reordered.jobs.reverse();
    send(&mut app, Action::Jobs(Msg::Listed { at_ms: T0 + 6_000, result: Ok(reordered) }));
    assert_eq!(app.jobs().selected().unwrap().id, "20260501-114000-a1b2c3");
}

#[test]
fn output_asks_the_nodes_that_have_the_job_and_esc_closes_it() {
    let mut app = jobs_app(false);
    let net = send(&mut app, key('o'));
    let [NetCommand::Jobs(Cmd::Output { id, nodes })] = net.as_slice() else { panic!("{net:?}") };
    assert_eq!((id.as_str(), nodes.clone()), ("20260501-115500-3f2a9c", vec!["db-01".to_string(), "web-01".into(), "web-02".into()]));
    assert_eq!(app.mode(), Mode::JobOutput);
    send(&mut app, key_code(KeyCode::Esc));
    assert_eq!((app.mode(), app.focus()), (Mode::Jobs, PanelId::Jobs), "esc closes the output, not the tab");
}

#[test]
fn cancel_asks_first_names_the_nodes_and_goes_to_the_log() {
    let mut app = jobs_app(false);
    assert!(send(&mut app, key('x')).is_empty(), "nothing is sent before the answer");
    let confirm = app.confirm().expect("a confirmation").clone();
    assert_eq!(confirm.title, "Cancel job 20260501-115500-3f2a9c?");
    let text = confirm.lines.join("\n");
    for node in ["db-01", "web-01", "web-02"] {
        assert!(text.contains(node), "{text}");
    }
    let net = send(&mut app, key('y'));
    let [NetCommand::Jobs(Cmd::Cancel { id, nodes })] = net.as_slice() else { panic!("{net:?}") };
    assert_eq!((id.as_str(), nodes.len()), ("20260501-115500-3f2a9c", 3));

    let reply = |node: &str, message: &str| {
        let mut r = ReplyRow::new(node, Status::Ok, message, 2.0);
        r.data = json!({ "state": "cancelled", "message": message });
        r
    };
    let outcome = CancelOutcome {
        replies: vec![
            reply("db-01", "cancelled while running: 2 processes killed"),
            reply("web-01", "cancelled while scheduled: it will not run"),
            reply("web-02", "cancelled while scheduled: it will not run"),
        ],
        no_reply: vec![],
    };
    let before = app.log().records().count();
    let net = send(&mut app, Action::Jobs(Msg::Cancelled { id: id.clone(), started_ms: T0, elapsed_ms: 4.0, result: Ok(outcome) }));
    assert!(matches!(net.as_slice(), [NetCommand::Jobs(Cmd::List { .. })]), "the list is asked again: {net:?}");
    assert_eq!(app.notice().unwrap().text, "job 20260501-115500-3f2a9c cancelled on 3 node(s)");
    assert_eq!(app.log().records().count(), before + 1, "the cancel is in the Log");
    let logged = app.log().records().last().unwrap();
    assert_eq!((logged.what(), logged.replies.len()), ("jobs#cancel".to_string(), 3));
    assert_eq!(logged.reply("db-01").unwrap().message, "cancelled while running: 2 processes killed");
}

#[test]
fn a_job_that_ended_everywhere_has_nothing_to_cancel_and_read_only_cancels_nothing() {
    let mut app = jobs_app(false);
    send(&mut app, key('j'));
    send(&mut app, key('x'));
    assert!(app.confirm().is_none());
    assert!(app.notice().unwrap().text.contains("has ended on every node"), "{:?}", app.notice());

    let mut app = jobs_app(true);
    send(&mut app, key('x'));
    assert!(app.confirm().is_none());
    assert_eq!(app.notice().unwrap().text, "read-only: cancelling jobs is disabled");
    let yes = Msg::CancelConfirmed { id: "20260501-115500-3f2a9c".into(), nodes: vec!["web-01".into()] };
    assert!(send(&mut app, Action::Jobs(yes)).is_empty(), "a confirmed cancel is refused too");
}

#[test]
fn snapshot_jobs() {
    let app = jobs_app(false);
    insta::assert_snapshot!("jobs_80x24", render(&app, 80, 24));
    insta::assert_snapshot!("jobs_160x48", render(&app, 160, 48));
    insta::assert_snapshot!("jobs_40x10", render(&app, 40, 10));
}

#[test]
fn snapshot_output_and_cancel_confirmation() {
    let mut app = jobs_app(false);
    send(&mut app, key('o'));
    let outputs = vec![
        NodeOutput { node: "db-01".into(), headline: "running, no run ended yet".into(), data: serde_json::Value::Null },
        NodeOutput { node: "web-01".into(), headline: "ok, OK".into(), data: json!({ "message": "hello", "time": 1 }) },
    ];
    send(&mut app, Action::Jobs(Msg::OutputFetched { id: "20260501-115500-3f2a9c".into(), result: Ok(outputs) }));
    insta::assert_snapshot!("job_output_80x24", render(&app, 80, 24));
    insta::assert_snapshot!("job_output_160x48", render(&app, 160, 48));
    insta::assert_snapshot!("job_output_40x10", render(&app, 40, 10));

    let mut app = jobs_app(false);
    send(&mut app, key('x'));
    insta::assert_snapshot!("job_cancel_confirmation_80x24", render(&app, 80, 24));
    insta::assert_snapshot!("job_cancel_confirmation_160x48", render(&app, 160, 48));
    insta::assert_snapshot!("job_cancel_confirmation_40x10", render(&app, 40, 10));
}
