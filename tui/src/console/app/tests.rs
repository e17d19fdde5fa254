//! The shell's state machine (focus, popups, the command line, aiming, the log) without rendering,
//! and TestBackend snapshots of every panel at 80x24 and 160x48 with demo-like data.

use std::time::{Duration, UNIX_EPOCH};

use crossterm::event::{KeyCode, KeyEventKind, KeyModifiers};
use fleet_protocol::{Event, Status};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use serde_json::{Value, json};

use super::*;
use crate::console::action::{LinkState, Nav, ReplyRow, RequestEvent};
use crate::console::discovery::NodeStatus;
use crate::console::inventory::{self, Part};
use crate::console::rpc::{self, FleetAgent};

const NODES: [&str; 5] = ["web-01", "web-02", "db-01", "cache-01", "xen-01"];

fn at(h: u64, m: u64, s: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(20_000 * 86_400 + h * 3600 + m * 60 + s)
}

fn app() -> App {
    let mut init = AppInit::new(vec!["tcp://127.0.0.1:7402".into()], at(12, 34, 56));
    init.note = Some("demo: embedded hub + 5 in-process nodes".into());
    App::new(init)
}

fn press(code: KeyCode, mods: KeyModifiers) -> Action {
    Action::Key(KeyEvent::new_with_kind(code, mods, KeyEventKind::Press))
}

pub(super) fn key(code: KeyCode) -> Action {
    press(code, KeyModifiers::NONE)
}

pub(super) fn ch(c: char) -> Action {
    key(KeyCode::Char(c))
}

fn ctrl(c: char) -> Action {
    press(KeyCode::Char(c), KeyModifiers::CONTROL)
}

/// Dispatches and returns what went to the network.
pub(super) fn send(app: &mut App, action: Action) -> Vec<NetCommand> {
    let mut out = Vec::new();
    app.dispatch(action, &mut |c| out.push(c));
    out
}

fn type_text(app: &mut App, text: &str) -> Vec<NetCommand> {
    text.chars().flat_map(|c| send(app, ch(c))).collect()
}

/// In the RPC form: `enter` into the field under the cursor, type `text`, `enter` out of it.
fn fill_field(app: &mut App, text: &str) {
    send(app, key(KeyCode::Enter));
    assert_eq!(app.mode(), Mode::RpcField, "enter starts typing in the field");
    assert!(type_text(app, text).is_empty());
    send(app, key(KeyCode::Enter));
    assert_eq!(app.mode(), Mode::RpcForm, "enter leaves the field");
}

pub(super) fn reply(sender: &str, status: Status, message: &str, ms: f64, data: Value) -> RequestEvent {
    let mut r = ReplyRow::new(sender, status, message, ms);
    r.data = data;
    RequestEvent::Reply(Box::new(r))
}

fn ok(sender: &str, ms: f64) -> RequestEvent {
    reply(sender, Status::Ok, "", ms, json!({ "pong": 1_700_000_000_000u64 }))
}

/// The demo after the first round's replies: three ok, one failed, one still silent.
pub(super) fn demo_app() -> App {
    let mut app = app();
    send(&mut app, Action::Link(LinkState::Connected { hub: "tcp://127.0.0.1:7402".into() }));
    send(&mut app, Action::Nodes(NODES.map(String::from).to_vec()));
    let net = send(&mut app, Action::Discovery(discovery::Msg::Rerun));
    assert_eq!(net, vec![NetCommand::Round { round: 1, filter: String::new() }]);
    let round = 1;
    send(&mut app, Action::Round { round, event: RequestEvent::Discovered(NODES.map(String::from).to_vec()) });
    send(&mut app, Action::Round { round, event: RequestEvent::Sent { request_id: "5f2c9a7e0b1d4c3a".into() } });
    send(&mut app, Action::Round { round, event: ok("web-01", 1.24) });
    send(&mut app, Action::Round { round, event: ok("db-01", 2.61) });
    send(&mut app, Action::Round { round, event: ok("web-02", 1.87) });
    send(&mut app, Action::Round { round, event: reply("cache-01", Status::Aborted, "redis is not running", 3.4, Value::Null) });
    app
}

pub(super) fn finished_demo() -> App {
    let mut app = demo_app();
    send(
        &mut app,
        Action::Round { round: 1, event: RequestEvent::Finished { no_reply: vec!["xen-01".into()], down: vec![], elapsed_ms: 7012.0 } },
    );
    app
}

