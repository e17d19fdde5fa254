//! The Discovery panel without a terminal: the filter line, the grid's states through a round,
//! sorting, searching, tagging and aiming.

use super::*;
use crate::console::action::{ReplyRow, RequestEvent, SearchEdit};

fn panel() -> Discovery {
    Discovery::new(&PanelContext { theme: Theme::mono(), keys: Default::default(), read_only: false, scope: Scope::default() })
}

fn reply(sender: &str, status: Status, message: &str, ms: f64) -> RequestEvent {
    RequestEvent::Reply(Box::new(ReplyRow::new(sender, status, message, ms)))
}

fn d(msg: Msg) -> Action {
    Action::Discovery(msg)
}

fn started(d: &mut Discovery) -> u64 {
    let Some(Action::RunDiscovery { round, filter }) = d.update(Action::Discovery(Msg::Rerun)) else { panic!("rerun must start a round") };
    d.update(Action::RunDiscovery { round, filter });
    round
}

fn names(d: &Discovery) -> Vec<&str> {
    d.shown().iter().map(|r| r.identity.as_str()).collect()
}

#[test]
fn bar_matches_the_cli_shape() {
    assert_eq!(bar_cells(12, 20, 10), ("=====>".to_string(), "    ".to_string()));
    assert_eq!(bar_cells(0, 20, 4), (String::new(), "    ".to_string()));
    assert_eq!(bar_cells(20, 20, 4), ("====".to_string(), String::new()));
    assert_eq!(bar_cells(0, 0, 3), (String::new(), "   ".to_string()));
}

#[test]
fn typing_a_bad_filter_shows_the_error_with_its_column() {
    let mut p = panel();
    p.update(d(Msg::EditFilter));
    assert_eq!(p.mode(), Mode::DiscoveryFilter);
    for c in "country=uk and".chars() {
        p.update(d(Msg::EditText(TextEdit::Insert(c))));
    }
    let err = p.filter_error().expect("a dangling 'and' is an error");
    assert!(err.column >= 12 && err.column <= 15, "column {} of {:?}", err.column, err.input);
    // Enter does not run a broken filter.
    assert_eq!(p.update(d(Msg::Submit)), None);
    assert!(p.editing());
    for c in " role=web".chars() {
        p.update(d(Msg::EditText(TextEdit::Insert(c))));
    }
    assert!(p.filter_error().is_none());
    assert_eq!(p.update(d(Msg::Submit)), Some(Action::RunDiscovery { round: 1, filter: "country=uk and role=web".into() }));
    assert!(!p.editing());
}

#[test]
fn escape_puts_back_the_filter_in_force() {
    let mut p = panel();
    p.update(Action::RunDiscovery { round: 1, filter: "role=db".into() });
    p.update(d(Msg::EditFilter));
    p.update(d(Msg::EditText(TextEdit::Clear)));
    p.update(d(Msg::EditText(TextEdit::Insert('('))));
    assert!(p.filter_error().is_some());
    p.update(d(Msg::CancelEdit));
    assert_eq!((p.filter_text(), p.filter_error(), p.mode()), ("role=db", None, Mode::Discovery));
}

