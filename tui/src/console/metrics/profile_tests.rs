//! Profiles in the Metrics view, through the shell without a terminal: each host or group gets
//! the profile its `match` picks, the view asks for those profiles' series and counts their
//! processes every few seconds, `p` switches the selected host's or group's profile, `P` and
//! `:profile` go back or set every host; and snapshots at 80x24 and 160x48 with profiles shown.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::tests::{T0, curve, feed, group_by_role, open_on, shape, subscribe_of, update};
use super::*;
use crate::config::ClientConfig;
use crate::console::app::App;
use crate::console::jobs::tests::{key, now, render, send, test_init};

const PROFILES: &str = r#"
[profiles.web]
graphs = ["load1", "net_rx_bytes_per_s", "procs:nginx"]
match = "role=web"

[profiles.db]
graphs = ["load1", "mem_used_pct"]
match = "role=db"

[profiles.base]
graphs = ["load1", "cpu_busy_pct"]
"#;

/// The shell with the three profiles, the Metrics view open on the four nodes; returns what
/// went to the network on opening.
fn opened() -> (App, Vec<NetCommand>) {
    let mut init = test_init(false);
    init.profiles = ClientConfig::parse(PROFILES, "config.toml").unwrap().profiles;
    open_on(App::new(init))
}

/// Which hosts the `match` of web and db select.
fn matching() -> Msg {
    let hosts = |h: &[&str]| h.iter().map(|s| s.to_string()).collect::<BTreeSet<String>>();
    Msg::Matching(Ok([("web".to_string(), hosts(&["web-01", "web-02"])), ("db".to_string(), hosts(&["db-01"]))].into()))
}

/// Opened, the profiles' hosts known, load samples fed.
fn matched() -> App {
    let (mut app, _) = opened();
    send(&mut app, Action::Metrics(matching()));
    feed(app)
}

fn count_asks(sent: &[NetCommand]) -> Vec<BTreeMap<String, Vec<String>>> {
    sent.iter()
        .filter_map(|c| match c {
            NetCommand::Metrics(Cmd::Count(wanted)) => Some(wanted.clone()),
            _ => None,
        })
        .collect()
}

fn shown(app: &App, host: &str) -> (Option<&'static str>, bool) {
    let view = app.inventory().metrics();
    let s = view.profile_of(host);
    let name = s.profile.map(|i| ["web", "db", "base"][i]);
    assert_eq!(name, s.profile.map(|i| view.profiles()[i].name.as_str()));
    (name, s.chosen)
}

fn notice(app: &App) -> Option<&str> {
    app.notice().map(|n| n.text.as_str())
}

fn at(secs: u64) -> Action {
    Action::Tick(now() + Duration::from_secs(secs))
}

#[test]
fn each_host_gets_the_profile_its_match_picks_and_the_view_asks_for_that_profiles_series() {
    let (mut app, sent) = opened();
    let matching_asks: Vec<Vec<&str>> = sent
        .iter()
        .filter_map(|c| match c {
            NetCommand::Metrics(Cmd::Matching(p)) => Some(p.iter().map(|p| p.name.as_str()).collect()),
            _ => None,
        })
        .collect();
    assert_eq!(matching_asks, [["web", "db"]], "the profiles with a match, once: {sent:?}");
    // Until the answer, every host gets the profile without a match.
    assert_eq!(subscribe_of(&sent).last().unwrap().series, ["load1", "cpu_busy_pct"]);

    let asked = subscribe_of(&send(&mut app, Action::Metrics(matching())));
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].series, ["load1", "net_rx_bytes_per_s:*", "mem_used_pct", "cpu_busy_pct"], "procs: graphs are not series");
    assert_eq!(
        (shown(&app, "web-01"), shown(&app, "db-01"), shown(&app, "cache-01")),
        ((Some("web"), false), (Some("db"), false), (Some("base"), false))
    );

    let mut app = feed(app);
    assert_eq!(
        shape(&app),
        [
            "<web: load1 net_rx_bytes_per_s procs:nginx>",
            "web-02",
            "web-01",
            "<db: load1 mem_used_pct>",
            "db-01",
            "<base: load1 cpu_busy_pct>",
            "cache-01"
        ]
    );
    assert!(render(&app, 80, 24).contains("Metrics: load1 · profile web (auto) · last 15m"), "{}", render(&app, 80, 24));

    // A node that joins is matched again.
    let sent = send(&mut app, Action::Nodes(["web-01", "web-02", "db-01", "cache-01", "web-03"].map(String::from).into()));
    assert!(sent.iter().any(|c| matches!(c, NetCommand::Metrics(Cmd::Matching(_)))), "{sent:?}");
}

#[test]
fn process_graphs_are_counted_every_few_seconds_while_shown_not_on_every_frame() {
    let mut app = matched();
    let asked = count_asks(&send(&mut app, at(0)));
    assert_eq!(asked, [BTreeMap::from([("nginx".to_string(), vec!["web-01".to_string(), "web-02".to_string()])])]);
    // Still out, then not due yet.
    assert!(count_asks(&send(&mut app, at(1))).is_empty());
    let counts = BTreeMap::from([("procs:nginx".to_string(), BTreeMap::from([("web-01".to_string(), 4), ("web-02".to_string(), 9)]))]);
    send(&mut app, Action::Metrics(Msg::Counts { time_ms: T0, result: Ok(counts) }));
    let view = app.inventory().metrics();
    assert_eq!(view.points("web-02", "procs:nginx"), [(T0, 9.0)]);
    assert_eq!(view.latest().iter().find(|h| h.identity == "web-01").unwrap().get("procs:nginx"), Some(4.0));
    assert!(count_asks(&send(&mut app, at(2))).is_empty(), "not due before {COUNT_EVERY:?}");
    assert_eq!(count_asks(&send(&mut app, at(5))).len(), 1);

    // A failed count says why; the next one is asked for all the same.
    send(&mut app, Action::Metrics(Msg::Counts { time_ms: T0 + 5000, result: Err("no hub".into()) }));
    assert!(render(&app, 80, 24).contains("cannot count processes: no hub"));
    assert_eq!(count_asks(&send(&mut app, at(10))).len(), 1);
    send(&mut app, Action::Metrics(Msg::Counts { time_ms: T0 + 10_000, result: Ok(BTreeMap::new()) }));

    // Off screen: no counting.
    send(&mut app, key('1'));
    assert!(count_asks(&send(&mut app, at(20))).is_empty());
}