pub(super) fn render(app: &App, cols: u16, rows: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(cols, rows)).unwrap();
    terminal.draw(|f| app.draw(f, f.area())).unwrap();
    terminal.backend().to_string()
}

fn demo_facts(node: &str) -> Value {
    let (country, role, dc) = match node {
        "web-01" => ("uk", "web", "lon1"),
        "web-02" => ("us", "web", "nyc1"),
        "db-01" => ("uk", "db", "lon1"),
        "cache-01" => ("de", "cache", "fra1"),
        _ => ("us", "hypervisor", "nyc1"),
    };
    json!({
        "country": country, "datacenter": dc, "demo": true, "hostname": node, "role": role,
        "kernel": "Linux",
        "os": { "family": "Debian", "name": "Debian", "release": { "full": "12.5", "major": "12" } },
        "memory": { "total_mb": 15_872 },
        "processors": { "count": 8, "model": "AMD EPYC 7B13" },
    })
}

fn agent_inventory() -> Value {
    let agent = |name: &str, description: &str, actions: &[&str]| json!({ "name": name, "version": "1.0.0", "description": description, "actions": actions });
    json!({ "agents": [
        agent("echo", "Echoes a message back: the MCollective tutorial's agent", &["echo"]),
        agent("process", "Processes on the node: list and kill", &["kill", "list"]),
        agent("rpcutil", "General helpful actions that expose stats and internals to SimpleRPC clients", &["agent_inventory", "daemon_stats", "get_fact", "inventory", "ping"]),
        agent("xen", "Xen dom0s and their domUs", &["find", "info", "list", "migrate"]),
    ] })
}

fn daemon_stats() -> Value {
    json!({
        "total": 42, "validated": 40, "unvalidated": 2, "passed": 41, "filtered": 1, "replies": 40, "ttlexpired": 0,
        "pid": 4242, "starttime": 1_700_000_000u64, "uptime": 93_784, "agents": ["echo", "process", "rpcutil", "xen"],
        "version": "0.1.0", "hubs": { "tcp://127.0.0.1:7402": "connected" },
    })
}

/// The demo on the Inventory panel with web-01's data in.
fn inventory_app() -> App {
    let mut app = finished_demo();
    let net = send(&mut app, ch('3'));
    assert_eq!(net, vec![NetCommand::FetchNode { node: "cache-01".into() }], "the first node in name order");
    send(&mut app, Action::Nav(Nav::Bottom));
    send(&mut app, Action::Nav(Nav::Up));
    send(&mut app, Action::Nav(Nav::Up));
    for (part, data) in [
        (Part::Inventory, json!({ "facts": demo_facts("web-01"), "classes": ["base", "role::web", "nginx"] })),
        (Part::Agents, agent_inventory()),
        (Part::Stats, daemon_stats()),
    ] {
        send(&mut app, Action::Inventory(inventory::Msg::Fetched { node: "web-01".into(), part, result: Ok(data) }));
    }
    assert_eq!(app.inventory().selected(), Some("web-01"));
    app
}

fn fleet_agents() -> Action {
    let agents = ["echo", "process", "rpcutil", "xen"].map(|n| FleetAgent { name: n.into(), version: "1.0.0".into(), nodes: 5 }).to_vec();
    Action::Rpc(rpc::Msg::Agents(Ok(agents)))
}

/// The RPC panel with rpcutil#get_fact's form open.
fn get_fact_form() -> App {
    let mut app = finished_demo();
    let net = send(&mut app, ch('5'));
    assert!(matches!(&net[..], [NetCommand::FleetAgents { .. }]), "{net:?}");
    send(&mut app, fleet_agents());
    send(&mut app, ch('j'));
    send(&mut app, ch('j'));
    send(&mut app, key(KeyCode::Enter));
    // agent_inventory, collective_info, daemon_stats, get_fact
    for _ in 0..3 {
        send(&mut app, ch('j'));
    }
    send(&mut app, key(KeyCode::Enter));
    assert_eq!(app.rpc().form().map(|f| f.action.as_str()), Some("get_fact"));
    app
}