/// The grid's states: pending -> ok | failed; pending -> no reply at the end; a reply from
/// a node that was not discovered is added, marked unexpected; a stale round is ignored.
#[test]
fn grid_state_transitions() {
    let mut p = panel();
    let round = started(&mut p);
    assert_eq!(p.round().unwrap().phase, Phase::Discovering);
    let nodes: Vec<String> = ["web-02", "web-01", "db-01"].map(String::from).to_vec();
    p.update(Action::Round { round, event: RequestEvent::Discovered(nodes) });
    assert_eq!(p.round().unwrap().phase, Phase::Waiting);
    assert!(p.rows().iter().all(|r| r.status == NodeStatus::Pending));
    assert_eq!(names(&p), ["db-01", "web-01", "web-02"], "rows are in name order");
    assert_eq!(p.selected().unwrap().identity, "db-01", "a new round selects the first row");
    p.update(Action::Round { round, event: reply("web-01", Status::Ok, "", 1.5) });
    p.update(Action::Round { round, event: reply("db-01", Status::Aborted, "disk full", 3.0) });
    let mut late = ReplyRow::new("stray-01", Status::Ok, "", 4.0);
    late.expected = false;
    p.update(Action::Round { round, event: RequestEvent::Reply(Box::new(late)) });
    // A stale round's progress is ignored.
    p.update(Action::Round { round: round + 7, event: reply("web-02", Status::Ok, "", 1.0) });
    assert_eq!(p.row("web-01").unwrap().status, NodeStatus::Ok { ms: 1.5 });
    assert_eq!(p.row("web-02").unwrap().status, NodeStatus::Pending);
    assert_eq!(p.row("stray-01").unwrap().status_word(), "unexpected");
    assert_eq!(p.tally(), Tally { replied: 2, ok: 1, failed: 1, no_reply: 0, down: 0, unexpected: 1 });
    p.update(Action::Round { round, event: RequestEvent::Finished { no_reply: vec!["web-02".into()], down: vec![], elapsed_ms: 7000.0 } });
    assert_eq!(p.row("web-02").unwrap().status, NodeStatus::NoReply);
    assert_eq!(p.row("db-01").unwrap().status, NodeStatus::Failed { status: Status::Aborted, message: "disk full".into(), ms: 3.0 });
    assert_eq!(p.round().unwrap().phase, Phase::Done { elapsed_ms: 7000.0 });
    p.update(Action::Round { round, event: RequestEvent::Failed("hub went away".into()) });
    assert_eq!(p.round().unwrap().phase, Phase::Failed("hub went away".into()));
}

#[test]
fn nodes_joining_after_the_round_are_listed_but_not_counted() {
    let mut p = panel();
    let round = started(&mut p);
    p.update(Action::Round { round, event: RequestEvent::Discovered(vec!["a".into(), "b".into()]) });
    // While the round runs, membership news waits for the round's own answer.
    p.update(Action::Members { filter: String::new(), nodes: vec!["a".into()] });
    assert_eq!(p.rows().len(), 2);
    p.update(Action::Round { round, event: reply("a", Status::Ok, "", 1.0) });
    p.update(Action::Round { round, event: reply("b", Status::Ok, "", 1.0) });
    p.update(Action::Round { round, event: RequestEvent::Finished { no_reply: vec![], down: vec![], elapsed_ms: 3.0 } });
    p.update(Action::Members { filter: "role=x".into(), nodes: vec![] });
    assert_eq!(p.rows().len(), 2, "another filter's members are ignored");
    p.update(Action::Members { filter: String::new(), nodes: vec!["a".into(), "c".into()] });
    assert!(p.row("b").unwrap().left);
    assert_eq!(p.row("b").unwrap().status, NodeStatus::Ok { ms: 1.0 }, "the round's result stays");
    assert_eq!(p.row("c").unwrap().status, NodeStatus::Joined);
    assert_eq!(p.tally().replied, 2, "joined nodes are not counted in the round");
    p.update(Action::Members { filter: String::new(), nodes: vec!["a".into(), "b".into()] });
    assert!(!p.row("b").unwrap().left);
    assert!(p.row("c").is_none(), "joined and gone again");
}

fn finished_round(p: &mut Discovery) -> u64 {
    let round = started(p);
    let nodes: Vec<String> = ["a", "b", "c", "d", "e"].map(String::from).to_vec();
    p.update(Action::Round { round, event: RequestEvent::Discovered(nodes) });
    p.update(Action::Round { round, event: reply("a", Status::Ok, "", 5.0) });
    p.update(Action::Round { round, event: reply("b", Status::Aborted, "x", 1.0) });
    p.update(Action::Round { round, event: reply("c", Status::Ok, "", 2.0) });
    p.update(Action::Round { round, event: reply("d", Status::Denied, "policy", 3.0) });
    p.update(Action::Round { round, event: RequestEvent::Finished { no_reply: vec!["e".into()], down: vec![], elapsed_ms: 10.0 } });
    round
}

#[test]
fn the_grid_sorts_by_name_status_and_time_and_reverses() {
    let mut p = panel();
    finished_round(&mut p);
    assert_eq!(names(&p), ["a", "b", "c", "d", "e"]);
    p.update(d(Msg::CycleSort));
    assert_eq!(p.sort(), (SortKey::Status, false));
    assert_eq!(names(&p), ["b", "d", "e", "a", "c"], "failed, no reply, then ok");
    p.update(d(Msg::CycleSort));
    assert_eq!(names(&p), ["b", "c", "d", "a", "e"], "fastest first, no time last");
    p.update(d(Msg::ReverseSort));
    assert_eq!(names(&p), ["e", "a", "d", "c", "b"]);
    p.update(d(Msg::CycleSort));
    assert_eq!(p.sort(), (SortKey::Name, false));
}

