//! The Inventory panel without a terminal: the fact tree, fetching what is shown, folding.

use super::*;
use crate::console::action::{Scope, SearchEdit, TextEdit};
use serde_json::json;

fn panel() -> Inventory {
    Inventory::new(&PanelContext { theme: Theme::mono(), keys: Default::default(), read_only: false, scope: Scope::default() })
}

fn facts() -> Value {
    json!({ "country": "uk", "os": { "family": "Debian", "release": { "major": "12" } }, "role": "web" })
}

#[test]
fn the_fact_tree_folds_and_searches() {
    let none = Search::default();
    let lines = fact_lines(&facts(), &HashSet::new(), &none);
    let paths: Vec<&str> = lines.iter().map(|l| l.path.as_str()).collect();
    assert_eq!(paths, ["country", "os", "os.family", "os.release", "os.release.major", "role"]);
    assert_eq!(lines[4].depth, 2);
    let folded: HashSet<String> = ["os".to_string()].into();
    let lines = fact_lines(&facts(), &folded, &none);
    assert_eq!(lines.iter().map(|l| l.path.as_str()).collect::<Vec<_>>(), ["country", "os", "role"]);
    assert!(lines[1].folded);
    let mut search = Search::default();
    search.apply(SearchEdit::Open);
    for c in "major".chars() {
        search.apply(SearchEdit::Edit(TextEdit::Insert(c)));
    }
    let lines = fact_lines(&facts(), &folded, &search);
    assert_eq!(
        lines.iter().map(|l| l.path.as_str()).collect::<Vec<_>>(),
        ["os", "os.release", "os.release.major"],
        "a search opens folded branches"
    );
    search.apply(SearchEdit::Cancel);
    search.apply(SearchEdit::Open);
    search.apply(SearchEdit::Edit(TextEdit::Insert('u')));
    search.apply(SearchEdit::Edit(TextEdit::Insert('k')));
    let lines = fact_lines(&facts(), &HashSet::new(), &search);
    assert_eq!(lines.iter().map(|l| l.path.as_str()).collect::<Vec<_>>(), ["country"], "values match too");
}

#[test]
fn showing_the_panel_fetches_the_selected_node_once() {
    let mut p = panel();
    assert_eq!(p.update(Action::Nodes(vec!["web-02".into(), "web-01".into()])), None, "not on screen yet");
    let fetch = p.update(Action::FocusChanged(PanelId::Inventory));
    assert_eq!(fetch, Some(NetCommand::FetchNode { node: "web-01".into() }.into()));
    assert_eq!(p.update(Action::FocusChanged(PanelId::Inventory)), None, "already asked");
    p.update(Action::Inventory(Msg::Fetched {
        node: "web-01".into(),
        part: Part::Inventory,
        result: Ok(json!({ "facts": facts(), "classes": ["base"] })),
    }));
    assert_eq!(p.facts().len(), 6);
    // Moving to another node fetches it; a registration change of the shown node fetches again.
    assert_eq!(p.update(Action::Nav(Nav::Down)), Some(NetCommand::FetchNode { node: "web-02".into() }.into()));
    let changed = p.update(Action::NodeEvent(Event::NodeChanged { identity: "web-02".into() }));
    assert_eq!(changed, None, "still loading");
    p.update(Action::Inventory(Msg::Fetched { node: "web-02".into(), part: Part::Inventory, result: Err("no reply".into()) }));
    let changed = p.update(Action::NodeEvent(Event::NodeChanged { identity: "web-02".into() }));
    assert_eq!(changed, Some(NetCommand::FetchNode { node: "web-02".into() }.into()));
    // A change of a node not shown drops what was cached for it.
    p.update(Action::NodeEvent(Event::NodeChanged { identity: "web-01".into() }));
    assert!(p.info("web-01").is_none());
    p.update(Action::FocusChanged(PanelId::Log));
    assert_eq!(p.update(Action::Nav(Nav::Up)), None, "nothing is fetched off screen");
}

#[test]
fn fold_works_on_the_branch_under_the_cursor() {
    let mut p = panel();
    p.update(Action::Nodes(vec!["a".into()]));
    p.update(Action::Inventory(Msg::Fetched { node: "a".into(), part: Part::Inventory, result: Ok(json!({ "facts": facts() })) }));
    p.update(Action::Inventory(Msg::Fold));
    assert_eq!(p.focus, Focus::Details, "enter on the list goes to the details");
    p.update(Action::Nav(Nav::Down));
    p.update(Action::Inventory(Msg::Fold));
    assert_eq!(p.facts().len(), 3);
    p.update(Action::Inventory(Msg::Fold));
    assert_eq!(p.facts().len(), 6);
}

#[test]
fn time_formats() {
    assert_eq!(format_uptime(59), "00:00:59");
    assert_eq!(format_uptime(3 * 86_400 + 4 * 3600 + 5 * 60 + 6), "3d 04:05:06");
    assert_eq!(format_utc(0), "1970-01-01 00:00:00 UTC");
    assert_eq!(format_utc(1_700_000_000), "2023-11-14 22:13:20 UTC");
}
