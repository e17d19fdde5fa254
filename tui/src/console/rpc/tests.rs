//! The RPC panel without a terminal: asking for the agents, the form, destructive requests and
//! read-only mode, results streaming in and reopening a past request.

use super::*;
use crate::console::form::FieldError;
use fleet_protocol::Status;
use serde_json::json;

fn panel(read_only: bool) -> RpcPanel {
    let mut p = RpcPanel::new(&PanelContext { theme: Theme::mono(), keys: Default::default(), read_only, scope: Scope::default() });
    let agents = ["rpcutil", "echo", "process"].map(|n| FleetAgent { name: n.into(), version: "1.0.0".into(), nodes: 5 }).to_vec();
    p.update(Action::Rpc(Msg::Agents(Ok(agents))));
    p
}

fn r(msg: Msg) -> Action {
    Action::Rpc(msg)
}

fn open(p: &mut RpcPanel, agent: &str, action: &str) {
    while p.agent().unwrap().agent.name != agent {
        p.update(Action::Nav(Nav::Down));
    }
    p.update(r(Msg::Enter));
    assert_eq!(p.focus(), Focus::Actions);
    while p.action_names()[p.action_cursor] != action {
        p.update(Action::Nav(Nav::Down));
    }
    p.update(r(Msg::Enter));
    assert_eq!(p.focus(), Focus::Form);
}

#[test]
fn showing_the_panel_asks_the_fleet_for_its_agents_once() {
    let mut p =
        RpcPanel::new(&PanelContext { theme: Theme::mono(), keys: Default::default(), read_only: false, scope: Scope::filter("role=web") });
    let ask = p.update(Action::FocusChanged(PanelId::Rpc));
    assert_eq!(ask, Some(NetCommand::FleetAgents { scope: Scope::filter("role=web") }.into()));
    assert_eq!(p.update(Action::FocusChanged(PanelId::Rpc)), None, "already asking");
    p.update(r(Msg::Agents(Ok(vec![FleetAgent { name: "echo".into(), version: "1".into(), nodes: 1 }]))));
    assert_eq!(p.agent_names(), ["echo"]);
    assert_eq!(p.update(Action::FocusChanged(PanelId::Rpc)), None, "known");
}

#[test]
fn fix_a_bad_value_and_submit() {
    let mut p = panel(false);
    assert_eq!(p.agent_names(), ["echo", "process", "rpcutil"]);
    open(&mut p, "rpcutil", "get_fact");
    for c in "bad fact".chars() {
        p.update(r(Msg::Edit(TextEdit::Insert(c))));
    }
    assert!(matches!(p.form().unwrap().shown_error(0), Some(FieldError::Invalid(rule)) if rule.contains("does not match the validation")));
    let refused = p.update(r(Msg::Submit));
    assert!(
        matches!(&refused, Some(Action::Notify(n)) if n.error && n.text.starts_with("nothing sent: fact does not match")),
        "{refused:?}"
    );
    assert_eq!(p.focus(), Focus::Form);
    p.update(r(Msg::Edit(TextEdit::Clear)));
    for c in "country".chars() {
        p.update(r(Msg::Edit(TextEdit::Insert(c))));
    }
    p.update(Action::Tick(SystemTime::UNIX_EPOCH + Duration::from_secs(5)));
    let Some(Action::RequestStarted(info)) = p.update(r(Msg::Submit)) else { panic!("submit starts a request") };
    assert_eq!((info.id, info.agent.as_str(), info.action.as_str()), (1, "rpcutil", "get_fact"));
    assert_eq!(info.args, serde_json::Map::from_iter([("fact".to_string(), json!("country"))]));
    assert_eq!(info.timeout, Duration::from_secs(5));
    assert_eq!(p.focus(), Focus::Results);
    // Replies stream in; another request's progress is ignored.
    let mut reply = ReplyRow::new("web-01", Status::Ok, "", 1.0);
    reply.data = json!({ "fact": "country", "value": "uk" });
    p.update(Action::Request { id: 1, event: RequestEvent::Discovered(vec!["web-01".into(), "db-01".into()]) });
    p.update(Action::Request { id: 1, event: RequestEvent::Reply(Box::new(reply.clone())) });
    p.update(Action::Request { id: 9, event: RequestEvent::Reply(Box::new(ReplyRow::new("x", Status::Ok, "", 1.0))) });
    assert_eq!(p.current().unwrap().replies.len(), 1);
    assert_eq!(p.result_rows().len(), 2, "the silent node is listed as pending");
    let act = fleet_client::ddl::find("rpcutil").unwrap().actions["get_fact"].clone();
    assert_eq!(aggregate_lines(&act, &p.current().unwrap().replies), ["Summary of Value: uk = 1"]);
    // esc walks back: results -> form -> actions -> agents -> the previous panel.
    p.update(r(Msg::Back));
    assert_eq!(p.focus(), Focus::Form);
    p.update(r(Msg::Back));
    p.update(r(Msg::Back));
    assert_eq!(p.update(r(Msg::Back)), Some(Action::Back));
}

