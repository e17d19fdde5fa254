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