#[test]
fn search_narrows_the_grid_by_name_or_status() {
    let mut p = panel();
    finished_round(&mut p);
    p.update(Action::Search(SearchEdit::Open));
    assert_eq!(p.mode(), Mode::Search);
    for c in "fail".chars() {
        p.update(Action::Search(SearchEdit::Edit(TextEdit::Insert(c))));
    }
    assert_eq!(names(&p), ["b", "d"]);
    p.update(Action::Search(SearchEdit::Accept));
    assert_eq!(p.mode(), Mode::Discovery);
    assert_eq!(names(&p), ["b", "d"], "the search stays after enter");
    p.update(Action::Search(SearchEdit::Cancel));
    assert_eq!(names(&p).len(), 5);
}

#[test]
fn tagging_and_aiming() {
    let mut p = panel();
    finished_round(&mut p);
    // Nothing tagged: enter aims at the filter.
    let Some(Action::Batch(actions)) = p.update(d(Msg::Enter)) else { panic!() };
    assert_eq!(actions[0], Action::ScopeChanged(Scope::filter("")));
    assert_eq!(actions[1], Action::FocusPanel(PanelId::Rpc));
    p.update(d(Msg::TagFailed));
    assert_eq!(p.tagged().iter().map(String::as_str).collect::<Vec<_>>(), ["b", "d"]);
    // space tags the row under the cursor and moves down.
    p.update(Action::Nav(Nav::Bottom));
    p.update(d(Msg::ToggleTag));
    assert!(p.tagged().contains("e"));
    p.update(d(Msg::ToggleTag));
    assert!(!p.tagged().contains("e"), "space again untags");
    let Some(Action::Batch(actions)) = p.update(d(Msg::Enter)) else { panic!() };
    assert_eq!(actions[0], Action::ScopeChanged(Scope { filter: String::new(), targets: Some(vec!["b".into(), "d".into()]) }));
    p.update(d(Msg::UntagAll));
    assert!(p.tagged().is_empty());
    p.update(d(Msg::TagNoReply));
    assert_eq!(p.tagged().len(), 1);
    // A new round clears the tags.
    started(&mut p);
    assert!(p.tagged().is_empty());
}

#[test]
fn untag_all_stops_aiming_at_the_tags() {
    let mut p = panel();
    finished_round(&mut p);
    assert_eq!(p.update(d(Msg::UntagAll)), None, "not aimed: nothing to clear");
    p.update(d(Msg::TagFailed));
    let Some(Action::Batch(actions)) = p.update(d(Msg::Enter)) else { panic!() };
    // The shell broadcasts the new scope back to every panel.
    p.update(actions[0].clone());
    let Some(Action::Batch(cleared)) = p.update(d(Msg::UntagAll)) else { panic!("U clears the aim") };
    assert_eq!(cleared[0], Action::ScopeChanged(Scope::filter("")));
    assert!(matches!(&cleared[1], Action::Notify(n) if n.text == "untagged: the next request goes to every node"), "{cleared:?}");
    p.update(cleared[0].clone());
    assert_eq!(p.update(d(Msg::UntagAll)), None, "cleared once");
}

#[test]
fn the_cursor_follows_its_node_through_a_resort() {
    let mut p = panel();
    finished_round(&mut p);
    p.update(Action::Nav(Nav::Down));
    assert_eq!(p.selected().unwrap().identity, "b");
    p.update(d(Msg::CycleSort));
    assert_eq!(p.selected().unwrap().identity, "b");
    p.update(Action::Nav(Nav::Down));
    assert_eq!(p.selected().unwrap().identity, "d");
    p.update(Action::Nav(Nav::Bottom));
    p.update(Action::Nav(Nav::Down));
    assert_eq!(p.selected().unwrap().identity, "c");
    p.update(Action::Nav(Nav::Top));
    p.update(Action::Nav(Nav::Up));
    assert_eq!(p.selected().unwrap().identity, "b");
}