#[test]
fn a_destructive_action_asks_first_and_read_only_refuses_it() {
    let mut p = panel(false);
    p.update(Action::ScopeChanged(Scope { filter: String::new(), targets: Some(vec!["web-01".into(), "web-02".into()]) }));
    open(&mut p, "process", "kill");
    assert_eq!(p.form().unwrap().focused().unwrap().name, "targets", "required fields come first");
    for c in "1234@5678".chars() {
        p.update(r(Msg::Edit(TextEdit::Insert(c))));
    }
    let asked = p.update(r(Msg::Submit));
    let Some(Action::Confirm(confirm)) = asked else { panic!("a destructive action asks: {asked:?}") };
    assert!(confirm.lines[0].starts_with("Run process#kill on 2 selected nodes?"), "{:?}", confirm.lines);
    assert!(confirm.lines.contains(&"  web-01".to_string()) && confirm.lines.contains(&"  web-02".to_string()));
    assert_eq!(confirm.yes, r(Msg::Confirmed));
    let Some(Action::RequestStarted(info)) = p.update(r(Msg::Confirmed)) else { panic!() };
    assert_eq!(info.scope.targets.as_deref(), Some(&["web-01".to_string(), "web-02".to_string()][..]));
    assert_eq!(p.update(r(Msg::Confirmed)), None, "a confirmation is used once");

    let mut ro = panel(true);
    ro.form = p.form.clone();
    ro.focus = Focus::Form;
    let refused = ro.update(r(Msg::Submit));
    assert!(matches!(&refused, Some(Action::Notify(n)) if n.text.contains("read-only")), "{refused:?}");
}

#[test]
fn reopen_shows_a_past_record() {
    let mut p = panel(false);
    let mut rec = RequestRecord::new(RequestKey::Rpc(7), "echo", "echo", Default::default(), Scope::default(), SystemTime::UNIX_EPOCH);
    rec.apply(&RequestEvent::Finished { no_reply: vec!["db-01".into()], down: vec![], elapsed_ms: 3.0 });
    p.update(Action::Reopen(Box::new(rec)));
    assert_eq!(p.focus(), Focus::Results);
    assert_eq!(p.result_rows().len(), 1);
}

// --- the rollout fields ---

/// Moves the cursor to the rollout field `flag`, types `text` in it and leaves it.
fn fill_rollout(p: &mut RpcPanel, flag: &str, text: &str) {
    let at = p.rollout.fields.iter().position(|f| f.flag == flag).expect("a rollout flag");
    for _ in 0..20 {
        if p.rollout_field() == Some(at) {
            break;
        }
        p.update(r(Msg::NextField));
    }
    assert_eq!(p.rollout_field(), Some(at));
    p.update(r(Msg::Enter));
    assert_eq!(p.mode(), Mode::RpcField, "enter types in a rollout field");
    p.update(r(Msg::Edit(TextEdit::Clear)));
    for c in text.chars() {
        p.update(r(Msg::Edit(TextEdit::Insert(c))));
    }
    p.update(r(Msg::FieldDone));
    assert_eq!(p.mode(), Mode::RpcForm);
}