#[test]
fn p_switches_the_selected_hosts_profile_and_capital_p_goes_back_to_the_matched_one() {
    let mut app = matched();
    assert_eq!(app.inventory().metrics().selected().as_deref(), Some("web-02"));
    let asked = subscribe_of(&send(&mut app, key('p')));
    assert_eq!(notice(&app), Some("profile db for web-02"));
    assert_eq!(shown(&app, "web-02"), (Some("db"), true));
    assert_eq!(shown(&app, "web-01"), (Some("web"), false), "only the selected host");
    assert!(asked.is_empty(), "db's series are asked for already: {asked:?}");
    assert!(render(&app, 80, 24).contains("Metrics: load1 · profile db · last 15m"));
    send(&mut app, key('p'));
    send(&mut app, key('p'));
    assert_eq!(shown(&app, "web-02"), (Some("web"), true), "round the config's order");

    send(&mut app, key('P'));
    assert_eq!(shown(&app, "web-02"), (Some("web"), false));
    assert_eq!(notice(&app), Some("profiles picked by their match"));

    // `:profile NAME` for every host; an unknown name says which there are.
    send(&mut app, Action::RunCommand("profile db".into()));
    assert!(["web-01", "web-02", "db-01", "cache-01"].iter().all(|h| shown(&app, h) == (Some("db"), true)));
    assert_eq!(subscribe_of(&send(&mut app, Action::RunCommand("profile base".into())))[0].series, ["load1", "cpu_busy_pct"]);
    send(&mut app, Action::RunCommand("profile nginx".into()));
    assert_eq!(notice(&app), Some("no metric profile \"nginx\" (profiles: web, db, base)"));
    assert_eq!(shown(&app, "db-01"), (Some("base"), true));
    send(&mut app, Action::RunCommand("profile".into()));
    assert_eq!(shown(&app, "db-01"), (Some("db"), false));
}

#[test]
fn grouped_each_group_gets_the_profile_most_of_its_hosts_get_and_p_switches_the_groups() {
    let mut app = matched();
    group_by_role(&mut app, &[("web-01", "web"), ("web-02", "web"), ("db-01", "db")]);
    assert_eq!(
        shape(&app),
        [
            "[web]",
            "<web: load1 net_rx_bytes_per_s procs:nginx>",
            "web-02",
            "web-01",
            "[db]",
            "<db: load1 mem_used_pct>",
            "db-01",
            "[(none)]",
            "<base: load1 cpu_busy_pct>",
            "cache-01"
        ]
    );
    send(&mut app, key('p'));
    assert_eq!(notice(&app), Some("profile db for role=web"));
    assert_eq!((shown(&app, "web-01"), shown(&app, "web-02")), ((Some("db"), true), (Some("db"), true)));
    assert_eq!(shown(&app, "db-01"), (Some("db"), false));
    // web's process count is no longer shown anywhere: nothing to count.
    assert!(count_asks(&send(&mut app, at(0))).is_empty());
}

#[test]
fn without_profiles_p_says_how_to_add_one() {
    let (mut app, _) = open_on(crate::console::jobs::tests::app_with(false));
    send(&mut app, key('p'));
    assert_eq!(notice(&app), Some("no metric profiles: add [profiles.NAME] to the config file"));
    assert!(app.inventory().metrics().rows().iter().all(|r| !matches!(r, Row::Profile { .. })));
}

#[test]
fn snapshots_with_profiles() {
    let mut app = matched();
    let rates: Vec<f64> = curve(2.0e6, 120);
    send(&mut app, Action::Metrics(Msg::Update(update("web-01", &[("net_rx_bytes_per_s:eth0", &rates)]))));
    send(&mut app, Action::Metrics(Msg::Update(update("web-02", &[("net_rx_bytes_per_s:eth0", &curve(5.0e6, 120))]))));
    send(&mut app, Action::Metrics(Msg::Update(update("db-01", &[("mem_used_pct", &curve(80.0, 120))]))));
    send(&mut app, Action::Metrics(Msg::Update(update("cache-01", &[("load1", &curve(0.4, 120)), ("cpu_busy_pct", &curve(30.0, 120))]))));
    for (i, n) in [4, 5, 5, 6, 8, 9].into_iter().enumerate() {
        let counts = BTreeMap::from([("procs:nginx".to_string(), BTreeMap::from([("web-01".to_string(), 4), ("web-02".to_string(), n)]))]);
        send(&mut app, Action::Metrics(Msg::Counts { time_ms: T0 - 25_000 + i as u64 * 5000, result: Ok(counts) }));
    }
    group_by_role(&mut app, &[("web-01", "web"), ("web-02", "web"), ("db-01", "db"), ("cache-01", "cache")]);
    send(&mut app, key('j'));
    insta::assert_snapshot!("metrics_profiles_80x24", render(&app, 80, 24));
    insta::assert_snapshot!("metrics_profiles_160x48", render(&app, 160, 48));
}