/// get_fact country answered by the demo nodes.
fn get_fact_results() -> App {
    let mut app = get_fact_form();
    fill_field(&mut app, "country");
    let net = send(&mut app, ch('r'));
    let [NetCommand::Rpc(info)] = &net[..] else { panic!("{net:?}") };
    let id = info.id;
    send(&mut app, Action::Request { id, event: RequestEvent::Discovered(NODES.map(String::from).to_vec()) });
    send(&mut app, Action::Request { id, event: RequestEvent::Sent { request_id: "9d1e4b2a77c04f18".into() } });
    for (node, country, ms) in [("web-01", "uk", 1.1), ("web-02", "us", 1.4), ("db-01", "uk", 1.2), ("xen-01", "us", 2.2)] {
        send(&mut app, Action::Request { id, event: reply(node, Status::Ok, "", ms, json!({ "fact": "country", "value": country })) });
    }
    send(
        &mut app,
        Action::Request { id, event: RequestEvent::Finished { no_reply: vec!["cache-01".into()], down: vec![], elapsed_ms: 5003.0 } },
    );
    app
}

// --- snapshots ---

#[test]
fn discovery_80x24() {
    let mut app = finished_demo();
    send(&mut app, ch('F'));
    send(&mut app, ch('j'));
    insta::assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn discovery_160x48() {
    let app = finished_demo();
    insta::assert_snapshot!(render(&app, 160, 48));
}

#[test]
fn discovery_round_in_progress_80x24() {
    let app = demo_app();
    insta::assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn discovery_filter_error_80x24() {
    let mut app = demo_app();
    send(&mut app, ch('f'));
    type_text(&mut app, "country=uk and");
    insta::assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn discovery_sorted_and_searched_160x48() {
    let mut app = finished_demo();
    send(&mut app, ch('s'));
    send(&mut app, ch('/'));
    type_text(&mut app, "0");
    insta::assert_snapshot!(render(&app, 160, 48));
}

#[test]
fn help_popup_80x24() {
    let mut app = demo_app();
    send(&mut app, ch('?'));
    insta::assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn command_line_completion_80x24() {
    let mut app = finished_demo();
    send(&mut app, ch(':'));
    send(&mut app, ch('p'));
    send(&mut app, key(KeyCode::Tab));
    insta::assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn disconnected_80x24() {
    let mut app = app();
    send(&mut app, Action::Discovery(discovery::Msg::Rerun));
    send(&mut app, Action::Link(LinkState::Disconnected { reason: "no hub reachable".into() }));
    insta::assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn inventory_facts_80x24() {
    insta::assert_snapshot!(render(&inventory_app(), 80, 24));
}

#[test]
fn inventory_facts_160x48() {
    let mut app = inventory_app();
    send(&mut app, ch('l'));
    send(&mut app, ch('/'));
    type_text(&mut app, "os");
    insta::assert_snapshot!(render(&app, 160, 48));
}

#[test]
fn inventory_agents_and_stats_80x24() {
    let mut app = inventory_app();
    send(&mut app, ch(']'));
    let agents = render(&app, 80, 24);
    send(&mut app, ch(']'));
    send(&mut app, ch(']'));
    insta::assert_snapshot!(format!("{agents}\n{}", render(&app, 80, 24)));
}

#[test]
fn inventory_classes_and_stats_160x48() {
    let mut app = inventory_app();
    send(&mut app, ch('['));
    let stats = render(&app, 160, 48);
    send(&mut app, ch('['));
    insta::assert_snapshot!(format!("{stats}\n{}", render(&app, 160, 48)));
}

#[test]
fn rpc_form_with_an_error_80x24() {
    let mut app = get_fact_form();
    send(&mut app, key(KeyCode::Enter));
    type_text(&mut app, "bad fact");
    insta::assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn rpc_form_with_an_error_160x48() {
    let mut app = get_fact_form();
    fill_field(&mut app, "bad fact");
    insta::assert_snapshot!(render(&app, 160, 48));
}

#[test]
fn discovery_40x10() {
    // The top bar drops items in a fixed order (the clock never covers the hub), the tabs keep
    // their numbers, the footer ends in an ellipsis.
    insta::assert_snapshot!(render(&finished_demo(), 40, 10));
}

#[test]
fn rpc_form_typing_40x10() {
    let mut app = get_fact_form();
    send(&mut app, key(KeyCode::Enter));
    type_text(&mut app, "os");
    insta::assert_snapshot!(render(&app, 40, 10));
}

#[test]
fn rpc_results_80x24() {
    insta::assert_snapshot!(render(&get_fact_results(), 80, 24));
}

#[test]
fn rpc_results_160x48() {
    insta::assert_snapshot!(render(&get_fact_results(), 160, 48));
}

#[test]
fn rpc_destructive_confirmation_80x24() {
    let mut app = finished_demo();
    send(&mut app, ch('F'));
    send(&mut app, ch('a'));
    send(&mut app, fleet_agents());
    send(&mut app, ch('j'));
    send(&mut app, key(KeyCode::Enter));
    // process: detail, kill, list
    send(&mut app, ch('j'));
    send(&mut app, key(KeyCode::Enter));
    fill_field(&mut app, "1234@1700000000");
    let net = send(&mut app, ch('r'));
    assert!(net.is_empty(), "nothing goes out before the answer");
    assert_eq!(app.mode(), Mode::Confirm);
    insta::assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn log_80x24() {
    let mut app = get_fact_results();
    send(&mut app, ch('6'));
    insta::assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn log_160x48() {
    let mut app = get_fact_results();
    send(&mut app, ch('6'));
    insta::assert_snapshot!(render(&app, 160, 48));
}

#[test]
fn renders_every_panel_at_any_size_without_panicking() {
    let mut apps = vec![get_fact_results(), inventory_app(), finished_demo()];
    let mut editing = demo_app();
    send(&mut editing, ch('f'));
    type_text(&mut editing, "country=uk and (role=web or");
    apps.push(editing);
    let mut help = demo_app();
    send(&mut help, ch('?'));
    apps.push(help);
    let mut form = get_fact_form();
    send(&mut form, key(KeyCode::Enter));
    type_text(&mut form, "bad fact");
    apps.push(form);
    for app in &mut apps {
        for panel in 1..=6 {
            if !app.help_visible() && !app.mode().is_text_entry() {
                send(app, ch(char::from_digit(panel, 10).unwrap()));
            }
            for (cols, rows) in [(1, 1), (10, 3), (20, 5), (40, 10), (79, 23), (80, 24), (300, 100)] {
                render(app, cols, rows);
            }
        }
    }
}

// --- the state machine ---

#[test]
fn tabs_digits_and_escape_move_between_panels() {
    let mut app = finished_demo();
    assert_eq!(app.focus(), PanelId::Discovery);
    send(&mut app, key(KeyCode::Tab));
    assert_eq!(app.focus(), PanelId::Processes);
    send(&mut app, press(KeyCode::BackTab, KeyModifiers::SHIFT));
    send(&mut app, press(KeyCode::BackTab, KeyModifiers::SHIFT));
    assert_eq!(app.focus(), PanelId::Jobs, "shift-tab wraps around");
    send(&mut app, ch('3'));
    assert_eq!(app.focus(), PanelId::Inventory);
    send(&mut app, key(KeyCode::Esc));
    assert_eq!(app.focus(), PanelId::Jobs, "esc goes back");
    send(&mut app, key(KeyCode::Esc));
    send(&mut app, key(KeyCode::Esc));
    send(&mut app, key(KeyCode::Esc));
    assert_eq!(app.focus(), PanelId::Discovery);
    send(&mut app, key(KeyCode::Esc));
    assert_eq!(app.focus(), PanelId::Discovery, "nothing further back");
    let screen = render(&app, 80, 24);
    assert!(screen.contains("1 Discovery") && screen.contains("6 Log"), "{screen}");
}

#[test]
fn keys_route_to_the_popup_first_and_esc_closes_popups_first() {
    let mut app = finished_demo();
    send(&mut app, ch('2'));
    send(&mut app, ch('?'));
    assert_eq!(app.mode(), Mode::Help);
    send(&mut app, ch('4'));
    assert_eq!(app.focus(), PanelId::Processes, "digits do not switch panels under the help");
    send(&mut app, key(KeyCode::Esc));
    assert!(!app.help_visible());
    assert_eq!(app.focus(), PanelId::Processes, "esc closed the popup, it did not go back");
    send(&mut app, ch(':'));
    send(&mut app, ch('q'));
    assert!(!app.should_quit(), "q types in the command line");
    send(&mut app, key(KeyCode::Esc));
    assert_eq!(app.mode(), Mode::Processes);
    send(&mut app, ch('q'));
    assert!(app.should_quit());
}

#[test]
fn q_types_in_the_filter_but_quits_elsewhere() {
    let mut app = demo_app();
    send(&mut app, ch('f'));
    type_text(&mut app, "q1");
    assert!(!app.should_quit());
    assert_eq!(app.discovery().filter_text(), "q1");
    assert_eq!(app.focus(), PanelId::Discovery, "1 types too");
    send(&mut app, key(KeyCode::Esc));
    send(&mut app, ch('q'));
    assert!(app.should_quit());
    let mut app = demo_app();
    send(&mut app, ch('f'));
    send(&mut app, ctrl('c'));
    assert!(app.should_quit());
}

#[test]
fn enter_runs_the_typed_filter_and_the_top_bar_follows() {
    let mut app = demo_app();
    send(&mut app, ch('f'));
    type_text(&mut app, "country=uk and role=web");
    let net = send(&mut app, key(KeyCode::Enter));
    assert_eq!(net, vec![NetCommand::Round { round: 2, filter: "country=uk and role=web".into() }]);
    assert_eq!(app.discovery().round().unwrap().id, 2);
    assert!(app.discovery().rows().is_empty());
    // Late progress of round 1 does not leak into round 2.
    send(&mut app, Action::Round { round: 1, event: ok("xen-01", 9.0) });
    assert!(app.discovery().rows().is_empty());
    let screen = render(&app, 80, 24);
    assert!(screen.contains("filter country=uk and role=web"), "{screen}");
    assert_eq!(app.scope(), &Scope::filter("country=uk and role=web"));
}

#[test]
fn the_command_line_runs_commands_and_reports_mistakes() {
    let mut app = finished_demo();
    send(&mut app, ch('3'));
    send(&mut app, ch(':'));
    type_text(&mut app, "filter country=uk");
    let net = send(&mut app, key(KeyCode::Enter));
    assert_eq!(net, vec![NetCommand::Round { round: 2, filter: "country=uk".into() }]);
    assert_eq!(app.focus(), PanelId::Discovery, ":filter shows the round");
    send(&mut app, ch(':'));
    type_text(&mut app, "filter country=");
    assert!(send(&mut app, key(KeyCode::Enter)).is_empty());
    assert!(app.notice().is_some_and(|n| n.error && n.text.starts_with("bad filter at column")), "{:?}", app.notice());
    send(&mut app, ch(':'));
    type_text(&mut app, "theme light");
    send(&mut app, key(KeyCode::Enter));
    assert_eq!(app.theme(), &theme::load("light", false, &[]).unwrap());
    send(&mut app, ch(':'));
    type_text(&mut app, "theme nope");
    send(&mut app, key(KeyCode::Enter));
    assert!(app.notice().is_some_and(|n| n.text.starts_with("unknown theme \"nope\"")), "{:?}", app.notice());
    send(&mut app, ch(':'));
    type_text(&mut app, "panel log");
    send(&mut app, key(KeyCode::Enter));
    assert_eq!(app.focus(), PanelId::Log);
    send(&mut app, ch(':'));
    type_text(&mut app, "frobnicate");
    send(&mut app, key(KeyCode::Enter));
    assert!(app.notice().is_some_and(|n| n.text.starts_with("unknown command \"frobnicate\"")));
    send(&mut app, ch('j'));
    assert!(app.notice().is_none(), "the next key clears the message");
    // History: up brings back the last command.
    send(&mut app, ch(':'));
    send(&mut app, key(KeyCode::Up));
    assert_eq!(app.command_line().text(), "frobnicate");
    send(&mut app, key(KeyCode::Esc));
    send(&mut app, ch(':'));
    type_text(&mut app, "ping");
    let net = send(&mut app, key(KeyCode::Enter));
    assert_eq!(net, vec![NetCommand::Round { round: 3, filter: "country=uk".into() }], ":ping reruns the filter in force");
    send(&mut app, ch(':'));
    type_text(&mut app, "quit");
    send(&mut app, key(KeyCode::Enter));
    assert!(app.should_quit());
}

#[test]
fn tagged_nodes_become_the_targets_of_the_next_rpc() {
    let mut app = finished_demo();
    send(&mut app, ch('F'));
    send(&mut app, ch('N'));
    let net = send(&mut app, ch('a'));
    assert_eq!(app.focus(), PanelId::Rpc);
    assert_eq!(app.scope(), &Scope { filter: String::new(), targets: Some(vec!["cache-01".into(), "xen-01".into()]) });
    assert!(matches!(&net[..], [NetCommand::FleetAgents { scope }] if scope.targets.as_ref().map(Vec::len) == Some(2)), "{net:?}");
    assert!(render(&app, 80, 24).contains("aimed at 2 tagged nodes"));
    send(&mut app, fleet_agents());
    send(&mut app, key(KeyCode::Enter));
    send(&mut app, key(KeyCode::Enter));
    fill_field(&mut app, "hello");
    let net = send(&mut app, ch('r'));
    let [NetCommand::Rpc(info)] = &net[..] else { panic!("{net:?}") };
    assert_eq!((info.agent.as_str(), info.action.as_str()), ("echo", "echo"));
    assert_eq!(info.scope.targets.as_deref(), Some(&["cache-01".to_string(), "xen-01".to_string()][..]));
    assert_eq!(info.args["msg"], json!("hello"));
    assert_eq!(app.log().in_flight(), 1);
    // A new discovery round aims at its filter again.
    send(&mut app, ch(':'));
    type_text(&mut app, "ping");
    send(&mut app, key(KeyCode::Enter));
    assert_eq!(app.scope(), &Scope::filter(""));
}

#[test]
fn a_confirmation_runs_on_y_and_not_on_n() {
    let mut app = finished_demo();
    send(&mut app, ch('5'));
    send(&mut app, fleet_agents());
    send(&mut app, ch('j'));
    send(&mut app, key(KeyCode::Enter));
    // process: detail, kill, list
    send(&mut app, ch('j'));
    send(&mut app, key(KeyCode::Enter));
    fill_field(&mut app, "1@2");
    send(&mut app, ch('r'));
    assert!(app.confirm().is_some());
    assert!(send(&mut app, ch('n')).is_empty());
    assert!(app.confirm().is_none());
    send(&mut app, ch('r'));
    assert!(send(&mut app, ch('x')).is_empty(), "other keys do nothing");
    let net = send(&mut app, ch('y'));
    assert!(matches!(&net[..], [NetCommand::Rpc(info)] if info.action == "kill"), "{net:?}");
}

#[test]
fn the_log_lists_requests_and_reopens_their_results() {
    let mut app = get_fact_results();
    send(&mut app, ch('6'));
    let whats: Vec<String> = app.log().shown().iter().map(|r| r.what()).collect();
    assert_eq!(whats, ["rpcutil#get_fact", "rpcutil#ping"]);
    send(&mut app, ch('j'));
    send(&mut app, key(KeyCode::Enter));
    assert_eq!(app.focus(), PanelId::Rpc);
    let shown = app.rpc().current().unwrap();
    assert_eq!((shown.what().as_str(), shown.ok_count(), shown.failed_count()), ("rpcutil#ping", 3, 1));
    assert!(render(&app, 160, 48).contains("redis is not running"));
}

#[test]
fn inventory_refreshes_on_a_registration_change_of_the_shown_node() {
    let mut app = inventory_app();
    assert!(render(&app, 80, 24).contains("country"));
    let net = send(&mut app, Action::NodeEvent(Event::NodeChanged { identity: "web-01".into() }));
    assert_eq!(net, vec![NetCommand::FetchNode { node: "web-01".into() }]);
    let net = send(&mut app, Action::NodeEvent(Event::NodeChanged { identity: "db-01".into() }));
    assert!(net.is_empty());
}

#[test]
fn redraw_only_when_something_changed() {
    let mut app = finished_demo();
    let mut none = |_c: NetCommand| {};
    assert!(!app.dispatch(Action::Tick(at(12, 34, 56)), &mut none), "same second");
    assert!(app.dispatch(Action::Tick(at(12, 34, 57)), &mut none));
    assert!(!app.dispatch(ch('x'), &mut none), "an unbound key");
    assert!(app.dispatch(ch('j'), &mut none));
    assert_eq!(app.top_bar().clock(), "12:34:57 UTC");
    // While a request is in flight the spinner turns on every tick.
    let mut busy = demo_app();
    assert!(busy.dispatch(Action::Tick(at(12, 34, 56)), &mut none));
}

#[test]
fn statuses_follow_the_round() {
    let mut app = demo_app();
    assert_eq!(app.discovery().row("xen-01").unwrap().status, NodeStatus::Pending);
    send(
        &mut app,
        Action::Round { round: 1, event: RequestEvent::Finished { no_reply: vec!["xen-01".into()], down: vec![], elapsed_ms: 7000.0 } },
    );
    assert_eq!(app.discovery().row("xen-01").unwrap().status, NodeStatus::NoReply);
    assert_eq!(app.discovery().row("web-01").unwrap().status, NodeStatus::Ok { ms: 1.24 });
    let screen = render(&app, 80, 24);
    assert!(screen.contains("nodes 5/5"), "{screen}");
}