#[test]
fn the_rollout_fields_follow_the_forms_own_and_esc_undoes() {
    let mut p = panel(false);
    open(&mut p, "rpcutil", "get_fact");
    assert_eq!(p.rollout_field(), None);
    p.update(r(Msg::NextField));
    assert_eq!(p.rollout_field(), Some(0), "after the form's one field: limit");
    p.update(r(Msg::PrevField));
    assert_eq!((p.rollout_field(), p.form().unwrap().cursor), (None, 0));
    p.update(r(Msg::PrevField));
    assert_eq!(p.rollout_field(), Some(5), "around: max failures");
    fill_rollout(&mut p, "batch", "2");
    p.update(r(Msg::Enter));
    p.update(r(Msg::Edit(TextEdit::Insert('5'))));
    p.update(r(Msg::FieldUndo));
    assert_eq!(p.rollout.get(2).unwrap().input.text(), "2", "esc puts back what the field held");
    assert_eq!(p.form().unwrap().fields[0].display(), "", "typing in a rollout field leaves the form's own alone");
    // The fields stay from one form to the next, as flags do.
    p.update(r(Msg::Back));
    p.update(Action::Nav(Nav::Down));
    p.update(r(Msg::Enter));
    assert_eq!((p.rollout_field(), p.rollout.describe().as_str()), (None, "batch 2"));
}

#[test]
fn a_bad_rollout_value_sends_nothing_and_names_the_field() {
    let mut p = panel(false);
    open(&mut p, "echo", "echo");
    fill_rollout(&mut p, "batch", "0");
    fill_rollout(&mut p, "max-failures", "1x");
    p.update(r(Msg::PrevField));
    let refused = p.update(r(Msg::Submit));
    let Some(Action::Notify(n)) = &refused else { panic!("refused: {refused:?}") };
    assert!(n.error, "{n:?}");
    assert!(n.text.starts_with("nothing sent: msg is required; "), "the form's own mistake first: {}", n.text);
    assert!(n.text.contains("batch '0' refused: 0 nodes would ask no node"), "{}", n.text);
    assert!(n.text.contains("max failures '1x' refused: '1x' is not a number of nodes (N) or a share (N%)"), "{}", n.text);
    assert_eq!((p.focus(), p.rollout_field()), (Focus::Form, None), "the cursor goes to the form's bad field");
    p.update(r(Msg::Enter));
    for c in "hello".chars() {
        p.update(r(Msg::Edit(TextEdit::Insert(c))));
    }
    p.update(r(Msg::FieldDone));
    let refused = p.update(r(Msg::Submit));
    assert!(matches!(&refused, Some(Action::Notify(n)) if n.text.starts_with("nothing sent: batch '0'")), "{refused:?}");
    assert_eq!(p.rollout_field(), Some(2), "then to the first bad rollout field");
    assert!(p.current().is_none(), "nothing was started");
}

