//! The Xen panel without a terminal: the state machine driven by keys and messages as the shell
//! would (find, migrate, plan, read-only, refresh timing), and snapshots of what it draws at 80x24
//! and 160x48 with demo-like data.

use std::time::{Duration, UNIX_EPOCH};

use crossterm::event::{KeyCode, KeyEventKind, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use super::*;
use crate::console::action::{Confirm, Scope};
use crate::console::keys::Key;
use fleet_client::xen::Dom0;
use fleet_protocol::DomainRow;

/// 2023-11-14 22:13:20 UTC.
const T0: u64 = 1_700_000_000_000;
const SAMPLE_EVERY: u64 = 30_000;
const SAMPLES: u64 = 15;

fn domain(name: &str, id: u32, mem: u64, vcpus: u32, state: &str, cpu: f64) -> DomainRow {
    // The flags read from xl's six state characters, as the agent's parser reads them.
    let flag = |i: usize, c: char| state.chars().nth(i) == Some(c);
    let reason = match state.chars().nth(4) {
        Some('r') => "reboot",
        Some('s') => "suspend",
        Some('c') => "crash",
        Some('w') => "watchdog",
        Some('S') => "soft_reset",
        _ => "",
    };
    DomainRow {
        name: name.into(),
        id,
        mem,
        vcpus,
        state: state.into(),
        running: flag(0, 'r'),
        blocked: flag(1, 'b'),
        paused: flag(2, 'p'),
        shutdown: flag(3, 's'),
        shutdown_reason: reason.into(),
        dying: flag(5, 'd'),
        cpu_time: cpu,
    }
}

fn dom0(name: &str, load: f64, total: u64, free: u64, domus: &[&PlacedDomu]) -> Dom0 {
    Dom0 {
        name: name.into(),
        load: [load, load * 0.9, load * 0.8],
        nr_cpus: 16,
        total_memory: total,
        free_memory: free,
        domu_count: domus.len(),
        domu_memory: domus.iter().map(|p| p.domu.mem).sum(),
        dom0: Some(domain("Domain-0", 0, 4096, 16, "r-----", 5000.0)),
        simulated: true,
        error: None,
        node: Default::default(),
    }
}

const LONG: &str = "billing-cluster-node-0001-with-a-long-name";

/// Sample `i` of the demo: xen-01 climbs over the threshold at sample 3 and stays there, test3
/// eating most of its CPU; xen-02 idles; xen-03 is busy enough not to be a candidate.
fn demo_view(i: u64) -> XenView {
    let f = i as f64;
    let placed = |dom0: &str, d: DomainRow| PlacedDomu { dom0: dom0.into(), domu: d };
    let domus = vec![
        placed("xen-01", domain("web1", 1, 1024, 2, "-b----", 50.0 + f)),
        placed("xen-01", domain("test3", 2, 2048, 4, "r-----", 100.0 + 20.0 * f)),
        placed("xen-01", domain("build7", 3, 4096, 2, "--p---", 300.0)),
        placed("xen-01", domain(LONG, 4, 512, 1, "-b----", 10.0 + 0.5 * f)),
        placed("xen-02", domain("db1", 1, 8192, 4, "-b----", 900.0 + 0.2 * f)),
        placed("xen-02", domain("crashy", 2, 512, 1, "---sc-", 12.0)),
        placed("xen-03", domain("cache1", 1, 2048, 2, "r-----", 400.0 + 2.0 * f)),
        placed("xen-03", domain("old-vm", 2, 1024, 1, "-----d", 77.0)),
    ];
    let on = |n: &str| domus.iter().filter(|p| p.dom0 == n).collect::<Vec<_>>();
    let load1 = if i < 3 { 0.4 + 0.1 * f } else { 1.2 + 0.05 * (f - 3.0) };
    let dom0s = vec![
        dom0("xen-01", load1, 65536, 20480, &on("xen-01")),
        dom0("xen-02", 0.16 + 0.02 * (i % 3) as f64, 65536, 49152, &on("xen-02")),
        dom0("xen-03", 0.62 + 0.03 * (i % 2) as f64, 32768, 8192, &on("xen-03")),
    ];
    XenView { dom0s, domus, no_reply: Vec::new() }
}

/// The defaults, as a policy file that pins test3: the balancer moves the next hungriest domU.
fn file_policy() -> (BalancerPolicy, PolicySource) {
    (BalancerPolicy { pinned: vec!["test3".into()], ..BalancerPolicy::default() }, PolicySource::File(PathBuf::from("balancer.toml")))
}

fn panel_with(read_only: bool, policy: (BalancerPolicy, PolicySource)) -> XenPanel {
    let mut p = XenPanel::with_policy(Theme::default_theme(), Arc::new(Keymap::defaults()), read_only, policy.0, policy.1);
    p.update(Action::Tick(at(T0)));
    p
}

fn at(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

/// A panel that has seen the whole demo trace: 15 samples, 30 s apart.
fn demo_panel(read_only: bool) -> XenPanel {
    let mut p = panel_with(read_only, file_policy());
    p.update(Action::FocusChanged(PanelId::Xen));
    for i in 0..SAMPLES {
        let now = T0 + i * SAMPLE_EVERY;
        p.update(Action::Tick(at(now)));
        p.apply(Msg::Refreshed { at_ms: now, result: Ok(Box::new(demo_view(i))) });
    }
    p.update(Action::Tick(at(T0 + (SAMPLES - 1) * SAMPLE_EVERY + 1000)));
    p
}

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new_with_kind(code, KeyModifiers::NONE, KeyEventKind::Press)
}

fn ch(c: char) -> KeyEvent {
    key(KeyCode::Char(c))
}

/// What left the panel: for the network, for the shell's confirmation popup, for the footer.
#[derive(Debug, Default)]
struct Out {
    net: Vec<Cmd>,
    confirm: Vec<Confirm>,
    notices: Vec<Notice>,
    /// What went to the Log panel.
    logged: Vec<crate::console::record::RequestRecord>,
}

/// Applies `action` as the shell does: the panel's own actions go back to it, batches are opened,
/// and whatever is for the network or the shell is collected.
fn run(p: &mut XenPanel, action: Action) -> Out {
    let mut out = Out::default();
    let mut queue = VecDeque::from([action]);
    while let Some(a) = queue.pop_front() {
        match a {
            Action::Net(cmd) => match *cmd {
                NetCommand::Xen(c) => out.net.push(c),
                other => panic!("not a xen command: {other:?}"),
            },
            Action::Confirm(c) => out.confirm.push(*c),
            Action::Notify(n) => out.notices.push(n),
            Action::Logged(r) => out.logged.push(*r),
            Action::Batch(all) => queue.extend(all),
            other => queue.extend(p.update(other)),
        }
    }
    out
}

/// Presses a key: the panel turns it into an action, which is then applied.
fn press(p: &mut XenPanel, k: KeyEvent) -> Out {
    match p.on_key(k) {
        Some(a) => run(p, a),
        None => Out::default(),
    }
}

fn type_text(p: &mut XenPanel, text: &str) {
    for c in text.chars() {
        press(p, ch(c));
    }
}

fn selected(p: &XenPanel) -> (String, String) {
    let d = p.selected_dom0().map(|d| d.name.clone()).unwrap_or_default();
    let u = p.selected_domu().map(|u| u.domu.name.clone()).unwrap_or_default();
    (d, u)
}

fn sel(d: &str, u: &str) -> (String, String) {
    (d.to_string(), u.to_string())
}

// -------------------------------------------------------------------------------------------------
// State machine

#[test]
fn the_key_table_binds_no_key_twice_and_is_the_one_in_force() {
    let table = key_table();
    let mut keys: Vec<Key> = table.iter().flat_map(|b| b.keys.clone()).collect();
    let n = keys.len();
    keys.sort_by_key(|k| format!("{k}"));
    keys.dedup();
    assert_eq!(keys.len(), n, "a key is bound twice in the Xen table");
    assert_eq!(Keymap::defaults().table(Mode::Xen), table.as_slice());
    Keymap::defaults().validate().unwrap();
}

#[test]
fn refreshes_while_in_front_every_five_seconds_without_piling_up() {
    let mut p = panel_with(false, file_policy());
    assert!(run(&mut p, Action::Tick(at(T0 + 10_000))).net.is_empty(), "not in front: no refresh");
    let out = run(&mut p, Action::FocusChanged(PanelId::Xen));
    assert_eq!(out.net, [Cmd::Refresh { scope: Scope::default() }]);
    assert!(run(&mut p, Action::Tick(at(T0 + 16_000))).net.is_empty(), "one in flight");
    p.apply(Msg::Refreshed { at_ms: T0 + 16_100, result: Ok(Box::new(demo_view(0))) });
    assert!(run(&mut p, Action::Tick(at(T0 + 14_000))).net.is_empty(), "less than 5 s since the last one started");
    assert_eq!(run(&mut p, Action::Tick(at(T0 + 16_500))).net.len(), 1);
    // An answer that never comes is given up after a minute.
    assert!(run(&mut p, Action::Tick(at(T0 + 60_000))).net.is_empty());
    assert_eq!(run(&mut p, Action::Tick(at(T0 + 76_500))).net.len(), 1);
    // `r` while one is in flight asks again right after it answers.
    assert!(press(&mut p, ch('r')).net.is_empty());
    let out = run(&mut p, Action::Xen(Msg::Refreshed { at_ms: T0 + 77_000, result: Err("no hub".into()) }));
    assert_eq!(out.net.len(), 1);
    p.apply(Msg::Refreshed { at_ms: T0 + 77_100, result: Ok(Box::new(demo_view(1))) });
    // Another scope: its dom0s are asked at once.
    let scope = Scope { filter: "dc=nyc1".into(), targets: None };
    let out = run(&mut p, Action::ScopeChanged(scope.clone()));
    assert_eq!(out.net, [Cmd::Refresh { scope }]);
    assert!(run(&mut p, Action::FocusChanged(PanelId::Discovery)).net.is_empty());
    assert!(run(&mut p, Action::Tick(at(T0 + 200_000))).net.is_empty(), "not in front any more");
}

#[test]
fn refreshes_keep_a_load_trend_and_balancer_samples_per_dom0() {
    let p = demo_panel(false);
    assert_eq!(p.trends["xen-01"].len(), SAMPLES as usize);
    assert_eq!(p.obs.dom0s["xen-02"].len(), SAMPLES as usize);
    assert_eq!(selected(&p), sel("xen-01", "web1"), "the first dom0 and its first domU");
    assert_eq!(p.selected_dom0().unwrap().domu_count, 4);
}

#[test]
fn find_jumps_to_the_dom0_of_the_domu_and_esc_goes_back() {
    let mut p = demo_panel(false);
    press(&mut p, ch('/'));
    assert!(p.finding());
    assert_eq!(p.mode(), Mode::Search);
    type_text(&mut p, "cra");
    assert_eq!(selected(&p), sel("xen-02", "crashy"), "jumps while typing");
    assert_eq!(p.pane(), Pane::Domus);
    press(&mut p, key(KeyCode::Esc));
    assert!(!p.finding());
    assert_eq!((selected(&p), p.pane()), (sel("xen-01", "web1"), Pane::Dom0s), "esc puts the cursor back");

    // Typing `q` or `m` on the find line types; enter keeps the jump.
    press(&mut p, ch('/'));
    type_text(&mut p, "old-vm");
    assert!(p.finding());
    assert!(press(&mut p, key(KeyCode::Enter)).net.is_empty(), "found locally: nothing asked");
    assert_eq!(selected(&p), sel("xen-03", "old-vm"));
    assert_eq!(p.mode(), Mode::Xen);

    // A prefix beats a substring; case does not matter.
    press(&mut p, ch('/'));
    type_text(&mut p, "DB");
    press(&mut p, key(KeyCode::Enter));
    assert_eq!(selected(&p), sel("xen-02", "db1"));
}

#[test]
fn find_of_an_unknown_domu_asks_every_dom0_and_jumps_after_the_next_refresh() {
    let mut p = demo_panel(false);
    press(&mut p, ch('/'));
    type_text(&mut p, "web9");
    let out = press(&mut p, key(KeyCode::Enter));
    assert_eq!(out.net, [Cmd::Find { scope: Scope::default(), name: "web9".into() }]);

    // It appeared on xen-03 since the last picture: refresh, then jump.
    let out = run(&mut p, Action::Xen(Msg::Found { name: "web9".into(), result: Ok(vec!["xen-03".into()]) }));
    assert_eq!(out.net, [Cmd::Refresh { scope: Scope::default() }]);
    assert_eq!(out.notices[0].text, "web9 runs on xen-03");
    let mut view = demo_view(SAMPLES);
    view.domus.push(PlacedDomu { dom0: "xen-03".into(), domu: domain("web9", 7, 1024, 1, "-b----", 1.0) });
    p.apply(Msg::Refreshed { at_ms: T0 + 500_000, result: Ok(Box::new(view)) });
    assert_eq!(selected(&p), sel("xen-03", "web9"));

    let out = run(&mut p, Action::Xen(Msg::Found { name: "nope".into(), result: Ok(vec![]) }));
    assert!(out.notices[0].error && out.notices[0].text == "nope runs on none of the dom0s", "{:?}", out.notices);
}

#[test]
fn migrate_asks_where_then_confirms_exactly_what_moves_where() {
    let mut p = demo_panel(false);
    press(&mut p, ch('l'));
    press(&mut p, ch('j'));
    assert_eq!(selected(&p), sel("xen-01", "test3"));
    let out = press(&mut p, ch('m'));
    assert!(out.net.is_empty() && out.confirm.is_empty());
    assert!(p.popup_open());
    // The popup has its own key table, named in the footer; j moves among the destinations
    // (the other dom0s), and a key it does not bind is left to the global table (panel digits,
    // help), never taken silently.
    assert_eq!((p.mode(), p.mode().label()), (Mode::XenDestinations, "DESTINATION"));
    press(&mut p, ch('j'));
    assert!(p.on_key(ch('4')).is_none(), "a global key is not trapped by the popup");
    assert!(p.popup_open());
    let out = press(&mut p, key(KeyCode::Enter));
    assert!(!p.popup_open());
    assert!(out.net.is_empty(), "nothing moves before the confirmation");
    let [confirm] = out.confirm.as_slice() else { panic!("one confirmation: {out:?}") };
    assert_eq!(confirm.title, "Migrate test3 to xen-03?");
    assert_eq!(
        confirm.lines,
        [
            "Live-migrate domU test3 (2048 MiB, 4 vCPU(s), state r-----, 380.0 s of CPU)",
            "  from  xen-01  (load 1.75, 4 of 10 domUs, 20.0 GiB free)",
            "  to    xen-03  (load 0.62, 2 of 10 domUs, 8192 MiB free)",
            "xl migrate runs on xen-01; it reaches xen-03 through xen-01's xen_host_map, else by name.",
            "Note: the balancer policy pins test3; the balancer itself never moves it.",
        ]
    );

    // The shell applies `yes` when the admin presses y.
    let out = run(&mut p, confirm.yes.clone());
    assert_eq!(
        out.net,
        [Cmd::Migrate {
            moves: vec![Migration { domu: "test3".into(), from: "xen-01".into(), to: "xen-03".into(), address: String::new() }],
        }]
    );
    assert_eq!(p.history().len(), 1);
    assert_eq!(p.history()[0].outcome, MoveOutcome::Running);
    assert_eq!((p.history()[0].at_ms, p.history()[0].by), (T0 + (SAMPLES - 1) * SAMPLE_EVERY + 1000, MovedBy::Admin));
    assert!(press(&mut p, ch('m')).notices[0].text.contains("test3 is already migrating to xen-03"));

    // It ends: the history says so, the cursor follows the domU, and the dom0s are asked again.
    let done = MigrationResult {
        domain: "test3".into(),
        from: "xen-01".into(),
        to: "xen-03".into(),
        success: true,
        message: "migration successful".into(),
        elapsed_s: 0.3,
    };
    let out = run(&mut p, Action::Xen(Msg::Migrated(Box::new(done))));
    assert_eq!(p.history()[0].outcome, MoveOutcome::Done { elapsed_s: 0.3 });
    assert_eq!(out.notices[0].text, "test3 migrated from xen-01 to xen-03 in 0.3 s");
    assert_eq!(out.net, [Cmd::Refresh { scope: Scope::default() }]);
    // The Log keeps it.
    let [logged] = &out.logged[..] else { panic!("{:?}", out.logged) };
    assert_eq!(
        (logged.what(), logged.ok_count(), logged.replies[0].message.as_str()),
        ("xen#migrate".into(), 1, "test3 migrated to xen-03")
    );
    let mut view = demo_view(SAMPLES);
    view.domus.iter_mut().filter(|d| d.domu.name == "test3").for_each(|d| d.dom0 = "xen-03".into());
    p.apply(Msg::Refreshed { at_ms: T0 + 600_000, result: Ok(Box::new(view)) });
    assert_eq!(selected(&p), sel("xen-03", "test3"));
    // The balancer sees it: the cooldown keeps test3 where it is.
    assert!(p.obs.migrations.iter().any(|m| m.domu == "test3" && m.to == "xen-03"));
}

#[test]
fn esc_cancels_the_destination_and_nothing_moves() {
    let mut p = demo_panel(false);
    press(&mut p, ch('m'));
    assert!(p.popup_open());
    let out = press(&mut p, key(KeyCode::Esc));
    assert!(!p.popup_open());
    assert!(out.net.is_empty() && out.confirm.is_empty());
    assert!(p.history().is_empty());
    // With nothing open, esc is the shell's (back to the previous panel).
    assert_eq!(p.on_key(key(KeyCode::Esc)), None);
    // q closes the popup rather than quitting; ctrl-c still quits.
    press(&mut p, ch('m'));
    press(&mut p, ch('q'));
    assert!(!p.popup_open());
    press(&mut p, ch('m'));
    assert_eq!(p.on_key(KeyEvent::new_with_kind(KeyCode::Char('c'), KeyModifiers::CONTROL, KeyEventKind::Press)), None);
}

#[test]
fn a_failed_migration_is_in_the_history_with_xls_message() {
    let mut p = demo_panel(false);
    p.apply(Msg::MigrateConfirmed { domu: "web1".into(), from: "xen-01".into(), to: "xen-02".into() });
    let failed = MigrationResult {
        domain: "web1".into(),
        from: "xen-01".into(),
        to: "xen-02".into(),
        success: false,
        message: "Aborted: xl migrate web1 xen-02 failed (exit status: 1) after 0.1 s:\nmigration target: Ready to receive domain.\nlibxl: error: domain not found".into(),
        elapsed_s: 0.1,
    };
    let out = run(&mut p, Action::Xen(Msg::Migrated(Box::new(failed))));
    assert!(out.notices[0].error);
    assert_eq!(out.notices[0].text, "web1: migration from xen-01 to xen-02 FAILED: libxl: error: domain not found");
    assert!(matches!(&p.history()[0].outcome, MoveOutcome::Failed(m) if m.contains("domain not found")));
    assert_eq!(selected(&p), sel("xen-01", "web1"), "the cursor stays");
}

#[test]
fn read_only_disables_migrate_and_apply() {
    let mut p = demo_panel(true);
    let out = press(&mut p, ch('m'));
    assert!(!p.popup_open());
    assert_eq!(out.notices[0].text, "read-only: migrating is disabled");
    let out = press(&mut p, ch('a'));
    assert!(out.confirm.is_empty() && out.notices[0].error);
    // Not even a confirmation that slipped through moves anything.
    let out = run(&mut p, Action::Xen(Msg::MigrateConfirmed { domu: "web1".into(), from: "xen-01".into(), to: "xen-02".into() }));
    assert!(out.net.is_empty() && out.notices[0].error);
    // Looking is fine.
    press(&mut p, ch('b'));
    assert!(p.popup_open());
    assert_eq!((p.mode(), p.mode().label()), (Mode::XenPlan, "BALANCER PLAN"));
}

#[test]
fn the_plan_has_its_reasons_and_apply_confirms_then_runs_exactly_it() {
    let mut p = demo_panel(false);
    let plan = p.plan();
    // test3 ate the most but is pinned: the next hungriest goes, to the idlest dom0 with room.
    assert_eq!(fleet_client::xen::moves_of(&plan), [("web1".to_string(), "xen-01".to_string(), "xen-02".to_string())]);
    assert_eq!(plan.migrations[0].reason, "xen-01 over 1.0 for 5.5 min; web1 ate 11 s of 5.5 min; xen-02 has 2 of 10 VMs, load 0.2");
    let rejected: Vec<String> = plan.rejected.iter().map(ToString::to_string).collect();
    assert_eq!(rejected, ["domU test3: on xen-01: pinned by the policy"]);

    press(&mut p, ch('b'));
    assert!(p.popup_open());
    let out = press(&mut p, ch('a'));
    let [confirm] = out.confirm.as_slice() else { panic!("{out:?}") };
    assert_eq!(
        confirm.lines,
        [
            "The balancer's plan: 1 live migration(s), one after the other.",
            "1. web1: xen-01 -> xen-02",
            "   xen-01 over 1.0 for 5.5 min; web1 ate 11 s of 5.5 min; xen-02 has 2 of 10 VMs, load 0.2",
        ]
    );
    let out = run(&mut p, confirm.yes.clone());
    assert!(!p.popup_open());
    assert_eq!(
        out.net,
        [Cmd::Migrate {
            moves: vec![Migration { domu: "web1".into(), from: "xen-01".into(), to: "xen-02".into(), address: String::new() }],
        }]
    );
    assert_eq!(p.history()[0].by, MovedBy::Balancer);
    // Straight after, the cooldowns hold: no second plan for the same hosts.
    assert!(p.plan().migrations.is_empty());
}

#[test]
fn the_policys_host_mapping_is_the_migration_address() {
    let mut policy = BalancerPolicy::default();
    policy.host_mapping.insert("xen-02".into(), "10.0.0.2".into());
    let mut p = panel_with(false, (policy, PolicySource::File("balancer.toml".into())));
    p.update(Action::FocusChanged(PanelId::Xen));
    for i in 0..SAMPLES {
        p.update(Action::Tick(at(T0 + i * SAMPLE_EVERY)));
        p.apply(Msg::Refreshed { at_ms: T0 + i * SAMPLE_EVERY, result: Ok(Box::new(demo_view(i))) });
    }
    let out = press(&mut p, ch('a'));
    assert_eq!(out.confirm[0].lines[1], "1. test3: xen-01 -> xen-02 via 10.0.0.2");
    let out = run(&mut p, out.confirm[0].yes.clone());
    let [Cmd::Migrate { moves, .. }] = out.net.as_slice() else { panic!("{out:?}") };
    assert_eq!(moves[0].address, "10.0.0.2");
}

#[test]
fn apply_without_a_plan_says_why() {
    let mut p = panel_with(false, (BalancerPolicy::default(), PolicySource::Default));
    p.update(Action::FocusChanged(PanelId::Xen));
    p.apply(Msg::Refreshed { at_ms: T0, result: Ok(Box::new(demo_view(0))) });
    let out = press(&mut p, ch('a'));
    assert!(out.confirm.is_empty());
    assert_eq!(out.notices[0].text, "the balancer plans no migration");
    assert_eq!(p.max_label(), None, "no policy file: no VM limit shown");
    assert_eq!(p.of_max(4), "4");
}

#[test]
fn simulated_dom0s_and_the_constructor_note_both_say_so() {
    let p = demo_panel(false);
    assert_eq!(p.simulated_label().as_deref(), Some("simulated hypervisor"));
    let mut real = panel_with(false, file_policy());
    let mut view = demo_view(0);
    view.dom0s.iter_mut().for_each(|d| d.simulated = false);
    real.apply(Msg::Refreshed { at_ms: T0, result: Ok(Box::new(view)) });
    assert_eq!(real.simulated_label(), None);
    let noted = real.with_simulated_note(Some("simulated hypervisor (demo)".into()));
    assert_eq!(noted.simulated_label().as_deref(), Some("simulated hypervisor (demo)"));
}

#[test]
fn the_panel_follows_the_shells_context() {
    let ctx = PanelContext { theme: Theme::mono(), keys: Arc::new(Keymap::defaults()), read_only: true, scope: Scope::default() };
    let p = XenPanel::new(&ctx);
    assert!(p.read_only);
    assert_eq!(p.theme, Theme::mono());
}

// -------------------------------------------------------------------------------------------------
// Snapshots

fn render(p: &XenPanel, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|f| p.draw(f, f.area())).unwrap();
    terminal.backend().to_string()
}

