//! The Metrics view through the shell, without a terminal: the subscription it holds while shown,
//! samples fed as the hub sends them, metric switching, grouping by a fact, `enter` to
//! Processes; and snapshots at 80x24, 160x48 and 40x10.

use std::collections::BTreeMap;

use fleet_protocol::MetricUpdate;
use serde_json::json;

use super::*;
use crate::console::app::App;
use crate::console::inventory::View;
use crate::console::jobs::tests::{app_with, key, key_code, render, send};
use crate::console::keys::Mode;
use crossterm::event::KeyCode;

/// 2026-05-01 12:00:00 UTC, as the nodes stamp samples.
pub(super) const T0: u64 = 1_777_636_800_000;
const NODES: [&str; 4] = ["web-01", "web-02", "db-01", "cache-01"];

/// `samples` of one node, one a second ending at `T0`, for `series` (one value per sample each).
pub(super) fn update(node: &str, series: &[(&str, &[f64])]) -> MetricUpdate {
    let n = series.first().map(|(_, v)| v.len()).unwrap_or(0) as u64;
    MetricUpdate {
        node: node.into(),
        times: (0..n).map(|i| T0 - (n - 1 - i) * 1000).collect(),
        series: series.iter().map(|(name, v)| (name.to_string(), v.iter().map(|x| Some(*x)).collect())).collect::<BTreeMap<_, _>>(),
    }
}

/// A load curve of `len` samples rising to `peak`.
pub(super) fn curve(peak: f64, len: usize) -> Vec<f64> {
    (0..len).map(|i| peak * (0.3 + 0.7 * ((i as f64 / 3.0).sin().abs()) * i as f64 / len as f64)).collect()
}

/// The shell on four nodes, with the Metrics view open; returns what went to the network.
fn opened() -> (App, Vec<NetCommand>) {
    open_on(app_with(false))
}

/// `app` on four nodes, with the Metrics view open; returns what went to the network.
pub(super) fn open_on(mut app: App) -> (App, Vec<NetCommand>) {
    send(&mut app, Action::Nodes(NODES.iter().map(|n| n.to_string()).collect()));
    send(&mut app, key('3'));
    // `]` past the Stats tab is the Metrics view.
    for _ in 0..3 {
        send(&mut app, key(']'));
    }
    let sent = send(&mut app, key(']'));
    (app, sent)
}

/// The app with samples: web-02 the busiest, cache-01 without samples yet.
fn fed() -> App {
    feed(opened().0)
}

/// `app` (open on the four nodes) with load samples: web-02 the busiest, cache-01 without
/// samples yet.
pub(super) fn feed(mut app: App) -> App {
    for (node, peak) in [("web-01", 0.8), ("web-02", 3.5), ("db-01", 1.2)] {
        send(&mut app, Action::Metrics(Msg::Update(update(node, &[("load1", &curve(peak, 120))]))));
    }
    app
}

/// `:group role`, and the nodes' roles as the facts round would answer (nodes left out did not
/// answer).
pub(super) fn group_by_role(app: &mut App, roles: &[(&str, &str)]) {
    send(app, Action::RunCommand("group role".into()));
    let values: HashMap<String, Value> = roles.iter().map(|(n, r)| (n.to_string(), json!(r))).collect();
    send(app, Action::Metrics(Msg::Facts { fact: "role".into(), result: Ok(values) }));
}

/// The host list's shape: `[group]`, `<profile: graphs>`, host.
pub(super) fn shape(app: &App) -> Vec<String> {
    app.inventory()
        .metrics()
        .rows()
        .iter()
        .map(|r| match r {
            Row::Group(g) => format!("[{}]", g.value),
            Row::Profile { name, graphs } => format!("<{}: {}>", name.as_deref().unwrap_or("none"), graphs.join(" ")),
            Row::Host(h) => h.identity.clone(),
        })
        .collect()
}