#[test]
fn a_staged_request_carries_its_rollout_and_shows_batches_then_where_it_stopped() {
    use fleet_client::Count;
    use fleet_client::rollout::Stopped;
    let mut p = panel(false);
    open(&mut p, "rpcutil", "ping");
    fill_rollout(&mut p, "batch", "2");
    fill_rollout(&mut p, "canary", "1");
    fill_rollout(&mut p, "max-failures", "0");
    fill_rollout(&mut p, "limit-seed", "7");
    let Some(Action::RequestStarted(info)) = p.update(r(Msg::Submit)) else { panic!("submit starts a request") };
    let rollout = info.rollout.clone().expect("the rollout goes with the request");
    assert_eq!(
        (rollout.batch, rollout.canary, rollout.max_failures),
        (Some(Count::Nodes(2)), Some(Count::Nodes(1)), Some(Count::Nodes(0)))
    );
    assert_eq!((rollout.limit, rollout.seed), (None, 7));
    let nodes: Vec<String> = ["a", "b", "c", "d", "e"].map(String::from).to_vec();
    p.update(Action::Request { id: info.id, event: RequestEvent::Discovered(nodes.clone()) });
    // Before the end: the client core's plan (canary a; then b c; then d e).
    let batches = p.batches().unwrap();
    assert_eq!(nodes.iter().map(|n| batches[n]).collect::<Vec<_>>(), [1, 2, 2, 3, 3]);
    p.update(Action::Request { id: info.id, event: RequestEvent::Reply(Box::new(ReplyRow::new("a", Status::Aborted, "no", 1.0))) });
    p.update(Action::Request { id: info.id, event: RequestEvent::Finished { no_reply: vec![], down: vec![], elapsed_ms: 3.0 } });
    let report = Report {
        batches: batches.clone(),
        batch_count: 3,
        canary: true,
        stopped: Some(Stopped { batch: 1, node: "a".into(), failures: 1, tolerated: 0, reason: "1 failure(s) passed".into() }),
        never_asked: nodes[1..].to_vec(),
        ..Report::default()
    };
    p.update(r(Msg::RolloutReport { id: 9, report: Box::new(Report::default()) }));
    assert!(p.report().is_none(), "another request's report is not this one's");
    p.update(r(Msg::RolloutReport { id: info.id, report: Box::new(report) }));
    let rows: Vec<(String, bool)> =
        p.result_rows().iter().map(|r| (r.sender().to_string(), matches!(r, ResultRow::NeverAsked(_)))).collect();
    assert_eq!(rows[0], ("a".to_string(), false));
    assert_eq!(rows.iter().filter(|(_, never)| *never).count(), 4, "the nodes never asked are listed: {rows:?}");
}

// --- snapshots of the form with its rollout fields ---

mod snapshots {
    use super::*;
    use crate::console::app::{App, AppInit};
    use crossterm::event::{KeyCode, KeyEventKind, KeyModifiers};
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    fn key(app: &mut App, code: KeyCode) {
        let ev = KeyEvent::new_with_kind(code, KeyModifiers::NONE, KeyEventKind::Press);
        app.dispatch(Action::Key(ev), &mut |_| {});
    }

    fn keys(app: &mut App, text: &str) {
        text.chars().for_each(|c| key(app, KeyCode::Char(c)));
    }

    fn render(app: &App, cols: u16, rows: u16) -> String {
        let mut terminal = Terminal::new(TestBackend::new(cols, rows)).unwrap();
        terminal.draw(|f| app.draw(f, f.area())).unwrap();
        terminal.backend().to_string()
    }

    /// echo#echo's form with a message, batch 2, canary 1 and max failures 0 typed, and the
    /// cursor in the max failures field, typing.
    fn rollout_form() -> App {
        let init = AppInit::new(vec!["tcp://127.0.0.1:7402".into()], SystemTime::UNIX_EPOCH + Duration::from_secs(1_728_000_000));
        let mut app = App::new(init);
        app.dispatch(Action::Link(LinkState::Connected { hub: "tcp://127.0.0.1:7402".into() }), &mut |_| {});
        keys(&mut app, "5");
        let agents = ["echo", "process", "rpcutil"].map(|n| FleetAgent { name: n.into(), version: "1.0.0".into(), nodes: 6 }).to_vec();
        app.dispatch(Action::Rpc(Msg::Agents(Ok(agents))), &mut |_| {});
        key(&mut app, KeyCode::Enter);
        key(&mut app, KeyCode::Enter);
        for (down, text) in [(0, "hello"), (3, "2"), (2, "1")] {
            (0..down).for_each(|_| keys(&mut app, "j"));
            key(&mut app, KeyCode::Enter);
            keys(&mut app, text);
            key(&mut app, KeyCode::Enter);
        }
        keys(&mut app, "j");
        key(&mut app, KeyCode::Enter);
        keys(&mut app, "0");
        assert_eq!(app.mode(), Mode::RpcField);
        assert_eq!(app.rpc().rollout_field(), Some(5));
        app
    }

    #[test]
    fn rpc_rollout_form_80x24() {
        insta::assert_snapshot!(render(&rollout_form(), 80, 24));
    }

    #[test]
    fn rpc_rollout_form_160x48() {
        insta::assert_snapshot!(render(&rollout_form(), 160, 48));
    }

    #[test]
    fn rpc_rollout_form_40x10() {
        insta::assert_snapshot!(render(&rollout_form(), 40, 10));
    }
}
