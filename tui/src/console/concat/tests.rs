//! The Concat view through the shell, without a terminal: targets, a dry run's node states, a
//! node's diff, a build from its confirmation to the Log; and snapshots at 80x24, 160x48, 40x10.

use crossterm::event::KeyCode;
use fleet_client::concat::{NodeResult, State, Summary};
use fleet_protocol::Status;
use serde_json::json;

use super::*;
use crate::console::app::App;
use crate::console::jobs::tests::{app_with, key, key_code, render, send};
use crate::console::keys::Mode;

const TARGET: &str = "/tmp/fleet-demo/concat/motd";
const DIFF: &str = "--- /tmp/fleet-demo/concat/motd\n+++ /tmp/fleet-demo/concat/motd\n@@ -1,2 +1,3 @@\n # managed by fleet concat\n Welcome to the fleet demo.\n+This is a development server: expect restarts.\n";

fn result(state: State, diff: &str) -> NodeResult {
    NodeResult {
        state,
        created: false,
        attributes: vec![],
        diff: diff.into(),
        notify: None,
        notify_output: String::new(),
        error: if state == State::Failed { "Aborted: no fragments".into() } else { String::new() },
    }
}

/// The dry run of the demo's motd: cache-01 would change, db-01 failed, the rest in sync.
fn dry_run() -> BuildOutcome {
    let results = vec![
        ("cache-01".to_string(), result(State::Changed, DIFF)),
        ("db-01".to_string(), result(State::Failed, "")),
        ("web-01".to_string(), result(State::InSync, "")),
        ("web-02".to_string(), result(State::InSync, "")),
    ];
    let replies = results
        .iter()
        .map(|(n, r)| ReplyRow::new(n, if r.state == State::Failed { Status::Aborted } else { Status::Ok }, &r.headline(true), 3.0))
        .collect();
    let summary = Summary { changed: 1, in_sync: 2, failed: 1, no_reply: 1, ..Summary::default() };
    BuildOutcome { results, summary, replies, no_reply: vec!["xen-01".into()], elapsed_ms: 12.0 }
}

/// The shell on the Concat view with the targets listed.
fn concat_app(read_only: bool) -> App {
    let mut app = app_with(read_only);
    send(&mut app, key('7'));
    let net = send(&mut app, key(']'));
    assert!(matches!(net.as_slice(), [NetCommand::Concat(Cmd::Targets { .. })]), "the targets are listed when first shown: {net:?}");
    assert_eq!(app.mode(), Mode::Concat);
    let nodes = ["cache-01", "db-01", "web-01", "web-02", "xen-01"].map(String::from).to_vec();
    let rows = vec![
        TargetRow { target: TARGET.into(), nodes },
        TargetRow { target: "/tmp/fleet-demo/concat/hosts".into(), nodes: vec!["web-01".into()] },
    ];
    send(&mut app, Action::Concat(Msg::Targets(Ok(rows))));
    app
}

/// The Concat view with the motd's dry run in.
fn dry_run_app(read_only: bool) -> App {
    let mut app = concat_app(read_only);
    let net = send(&mut app, key_code(KeyCode::Enter));
    let [NetCommand::Concat(Cmd::Build { target, dry_run: true, .. })] = net.as_slice() else { panic!("{net:?}") };
    assert_eq!(target, TARGET);
    send(&mut app, Action::Concat(Msg::Built { target: TARGET.into(), dry_run: true, started_ms: 0, result: Ok(dry_run()) }));
    app
}

#[test]
fn a_dry_run_shows_each_node_and_enter_opens_a_diff() {
    let mut app = dry_run_app(false);
    let view = app.jobs().concat();
    assert_eq!(view.selected_node().map(|(n, r)| (n.as_str(), r.state)), Some(("cache-01", State::Changed)));
    send(&mut app, key_code(KeyCode::Enter));
    assert_eq!(app.mode(), Mode::ConcatDiff);
    send(&mut app, key_code(KeyCode::Esc));
    assert_eq!(app.mode(), Mode::Concat, "esc closes the diff");
    send(&mut app, key_code(KeyCode::Esc));
    send(&mut app, key_code(KeyCode::Esc));
    assert_ne!(app.focus(), PanelId::Jobs, "esc on the targets is the shell's back");
}

#[test]
fn build_asks_first_builds_only_what_would_change_and_goes_to_the_log() {
    let mut app = dry_run_app(false);
    assert!(send(&mut app, key('b')).is_empty());
    let confirm = app.confirm().expect("a confirmation").clone();
    let text = confirm.lines.join("\n");
    assert!(text.contains("content changes: cache-01 (1)"), "{text}");
    assert!(text.contains("in sync, left alone: web-[01-02] (2)"), "{text}");
    assert!(text.contains("failed the dry run, not asked: db-01 (1)"), "{text}");
    let net = send(&mut app, key('y'));
    let [NetCommand::Concat(Cmd::Build { target, scope, dry_run: false })] = net.as_slice() else { panic!("{net:?}") };
    assert_eq!((target.as_str(), scope.targets.clone()), (TARGET, Some(vec!["cache-01".to_string()])));

    let mut built = dry_run();
    built.results.truncate(1);
    built.replies.truncate(1);
    built.no_reply.clear();
    built.summary = Summary { changed: 1, ..Summary::default() };
    let before = app.log().records().count();
    send(&mut app, Action::Concat(Msg::Built { target: TARGET.into(), dry_run: false, started_ms: 0, result: Ok(built) }));
    assert_eq!(app.notice().unwrap().text, format!("{TARGET}: 1 of 1 node changed"));
    assert_eq!(app.log().records().count(), before + 1, "the build is in the Log");
    let logged = app.log().records().last().unwrap();
    assert_eq!(logged.what(), "concat#build");
    assert_eq!(logged.args["target"], json!(TARGET));
}

#[test]
fn read_only_builds_nothing() {
    let mut app = dry_run_app(true);
    send(&mut app, key('b'));
    assert!(app.confirm().is_none());
    assert_eq!(app.notice().unwrap().text, "read-only: building is disabled");
}

#[test]
fn snapshot_concat() {
    let app = concat_app(false);
    insta::assert_snapshot!("concat_targets_80x24", render(&app, 80, 24));
    insta::assert_snapshot!("concat_targets_160x48", render(&app, 160, 48));
    insta::assert_snapshot!("concat_targets_40x10", render(&app, 40, 10));

    let mut app = dry_run_app(false);
    insta::assert_snapshot!("concat_dry_run_80x24", render(&app, 80, 24));
    insta::assert_snapshot!("concat_dry_run_160x48", render(&app, 160, 48));
    insta::assert_snapshot!("concat_dry_run_40x10", render(&app, 40, 10));

    send(&mut app, key_code(KeyCode::Enter));
    insta::assert_snapshot!("concat_diff_80x24", render(&app, 80, 24));
    insta::assert_snapshot!("concat_diff_160x48", render(&app, 160, 48));
    insta::assert_snapshot!("concat_diff_40x10", render(&app, 40, 10));

    let mut app = dry_run_app(false);
    send(&mut app, key('b'));
    insta::assert_snapshot!("concat_build_confirmation_80x24", render(&app, 80, 24));
    insta::assert_snapshot!("concat_build_confirmation_160x48", render(&app, 160, 48));
    insta::assert_snapshot!("concat_build_confirmation_40x10", render(&app, 40, 10));
}