/// The demo with two migrations in its history (an hour before the trace, so no cooldown holds).
fn demo_with_history() -> XenPanel {
    let mut p = panel_with(false, file_policy());
    p.update(Action::Tick(at(T0 - 3_600_000)));
    p.apply(Msg::MigrateConfirmed { domu: "web9".into(), from: "xen-02".into(), to: "xen-01".into() });
    p.apply(Msg::Migrated(Box::new(MigrationResult {
        domain: "web9".into(),
        from: "xen-02".into(),
        to: "xen-01".into(),
        success: true,
        message: "migration successful".into(),
        elapsed_s: 0.2,
    })));
    p.update(Action::Tick(at(T0 - 3_000_000)));
    p.apply(Msg::MigrateConfirmed { domu: "db2".into(), from: "xen-03".into(), to: "xen-02".into() });
    p.apply(Msg::Migrated(Box::new(MigrationResult {
        domain: "db2".into(),
        from: "xen-03".into(),
        to: "xen-02".into(),
        success: false,
        message: "Aborted: xl migrate db2 xen-02 failed (exit status: 1):\nlibxl: error: not enough free memory on xen-02".into(),
        elapsed_s: 1.5,
    })));
    p.update(Action::FocusChanged(PanelId::Xen));
    for i in 0..SAMPLES {
        let now = T0 + i * SAMPLE_EVERY;
        p.update(Action::Tick(at(now)));
        p.apply(Msg::Refreshed { at_ms: now, result: Ok(Box::new(demo_view(i))) });
    }
    p.update(Action::Tick(at(T0 + (SAMPLES - 1) * SAMPLE_EVERY + 1000)));
    press(&mut p, ch('l'));
    press(&mut p, ch('j'));
    p
}