pub(super) fn subscribe_of(sent: &[NetCommand]) -> Vec<MetricSubscribe> {
    sent.iter()
        .filter_map(|c| match c {
            NetCommand::Metrics(Cmd::Subscribe(s)) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn opening_subscribes_to_the_hosts_in_scope_and_the_shown_series_and_leaving_unsubscribes() {
    let (mut app, sent) = opened();
    assert_eq!(app.inventory().view(), View::Metrics);
    assert_eq!(app.mode(), Mode::Metrics);
    let asked = subscribe_of(&sent);
    assert_eq!(asked.len(), 1, "{sent:?}");
    assert_eq!(asked[0].nodes, ["cache-01", "db-01", "web-01", "web-02"]);
    assert_eq!(asked[0].series, ["load1"]);
    assert!(asked[0].history && !asked[0].all_nodes);

    // Switching the metric asks for that metric's series only (with its history).
    let asked = subscribe_of(&send(&mut app, key('m')));
    assert_eq!(app.inventory().metrics().metric(), "cpu_busy_pct");
    assert_eq!(asked.iter().map(|a| a.series.clone()).collect::<Vec<_>>(), [["cpu_busy_pct"]]);
    for _ in 0..5 {
        send(&mut app, key('m'));
    }
    assert_eq!(app.inventory().metrics().metric(), "net_rx_bytes_per_s");
    assert_eq!(app.inventory().metrics().subscription().unwrap().series, ["net_rx_bytes_per_s:*"], "the parts the core sums");
    send(&mut app, key('M'));
    assert_eq!(app.inventory().metrics().subscription().unwrap().series, ["disk_used_pct:*"]);

    // Narrowing the scope narrows the subscription.
    let scope = Scope { filter: String::new(), targets: Some(vec!["web-01".into()]) };
    let asked = subscribe_of(&send(&mut app, Action::ScopeChanged(scope)));
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].nodes, ["web-01"]);

    // Another panel: an empty subscription. Back: subscribed again.
    let asked = subscribe_of(&send(&mut app, key('1')));
    assert_eq!(asked, [MetricSubscribe::default()]);
    assert_eq!(app.inventory().metrics().subscription(), None);
    assert_eq!(subscribe_of(&send(&mut app, key('3'))).len(), 1);
    // `]` on to the Inventory's Facts unsubscribes too; `m` comes straight back.
    assert_eq!(subscribe_of(&send(&mut app, key(']'))), [MetricSubscribe::default()]);
    assert_eq!(app.inventory().view(), View::Inventory);
    assert_eq!(app.mode(), Mode::Inventory);
    assert_eq!(subscribe_of(&send(&mut app, key('m'))).len(), 1);
    assert_eq!(app.inventory().view(), View::Metrics);
}

#[test]
fn samples_feed_the_view_ranked_worst_first_with_the_cores_derived_metrics() {
    let mut app = fed();
    let view = app.inventory().metrics();
    assert_eq!(shape(&app), ["web-02", "db-01", "web-01", "cache-01"], "worst first, no samples last; no groups, no profiles");
    assert_eq!(view.selected().as_deref(), Some("web-02"));
    assert_eq!(view.points("web-02", "load1").len(), 120);

    // A live sample appends; a repeated history merges instead of doubling.
    let mut live = update("web-01", &[("load1", &[9.0])]);
    live.times = vec![T0 + 1000];
    send(&mut app, Action::Metrics(Msg::Update(live)));
    send(&mut app, Action::Metrics(Msg::Update(update("web-01", &[("load1", &curve(0.8, 120))]))));
    let view = app.inventory().metrics();
    assert_eq!(view.points("web-01", "load1").len(), 121);
    assert_eq!(view.latest().iter().find(|h| h.identity == "web-01").unwrap().get("load1"), Some(9.0));

    // The fullest mount is the client core's figure, from the per-mount parts.
    let disks = update("db-01", &[("disk_used_pct:/", &[40.0]), ("disk_used_pct:/var", &[91.5])]);
    send(&mut app, Action::Metrics(Msg::Update(disks)));
    let db = app.inventory().metrics().latest().into_iter().find(|h| h.identity == "db-01").unwrap();
    assert_eq!(db.get("disk_used_max_pct"), Some(91.5));

    // The window zooms; the chart keeps only what is inside it.
    send(&mut app, key('z'));
    send(&mut app, key('z'));
    assert_eq!(app.inventory().metrics().window_secs(), 60);
    assert_eq!(app.inventory().metrics().points("web-02", "load1").len(), 60, "the last minute before the newest sample");
}

#[test]
fn group_by_a_fact_asks_the_facts_and_ranks_groups_by_their_worst_host() {
    let mut app = fed();
    let sent = send(&mut app, Action::RunCommand("group role".into()));
    let fact_asks: Vec<&NetCommand> = sent.iter().filter(|c| matches!(c, NetCommand::Metrics(Cmd::Facts { .. }))).collect();
    assert_eq!(
        fact_asks,
        [&NetCommand::Metrics(Cmd::Facts {
            nodes: ["cache-01", "db-01", "web-01", "web-02"].map(String::from).to_vec(),
            fact: "role".into()
        })]
    );
    let values: HashMap<String, Value> =
        [("web-01", "web"), ("web-02", "web"), ("db-01", "db")].iter().map(|(n, r)| (n.to_string(), json!(r))).collect();
    send(&mut app, Action::Metrics(Msg::Facts { fact: "role".into(), result: Ok(values) }));
    let rows = app.inventory().metrics().rows();
    let Row::Group(web) = &rows[0] else { panic!("{rows:?}") };
    assert_eq!(web.value, "web");
    assert_eq!(web.worst_host.as_deref(), Some("web-02"));
    let spread = &web.metrics["load1"];
    assert!(spread.min <= spread.avg && spread.avg <= spread.max && spread.max > 3.0, "{spread:?}");
    assert_eq!(shape(&app), ["[web]", "web-02", "web-01", "[db]", "db-01", "[(none)]", "cache-01"], "cache-01 did not answer");
    // A late answer for another fact is ignored; `:group` alone ungroups.
    send(&mut app, Action::Metrics(Msg::Facts { fact: "country".into(), result: Err("x".into()) }));
    assert_eq!(app.inventory().metrics().group_by(), Some("role"));
    send(&mut app, Action::RunCommand("group".into()));
    assert_eq!(app.inventory().metrics().group_by(), None);
    assert!(send(&mut app, Action::RunCommand("group no way".into())).is_empty());
}

#[test]
fn enter_opens_processes_on_the_selected_host() {
    let mut app = fed();
    send(&mut app, key('j'));
    assert_eq!(app.inventory().metrics().selected().as_deref(), Some("db-01"));
    send(&mut app, key_code(KeyCode::Enter));
    assert_eq!(app.focus(), PanelId::Processes);
    assert_eq!(app.notice().map(|n| n.text.as_str()), Some("processes on db-01"));
}

#[test]
fn snapshots() {
    let mut app = fed();
    insta::assert_snapshot!("metrics_80x24", render(&app, 80, 24));
    insta::assert_snapshot!("metrics_160x48", render(&app, 160, 48));
    insta::assert_snapshot!("metrics_40x10", render(&app, 40, 10));
    group_by_role(&mut app, &[("web-01", "web"), ("web-02", "web"), ("db-01", "db"), ("cache-01", "cache")]);
    send(&mut app, key('j'));
    insta::assert_snapshot!("metrics_grouped_80x24", render(&app, 80, 24));
    insta::assert_snapshot!("metrics_grouped_160x48", render(&app, 160, 48));
    insta::assert_snapshot!("metrics_grouped_40x10", render(&app, 40, 10));
}