#[test]
fn snapshot_panel_80x24() {
    insta::assert_snapshot!(render(&demo_with_history(), 80, 24));
}

#[test]
fn snapshot_panel_160x48() {
    insta::assert_snapshot!(render(&demo_with_history(), 160, 48));
}

#[test]
fn snapshot_plan_80x24() {
    let mut p = demo_with_history();
    press(&mut p, ch('b'));
    insta::assert_snapshot!(render(&p, 80, 24));
}

#[test]
fn snapshot_plan_160x48() {
    let mut p = demo_with_history();
    press(&mut p, ch('b'));
    insta::assert_snapshot!(render(&p, 160, 48));
}

#[test]
fn snapshot_destinations_80x24() {
    let mut p = demo_with_history();
    press(&mut p, ch('m'));
    insta::assert_snapshot!(render(&p, 80, 24));
}

#[test]
fn snapshot_finding_and_migrating_80x24() {
    let mut p = demo_with_history();
    p.apply(Msg::MigrateConfirmed { domu: "test3".into(), from: "xen-01".into(), to: "xen-02".into() });
    press(&mut p, ch('/'));
    type_text(&mut p, "crash");
    insta::assert_snapshot!(render(&p, 80, 24));
}

#[test]
fn snapshot_before_the_first_answer_80x24() {
    let ctx = PanelContext { theme: Theme::default_theme(), keys: Arc::new(Keymap::defaults()), read_only: true, scope: Scope::default() };
    let p = XenPanel::with_policy(ctx.theme.clone(), ctx.keys.clone(), true, BalancerPolicy::default(), PolicySource::Default);
    insta::assert_snapshot!(render(&p, 80, 24));
}

#[test]
fn draws_at_any_size_without_panicking() {
    let mut panels = vec![demo_with_history(), demo_with_history(), demo_with_history(), demo_with_history()];
    press(&mut panels[1], ch('b'));
    press(&mut panels[2], ch('m'));
    press(&mut panels[3], ch('/'));
    type_text(&mut panels[3], "web");
    panels.push(panel_with(false, file_policy()));
    for p in &panels {
        for (w, h) in [(1, 1), (2, 2), (5, 3), (10, 4), (20, 6), (40, 8), (60, 12), (79, 23), (200, 60)] {
            render(p, w, h);
        }
    }
}
