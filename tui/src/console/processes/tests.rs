//! State-machine tests without rendering, and TestBackend snapshots at 80x24 and 160x48.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::style::Color;

use super::*;
use crate::console::keys::{Keymap, Mode};

const GIB: u64 = 1024 * 1024 * 1024;
pub(super) const MIB: u64 = 1024 * 1024;

pub(super) fn at(h: u64, m: u64, s: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(20_000 * 86_400 + h * 3600 + m * 60 + s)
}

pub(super) fn secs_at(h: u64, m: u64, s: u64) -> u64 {
    20_000 * 86_400 + h * 3600 + m * 60 + s
}

pub(super) fn proc_(host: &str, pid: u32, user: &str, cmdline: &str) -> Proc {
    Proc {
        host: host.into(),
        pid,
        ppid: 1,
        user: user.into(),
        state: "S".into(),
        rss: 4 * MIB,
        vsz: 20 * MIB,
        cpu: 0.0,
        start_time: 1000 + u64::from(pid),
        started: secs_at(8, 0, 0),
        threads: 1,
        name: cmdline.split_whitespace().next().unwrap_or_default().to_string(),
        cmdline: cmdline.into(),
        zombie: false,
        parent_pid: None,
        parent_start_time: None,
        parent_cmdline: None,
    }
}

/// Three hosts: web servers, a database, a parent with an unreaped zombie child, and a process
/// stuck in uninterruptible sleep.
pub(super) fn fleet_procs() -> Vec<Proc> {
    let mut v = vec![
        Proc { cpu: 12.5, rss: 48 * MIB, vsz: 210 * MIB, ..proc_("web-01", 812, "www-data", "nginx: worker process") },
        Proc { ppid: 1, cpu: 0.3, rss: 9 * MIB, vsz: 180 * MIB, ..proc_("web-01", 811, "root", "nginx: master process /usr/sbin/nginx") },
        Proc { cpu: 3.1, rss: 44 * MIB, vsz: 220 * MIB, ..proc_("web-02", 1490, "www-data", "nginx: worker process") },
        Proc {
            cpu: 41.7,
            rss: 2 * GIB + 300 * MIB,
            vsz: 6 * GIB,
            started: 19_990 * 86_400 + 3600,
            ..proc_("db-01", 2301, "postgres", "postgres: checkpointer")
        },
        Proc {
            cpu: 0.9,
            state: "D".into(),
            rss: 12 * MIB,
            vsz: 90 * MIB,
            ..proc_("db-01", 4410, "backup", "rsync -a /var/lib/pgsql /mnt/nfs/backup")
        },
        Proc { ppid: 1, cpu: 0.0, rss: 30 * MIB, vsz: 120 * MIB, ..proc_("web-02", 3100, "deploy", "python3 /opt/jobs/spawner.py") },
        Proc {
            ppid: 3100,
            state: "Z".into(),
            rss: 0,
            vsz: 0,
            name: "[worker]".into(),
            zombie: true,
            parent_pid: Some(3100),
            parent_start_time: Some(1000 + 3100),
            parent_cmdline: Some("python3 /opt/jobs/spawner.py".into()),
            ..proc_("web-02", 3177, "deploy", "[worker]")
        },
        Proc { cpu: 0.0, rss: MIB, vsz: 8 * MIB, started: secs_at(12, 30, 1), ..proc_("web-01", 5120, "admin", "sleep 98765") },
    ];
    v.sort_by(|a, b| a.host.cmp(&b.host).then(a.pid.cmp(&b.pid)));
    v
}

pub(super) fn listing(procs: Vec<Proc>) -> Arc<Listing> {
    let found =
        fleet_client::process::Listing { procs, hosts_asked: 4, hosts_answered: 3, failed: Vec::new(), no_reply: vec!["cache-01".into()] };
    Arc::new(Listing { found, prepared: None })
}

fn ctx(read_only: bool) -> PanelContext {
    PanelContext { theme: Theme::default_theme(), keys: Arc::new(Keymap::defaults()), read_only, scope: Scope::default() }
}

pub(super) fn panel(read_only: bool) -> ProcessesPanel {
    ProcessesPanel::new(&ctx(read_only))
}

/// The network work in what the panel returned, if any (also inside a batch).
fn cmd_of(action: Option<Action>) -> Option<Cmd> {
    match action? {
        Action::Net(cmd) => match *cmd {
            NetCommand::Processes(cmd) => Some(cmd),
            other => panic!("not the panel's work: {other:?}"),
        },
        Action::Batch(actions) => actions.into_iter().find_map(|a| cmd_of(Some(a))),
        _ => None,
    }
}

/// The footer notice in what the panel returned, if any (also inside a batch).
fn notice_of(action: &Option<Action>) -> Option<Notice> {
    match action.as_ref()? {
        Action::Notify(n) => Some(n.clone()),
        Action::Batch(actions) => actions.iter().find_map(|a| notice_of(&Some(a.clone()))),
        _ => None,
    }
}

pub(super) fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new_with_kind(code, KeyModifiers::NONE, KeyEventKind::Press)
}

pub(super) fn shifted(c: char) -> KeyEvent {
    KeyEvent::new_with_kind(KeyCode::Char(c), KeyModifiers::SHIFT, KeyEventKind::Press)
}

/// A key as the shell routes it: `handle_key`, then `update` with what it gave. Returns what
/// the panel asked for (network work, a notice).
pub(super) fn press_action(p: &mut ProcessesPanel, k: KeyEvent) -> Option<Action> {
    let action = p.handle_key(k)?;
    p.update(action)
}

/// [`press_action`], keeping only the network work.
fn press(p: &mut ProcessesPanel, k: KeyEvent) -> Option<Cmd> {
    cmd_of(press_action(p, k))
}

fn apply(p: &mut ProcessesPanel, msg: Msg) -> Option<Cmd> {
    cmd_of(p.apply(msg))
}

fn type_text(p: &mut ProcessesPanel, text: &str) {
    for c in text.chars() {
        assert_eq!(press(p, key(KeyCode::Char(c))), None);
    }
}

fn list_seq(action: Option<Action>) -> u64 {
    match cmd_of(action) {
        Some(Cmd::List { seq, .. }) => seq,
        other => panic!("expected a list, got {other:?}"),
    }
}

/// A panel on screen with the fleet listed, at 12:34:56.
pub(super) fn listed_panel(read_only: bool) -> ProcessesPanel {
    let mut p = panel(read_only);
    assert_eq!(p.update(Action::Tick(at(12, 34, 55))), None, "not on screen: no list");
    let seq = list_seq(p.update(Action::FocusChanged(PanelId::Processes)));
    p.update(Action::Tick(at(12, 34, 56)));
    assert_eq!(p.apply(Msg::Listed { seq, listing: listing(fleet_procs()) }), None);
    p
}

pub(super) fn pids(p: &ProcessesPanel) -> Vec<u32> {
    p.rows().map(|r| r.pid).collect()
}

fn key_of(p: &ProcessesPanel, pid: u32) -> ProcKey {
    ProcKey::of(p.rows().find(|r| r.pid == pid).unwrap())
}

pub(super) fn select_pid(p: &mut ProcessesPanel, pid: u32) {
    p.apply(Msg::Nav(Nav::Top));
    while p.selected().unwrap().pid != pid {
        let before = p.selected_index();
        p.apply(Msg::Nav(Nav::Down));
        assert_ne!(before, p.selected_index(), "pid {pid} is not listed");
    }
}

pub(super) fn render(p: &ProcessesPanel, cols: u16, rows: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(cols, rows)).unwrap();
    terminal.draw(|f| p.render(f, f.area())).unwrap();
    terminal.backend().to_string()
}

// --- refresh ---

#[test]
fn lists_only_on_screen_and_again_every_interval_without_overlap() {
    let mut p = panel(false);
    assert_eq!(p.update(Action::Tick(at(10, 0, 0))), None);
    let first = list_seq(p.update(Action::FocusChanged(PanelId::Processes)));
    assert!(p.refreshing());
    // While a list is out, no other goes, however long it takes.
    assert_eq!(p.update(Action::Tick(at(10, 0, 5))), None);
    p.apply(Msg::Listed { seq: first, listing: listing(fleet_procs()) });
    assert!(!p.refreshing());
    let second = list_seq(p.update(Action::Tick(at(10, 0, 6))));
    assert!(second > first);
    p.apply(Msg::Listed { seq: second, listing: listing(fleet_procs()) });
    assert_eq!(p.update(Action::Tick(at(10, 0, 7))), None, "1 s after the last list: not due");
    assert!(matches!(cmd_of(p.update(Action::Tick(at(10, 0, 8)))), Some(Cmd::List { .. })));
    // On another panel, nothing goes out.
    p.update(Action::FocusChanged(PanelId::Inventory));
    p.apply(Msg::Listed { seq: second + 1, listing: listing(fleet_procs()) });
    assert_eq!(p.update(Action::Tick(at(10, 1, 0))), None);
    // A list that never comes back does not stall the table for ever.
    let mut q = panel(false);
    q.update(Action::Tick(at(10, 0, 0)));
    list_seq(q.update(Action::FocusChanged(PanelId::Processes)));
    assert_eq!(q.update(Action::Tick(at(10, 0, 30))), None);
    assert!(matches!(cmd_of(q.update(Action::Tick(at(10, 1, 1)))), Some(Cmd::List { .. })));
}

#[test]
fn refresh_interval_is_configurable() {
    let mut p = panel(false).with_refresh_every(Duration::from_secs(5));
    p.apply(Msg::Tick(at(10, 0, 0)));
    let seq = list_seq(p.apply(Msg::Shown(true)));
    p.apply(Msg::Listed { seq, listing: listing(vec![]) });
    assert_eq!(p.apply(Msg::Tick(at(10, 0, 4))), None);
    assert!(apply(&mut p, Msg::Tick(at(10, 0, 5))).is_some());
}

#[test]
fn a_new_pattern_lists_at_once_and_a_stale_list_is_never_shown() {
    let mut p = listed_panel(false);
    let stale = list_seq(p.apply(Msg::Refresh));
    assert_eq!(press(&mut p, key(KeyCode::Char('/'))), None);
    assert!(p.captures_input());
    type_text(&mut p, "sleep 98765");
    let cmd = press(&mut p, key(KeyCode::Enter)).unwrap();
    let Cmd::List { seq, pattern, zombies, user, scope, sort } = cmd else { panic!("{cmd:?}") };
    assert_eq!(sort, (Column::Host, false), "the table's sort goes along");
    assert_eq!((pattern.as_str(), zombies, user.as_str(), scope), ("sleep 98765", false, "", Scope::default()));
    assert!(!p.captures_input());
    // The rows of the old pattern are gone at once, and its late answer is dropped.
    assert_eq!(p.rows().len(), 0);
    p.apply(Msg::Listed { seq: stale, listing: listing(fleet_procs()) });
    assert_eq!(p.rows().len(), 0);
    let only_sleep: Vec<Proc> = fleet_procs().into_iter().filter(|r| r.cmdline.contains("sleep 98765")).collect();
    p.apply(Msg::Listed { seq, listing: listing(only_sleep) });
    assert_eq!(pids(&p), vec![5120]);
}

#[test]
fn an_invalid_regex_is_shown_and_nothing_is_sent() {
    let mut p = listed_panel(false);
    press(&mut p, key(KeyCode::Char('/')));
    type_text(&mut p, "sleep (");
    let (_, text, error) = p.editing().unwrap();
    assert_eq!(text, "sleep (");
    assert_eq!(error, Some("not a valid regex: unclosed group"));
    assert_eq!(press(&mut p, key(KeyCode::Enter)), None);
    assert_eq!(p.mode(), PanelMode::Edit);
    // Esc puts back the pattern in force.
    assert_eq!(press(&mut p, key(KeyCode::Esc)), None);
    assert_eq!(p.mode(), PanelMode::Browse);
    assert_eq!(p.query().pattern, "");
    assert_eq!(p.rows().len(), 8);
}

#[test]
fn list_failures_show_until_a_list_succeeds() {
    let mut p = listed_panel(false);
    let seq = list_seq(p.apply(Msg::Refresh));
    p.apply(Msg::ListFailed { seq, error: "no hub reachable: connection refused\nmore".into() });
    assert_eq!(p.list_error(), Some("no hub reachable: connection refused"));
    assert_eq!(p.rows().len(), 8, "the last rows stay");
    assert!(render(&p, 80, 24).contains("list failed: no hub reachable"));
    let seq = list_seq(p.apply(Msg::Refresh));
    p.apply(Msg::Listed { seq, listing: listing(fleet_procs()) });
    assert_eq!(p.list_error(), None);
}

#[test]
fn user_filter_zombie_toggle_and_scope_change_the_query() {
    let mut p = listed_panel(false);
    press(&mut p, key(KeyCode::Char('u')));
    type_text(&mut p, "www data");
    assert!(p.editing().unwrap().2.is_some(), "a space is not in a user name");
    assert_eq!(press(&mut p, key(KeyCode::Enter)), None);
    press(&mut p, KeyEvent::new_with_kind(KeyCode::Char('u'), KeyModifiers::CONTROL, KeyEventKind::Press));
    type_text(&mut p, "www-data");
    let Some(Cmd::List { user, .. }) = press(&mut p, key(KeyCode::Enter)) else { panic!() };
    assert_eq!(user, "www-data");
    let Some(Cmd::List { zombies, user, .. }) = press(&mut p, key(KeyCode::Char('z'))) else { panic!() };
    assert!(zombies);
    assert_eq!(user, "www-data");
    let Some(Cmd::List { zombies, .. }) = press(&mut p, key(KeyCode::Char('z'))) else { panic!() };
    assert!(!zombies);
    // The shell's scope: the discovery filter, or the nodes tagged there.
    let web = Scope { filter: "role=web".into(), targets: Some(vec!["web-01".into(), "web-02".into()]) };
    let Some(Cmd::List { scope, .. }) = cmd_of(p.update(Action::ScopeChanged(web.clone()))) else { panic!() };
    assert_eq!(scope, web);
    assert_eq!(p.update(Action::ScopeChanged(web)), None, "same scope: nothing to do");
    assert!(render(&p, 120, 10).contains("on 2 selected nodes"));
    // On another panel a new scope only clears the table; the list goes when it is shown.
    p.update(Action::FocusChanged(PanelId::Discovery));
    assert_eq!(p.update(Action::ScopeChanged(Scope::filter("role=db"))), None);
    assert_eq!(p.rows().len(), 0);
    let Some(Cmd::List { scope, .. }) = cmd_of(p.update(Action::FocusChanged(PanelId::Processes))) else { panic!() };
    assert_eq!(scope, Scope::filter("role=db"));
}

// --- sorting ---

#[test]
fn sort_by_any_column_keeps_the_selection_on_its_process() {
    let mut p = listed_panel(false);
    assert_eq!(p.sort(), (Column::Host, false));
    assert_eq!(pids(&p), vec![2301, 4410, 811, 812, 5120, 1490, 3100, 3177]);
    select_pid(&mut p, 4410);
    // F6 walks the columns: host -> user -> pid.
    press(&mut p, key(KeyCode::F(6)));
    assert_eq!(p.sort(), (Column::User, false));
    press(&mut p, key(KeyCode::F(6)));
    assert_eq!(p.sort(), (Column::Pid, false));
    assert_eq!(pids(&p), vec![811, 812, 1490, 2301, 3100, 3177, 4410, 5120]);
    assert_eq!(p.selected().unwrap().pid, 4410, "the selection follows the process");
    assert_eq!(p.selected_index(), 6);
    // `I` inverts.
    press(&mut p, shifted('I'));
    assert_eq!(p.sort(), (Column::Pid, true));
    assert_eq!(pids(&p), vec![5120, 4410, 3177, 3100, 2301, 1490, 812, 811]);
    // `>` moves right to ppid, state, cpu%; `<` moves back; the direction stays.
    for _ in 0..3 {
        press(&mut p, key(KeyCode::Char('>')));
    }
    assert_eq!(p.sort(), (Column::Cpu, true));
    assert_eq!(pids(&p)[..3], [2301, 812, 1490]);
    press(&mut p, key(KeyCode::Char('<')));
    assert_eq!(p.sort(), (Column::State, true));
    // Every column sorts, and F6 wraps around.
    for _ in 0..Column::ALL.len() {
        press(&mut p, key(KeyCode::F(6)));
    }
    assert_eq!(p.sort(), (Column::State, true));
    assert_eq!(p.rows().next().unwrap().state, "Z");
    // `>` stops at the last column.
    for _ in 0..20 {
        press(&mut p, key(KeyCode::Char('>')));
    }
    assert_eq!(p.sort().0, Column::Command);
    assert_eq!(p.rows().next().unwrap().cmdline, "sleep 98765", "descending by command");
}

#[test]
fn each_column_sorts_by_its_value() {
    let mut p = listed_panel(false);
    let mut check = |column: Column, first: u32, last: u32| {
        while p.sort().0 != column {
            p.apply(Msg::NextSortColumn);
        }
        if p.sort().1 {
            p.apply(Msg::InvertSort);
        }
        let pids = pids(&p);
        assert_eq!((pids[0], pids[pids.len() - 1]), (first, last), "{column:?}");
    };
    // Ties go by host, then pid: web-01's www-data before web-02's.
    check(Column::User, 5120, 1490);
    check(Column::Cpu, 5120, 2301);
    check(Column::Rss, 3177, 2301);
    check(Column::Vsz, 3177, 2301);
    check(Column::Started, 2301, 5120);
    check(Column::Command, 3177, 5120);
    check(Column::Ppid, 2301, 3177);
}

#[test]
fn a_listing_prepared_for_the_current_sort_is_taken_as_is() {
    let mut p = listed_panel(false);
    p.apply(Msg::NextSortColumn);
    let Some(Cmd::List { seq, sort, .. }) = apply(&mut p, Msg::Refresh) else { panic!() };
    assert_eq!(sort, (Column::User, false));
    // What execute does off the UI thread.
    let mut made = Listing { prepared: None, ..(*listing(fleet_procs())).clone() };
    made.prepared = Some(Prepared::of(&made, sort));
    let expected = made.prepared.as_ref().unwrap().order.clone();
    p.apply(Msg::Listed { seq, listing: Arc::new(made) });
    assert_eq!(p.rows().map(|r| r.pid).collect::<Vec<_>>(), expected.iter().map(|&i| fleet_procs()[i as usize].pid).collect::<Vec<_>>());
    // Prepared for another sort (the user pressed F6 meanwhile): the panel sorts itself.
    let Some(Cmd::List { seq, sort, .. }) = apply(&mut p, Msg::Refresh) else { panic!() };
    p.apply(Msg::InvertSort);
    let mut made = (*listing(fleet_procs())).clone();
    made.prepared = Some(Prepared::of(&made, sort));
    p.apply(Msg::Listed { seq, listing: Arc::new(made) });
    let users: Vec<String> = p.rows().map(|r| r.user.clone()).collect();
    assert_eq!(users.first().map(String::as_str), Some("www-data"), "descending by user: {users:?}");
}

#[test]
fn sort_survives_a_refresh_and_ties_are_stable() {
    let mut p = listed_panel(false);
    p.apply(Msg::NextSortColumn);
    p.apply(Msg::InvertSort);
    let before = pids(&p);
    let seq = list_seq(p.apply(Msg::Refresh));
    let mut shuffled = fleet_procs();
    shuffled.reverse();
    p.apply(Msg::Listed { seq, listing: listing(shuffled) });
    assert_eq!(pids(&p), before);
}

// --- tags ---

#[test]
fn space_tags_and_moves_down_and_capital_u_untags_all() {
    let mut p = listed_panel(false);
    press(&mut p, key(KeyCode::Char(' ')));
    press(&mut p, key(KeyCode::Char(' ')));
    assert_eq!(p.tagged().len(), 2);
    assert_eq!(p.selected_index(), 2);
    assert!(p.tagged().contains(&key_of(&p, 2301)) && p.tagged().contains(&key_of(&p, 4410)));
    // Space on a tagged row untags it.
    press(&mut p, key(KeyCode::Up));
    press(&mut p, key(KeyCode::Char(' ')));
    assert_eq!(p.tagged().len(), 1);
    press(&mut p, shifted('U'));
    assert!(p.tagged().is_empty());
}

#[test]
fn tags_follow_processes_across_refreshes_and_drop_when_they_are_gone() {
    let mut p = listed_panel(false);
    select_pid(&mut p, 812);
    p.apply(Msg::ToggleTag);
    select_pid(&mut p, 2301);
    p.apply(Msg::ToggleTag);
    select_pid(&mut p, 5120);
    p.apply(Msg::ToggleTag);
    let seq = list_seq(p.apply(Msg::Refresh));
    // The sleep is gone; a new process took pid 812 (another start time): not the one tagged.
    let procs: Vec<Proc> = fleet_procs()
        .into_iter()
        .filter(|r| r.pid != 5120)
        .map(|r| if r.pid == 812 { Proc { start_time: 999_999, ..r } } else { r })
        .collect();
    p.apply(Msg::Listed { seq, listing: listing(procs) });
    assert_eq!(p.tagged().iter().map(|k| k.pid).collect::<Vec<_>>(), vec![2301], "only the process still listed stays tagged");
}

// --- kill ---

#[test]
fn signal_menu_then_confirmation_sends_exactly_the_tagged_targets() {
    let mut p = listed_panel(false);
    select_pid(&mut p, 812);
    press(&mut p, key(KeyCode::Char(' ')));
    select_pid(&mut p, 2301);
    press(&mut p, key(KeyCode::Char(' ')));
    // The selection is elsewhere now: the tags, not the selection, are the targets.
    assert_eq!(press(&mut p, shifted('K')), None);
    assert_eq!(p.mode(), PanelMode::SignalMenu);
    assert!(p.captures_input());
    assert_eq!(p.signal(), Some(Signal::Term), "TERM is the default");
    press(&mut p, key(KeyCode::Down));
    assert_eq!(p.signal(), Some(Signal::Kill));
    press(&mut p, key(KeyCode::Up));
    press(&mut p, key(KeyCode::Up));
    assert_eq!(p.signal(), Some(Signal::Term), "the menu stops at the top");
    press(&mut p, key(KeyCode::Down));
    assert_eq!(press(&mut p, key(KeyCode::Enter)), None, "choosing a signal sends nothing yet");
    assert_eq!(p.mode(), PanelMode::Confirm);
    let plan = p.kill_plan().unwrap().clone();
    let db = key_of(&p, 2301);
    let web = key_of(&p, 812);
    // In display order (host order): db-01 first.
    assert_eq!(plan.targets.iter().map(|t| t.key.clone()).collect::<Vec<_>>(), vec![db.clone(), web.clone()]);
    assert_eq!((plan.targets[0].user.as_str(), plan.targets[0].command.as_str()), ("postgres", "postgres: checkpointer"));
    // A refresh while the confirmation is open does not change what it lists.
    let seq = list_seq(p.apply(Msg::Refresh));
    p.apply(Msg::Listed { seq, listing: listing(fleet_procs().into_iter().filter(|r| r.pid != 812).collect()) });
    assert_eq!(p.kill_plan().unwrap(), &plan);

    let cmd = press(&mut p, key(KeyCode::Enter));
    assert_eq!(cmd, Some(Cmd::Kill { targets: vec![db.clone(), web.clone()], signal: Signal::Kill }));
    // Sent: the popup is gone and the keys are the table's and the shell's again.
    assert_eq!(p.mode(), PanelMode::Browse);
    assert!(!p.captures_input());
    assert_eq!(p.handle_key(key(KeyCode::Char('1'))), None, "1 is the shell's");
    assert_eq!(p.kill_reports(), None, "waiting for the nodes");
    assert_eq!(p.kill_status().unwrap().summary(), ("SIGKILL to 2 processes: sending ...".to_string(), true));
    // The results come per target: in the footer, on the status line and in the Log; a fresh
    // list follows.
    p.update(Action::Tick(at(12, 34, 57)));
    let reports = vec![
        KillReport { key: db.clone(), outcome: KillOutcome::Signalled },
        KillReport { key: web.clone(), outcome: KillOutcome::PidReused },
    ];
    let out = p.apply(Msg::Killed(reports.clone()));
    assert_eq!(notice_of(&out), Some(Notice { text: "SIGKILL: 1 signalled, 1 already gone".into(), error: false }));
    let Some(Action::Batch(actions)) = &out else { panic!("{out:?}") };
    let Some(Action::Logged(record)) = actions.iter().find(|a| matches!(a, Action::Logged(_))) else { panic!("{out:?}") };
    assert_eq!(record.what(), "process#kill");
    assert_eq!((record.ok_count(), record.failed_count()), (1, 1));
    assert_eq!(record.replies[1].message, "pid reused");
    assert_eq!(record.state, crate::console::record::RequestState::Done { elapsed_ms: 1000.0 });
    assert!(matches!(cmd_of(out), Some(Cmd::List { .. })));
    assert_eq!(p.kill_reports(), Some(&reports[..]));
    assert!(!p.tagged().contains(&db), "signalled: untagged");
    assert!(render(&p, 80, 24).contains("last kill 12:34:56 UTC: SIGKILL: 1 signalled, 1 already gone"));
}

#[test]
fn without_tags_the_selected_row_is_the_target() {
    let mut p = listed_panel(false);
    select_pid(&mut p, 5120);
    press(&mut p, key(KeyCode::F(9)));
    press(&mut p, key(KeyCode::Enter));
    let sleep = key_of(&p, 5120);
    assert_eq!(press(&mut p, key(KeyCode::Enter)), Some(Cmd::Kill { targets: vec![sleep], signal: Signal::Term }));
}

#[test]
fn esc_cancels_the_menu_and_the_confirmation_and_nothing_is_sent() {
    let mut p = listed_panel(false);
    press(&mut p, key(KeyCode::Char(' ')));
    press(&mut p, shifted('K'));
    let cancelled = press_action(&mut p, key(KeyCode::Esc));
    assert_eq!(cmd_of(cancelled.clone()), None);
    assert_eq!(notice_of(&cancelled).unwrap().text, "cancelled: nothing was sent");
    assert_eq!(p.mode(), PanelMode::Browse);
    press(&mut p, key(KeyCode::Char('x')));
    press(&mut p, key(KeyCode::Enter));
    assert_eq!(p.mode(), PanelMode::Confirm);
    assert_eq!(press(&mut p, key(KeyCode::Esc)), None);
    assert_eq!(p.mode(), PanelMode::Browse);
    assert_eq!(p.tagged().len(), 1, "cancelling keeps the tags");
    // Keys the confirmation does not bind are used up, so the shell's global keys (tab, 1-6)
    // cannot act behind it; ctrl-c still quits.
    press(&mut p, key(KeyCode::F(9)));
    press(&mut p, key(KeyCode::Enter));
    for k in [key(KeyCode::Char('y')), key(KeyCode::Char('2')), key(KeyCode::Tab)] {
        assert_eq!(p.handle_key(k), Some(Action::Batch(Vec::new())), "{k:?}");
    }
    let ctrl_c = KeyEvent::new_with_kind(KeyCode::Char('c'), KeyModifiers::CONTROL, KeyEventKind::Press);
    assert_eq!(p.handle_key(ctrl_c), Some(Action::Quit));
    assert_eq!(p.mode(), PanelMode::Confirm);
    assert!(matches!(press(&mut p, key(KeyCode::Enter)), Some(Cmd::Kill { .. })));
}

#[test]
fn a_zombie_is_never_a_target_its_parent_is_offered_instead() {
    let mut p = listed_panel(false);
    select_pid(&mut p, 3177);
    assert!(p.selected().unwrap().zombie);
    press(&mut p, shifted('K'));
    assert_eq!(p.signal(), Some(Signal::Chld), "for zombie parents CHLD comes first");
    let plan = p.kill_plan().unwrap();
    assert_eq!(plan.targets.len(), 1);
    let parent = &plan.targets[0];
    let parent_key = ProcKey { host: "web-02".into(), pid: 3100, start_time: 4100 };
    assert_eq!(parent.key, parent_key);
    assert_eq!(parent.parent_of_zombie, Some(3177));
    assert_eq!(parent.user, "deploy", "the parent is listed, so its user is known");
    assert_eq!(parent.command, "python3 /opt/jobs/spawner.py");
    press(&mut p, key(KeyCode::Enter));
    assert_eq!(press(&mut p, key(KeyCode::Enter)), Some(Cmd::Kill { targets: vec![parent_key], signal: Signal::Chld }));

    // The parent tagged too: it is signalled once, and TERM is the default again.
    let mut p = listed_panel(false);
    select_pid(&mut p, 3100);
    p.apply(Msg::ToggleTag);
    select_pid(&mut p, 3177);
    p.apply(Msg::ToggleTag);
    p.apply(Msg::Kill);
    assert_eq!(p.kill_plan().unwrap().targets.len(), 1);
    assert_eq!(p.signal(), Some(Signal::Term));

    // A zombie whose parent is unknown is skipped, and with nothing left no menu opens.
    let orphan =
        Proc { zombie: true, state: "Z".into(), parent_pid: None, parent_start_time: None, ..proc_("web-01", 7000, "root", "[gone]") };
    let mut q = panel(false);
    let seq = list_seq(q.apply(Msg::Shown(true)));
    q.apply(Msg::Listed { seq, listing: listing(vec![orphan]) });
    let refused = q.apply(Msg::Kill);
    assert_eq!(q.mode(), PanelMode::Browse);
    let n = notice_of(&refused).unwrap();
    assert!(n.error && n.text.contains("zombie web-01 7000 has no parent"), "{n:?}");
}

#[test]
fn read_only_disables_kill() {
    let mut p = listed_panel(true);
    press(&mut p, key(KeyCode::Char(' ')));
    for k in [shifted('K'), key(KeyCode::Char('x')), key(KeyCode::F(9))] {
        let refused = press_action(&mut p, k);
        assert_eq!(notice_of(&refused), Some(Notice { text: "read-only mode: kill is disabled".into(), error: true }));
        assert_eq!(cmd_of(refused), None);
        assert_eq!(p.mode(), PanelMode::Browse, "no menu opens");
    }
    assert_eq!(p.apply(Msg::ChooseSignal), None);
    assert_eq!(p.apply(Msg::Confirm), None);
    // Everything else still works.
    assert!(matches!(press(&mut p, key(KeyCode::Char('z'))), Some(Cmd::List { .. })));
}

#[test]
fn a_kill_that_could_not_be_sent_says_so() {
    let mut p = listed_panel(false);
    p.apply(Msg::Kill);
    p.apply(Msg::ChooseSignal);
    p.apply(Msg::Confirm);
    p.apply(Msg::KillFailed("no hub reachable".into()));
    let screen = render(&p, 80, 24);
    assert!(screen.contains("SIGTERM not sent: no hub reachable"), "{screen}");
    // A kill the nodes refused is an error in the footer.
    p.apply(Msg::Kill);
    p.apply(Msg::ChooseSignal);
    p.apply(Msg::Confirm);
    let db = key_of(&p, 2301);
    let late = p.apply(Msg::Killed(vec![KillReport { key: db, outcome: KillOutcome::PermissionDenied }]));
    assert_eq!(notice_of(&late), Some(Notice { text: "SIGTERM: 0 signalled, 1 permission denied".into(), error: true }));
    assert!(matches!(cmd_of(late), Some(Cmd::List { .. })));
}

#[test]
fn k_moves_up_and_never_opens_the_signal_menu() {
    let mut p = listed_panel(false);
    p.apply(Msg::Nav(Nav::Down));
    p.apply(Msg::Nav(Nav::Down));
    for _ in 0..3 {
        press(&mut p, key(KeyCode::Char('k')));
    }
    assert_eq!(p.selected_index(), 0);
    assert_eq!(p.mode(), PanelMode::Browse);
    press(&mut p, key(KeyCode::Char('j')));
    assert_eq!(p.selected_index(), 1);
}

// --- keys ---

#[test]
fn key_tables_are_valid_and_leave_the_global_keys_alone() {
    let keys = Keymap::defaults();
    keys.validate().unwrap();
    let browse = key_table();
    let global = keys.table(Mode::Global);
    for b in &browse {
        for k in &b.keys {
            // The global table's keys a panel must not take: quit, help, command line, panels.
            let taken = global.iter().find(|g| g.keys.contains(k) && g.name != "back");
            assert!(taken.is_none(), "{} takes {k} from the global {:?}", b.name, taken.map(|g| g.name));
        }
    }
    assert!(Mode::ProcessesLine.is_text_entry(), "the keymap's check keeps characters free for typing");
    for mode in [PanelMode::Browse, PanelMode::Edit, PanelMode::SignalMenu, PanelMode::Confirm] {
        assert!(!keys.table(mode.keys_mode()).is_empty(), "{mode:?}");
    }
}

#[test]
fn the_keymap_can_rebind_the_panel() {
    let mut keys = Keymap::defaults();
    keys.apply_user("[processes]\nkill = [\"ctrl-k\"]\n", "keys.toml").unwrap();
    let mut p = ProcessesPanel::new(&PanelContext { keys: Arc::new(keys), ..ctx(false) });
    let seq = list_seq(p.apply(Msg::Shown(true)));
    p.apply(Msg::Listed { seq, listing: listing(fleet_procs()) });
    assert_eq!(p.handle_key(key(KeyCode::Char('x'))), None);
    let ctrl_k = KeyEvent::new_with_kind(KeyCode::Char('k'), KeyModifiers::CONTROL, KeyEventKind::Press);
    assert_eq!(p.handle_key(ctrl_k), Some(Action::Processes(Msg::Kill)));
}

#[test]
fn the_editor_takes_every_character_and_the_shell_gets_the_rest_while_browsing() {
    let mut p = listed_panel(false);
    assert!(!p.captures_input());
    for global in ['q', '2', '?', ':'] {
        assert_eq!(p.handle_key(key(KeyCode::Char(global))), None, "{global} is the shell's");
    }
    assert_eq!(p.handle_key(key(KeyCode::Esc)), None, "esc is the shell's back");
    press(&mut p, key(KeyCode::Char('/')));
    assert_eq!(p.handle_key(key(KeyCode::Char('q'))), Some(Action::Processes(Msg::Edit(TextEdit::Insert('q')))));
    assert_eq!(p.handle_key(key(KeyCode::Char('k'))), Some(Action::Processes(Msg::Edit(TextEdit::Insert('k')))));
    assert_eq!(p.handle_key(shifted('U')), Some(Action::Processes(Msg::Edit(TextEdit::Insert('U')))));
    assert_eq!(p.handle_key(key(KeyCode::Tab)), Some(Action::Batch(Vec::new())));
}

#[test]
fn the_theme_follows_the_shell() {
    let mut p = listed_panel(false);
    p.update(Action::ThemeChanged(Box::new(Theme::mono())));
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
    terminal.draw(|f| p.render(f, f.area())).unwrap();
    let colored = terminal.backend().buffer().content().iter().filter(|c| c.fg != Color::Reset || c.bg != Color::Reset).count();
    assert_eq!(colored, 0);
}

// --- drawing ---

/// The fleet with one row tagged and the selection on the zombie.
fn zombie_screen() -> ProcessesPanel {
    let mut p = listed_panel(false);
    select_pid(&mut p, 812);
    p.apply(Msg::ToggleTag);
    select_pid(&mut p, 3177);
    p
}

#[test]
fn table_with_a_zombie_row_80x24() {
    insta::assert_snapshot!(render(&zombie_screen(), 80, 24));
}

#[test]
fn table_with_a_zombie_row_160x48() {
    insta::assert_snapshot!(render(&zombie_screen(), 160, 48));
}

/// Three tagged rows, one of them a zombie (its parent is the target), at the confirmation.
fn confirm_screen() -> ProcessesPanel {
    let mut p = listed_panel(false);
    for pid in [812, 5120, 3177] {
        select_pid(&mut p, pid);
        p.apply(Msg::ToggleTag);
    }
    p.apply(Msg::Kill);
    p.apply(Msg::ChooseSignal);
    p
}

#[test]
fn confirmation_popup_80x24() {
    insta::assert_snapshot!(render(&confirm_screen(), 80, 24));
}

#[test]
fn confirmation_popup_160x48() {
    insta::assert_snapshot!(render(&confirm_screen(), 160, 48));
}

#[test]
fn signal_menu_for_a_zombie_80x24() {
    let mut p = zombie_screen();
    p.apply(Msg::UntagAll);
    p.apply(Msg::Kill);
    insta::assert_snapshot!(render(&p, 80, 24));
}

#[test]
fn kill_results_80x24() {
    let mut p = confirm_screen();
    let Some(Cmd::Kill { targets, .. }) = apply(&mut p, Msg::Confirm) else { panic!() };
    p.update(Action::Tick(at(12, 34, 57)));
    let outcomes = [KillOutcome::Signalled, KillOutcome::PermissionDenied, KillOutcome::NoSuchProcess];
    let reports = targets.into_iter().zip(outcomes).map(|(key, outcome)| KillReport { key, outcome }).collect();
    p.apply(Msg::Killed(reports));
    insta::assert_snapshot!(render(&p, 80, 24));
}

/// The confirmation answered and the nodes' reports in.
fn killed_screen() -> ProcessesPanel {
    let mut p = confirm_screen();
    let Some(Cmd::Kill { targets, .. }) = apply(&mut p, Msg::Confirm) else { panic!() };
    let outcomes = [KillOutcome::Signalled, KillOutcome::NoSuchProcess, KillOutcome::Signalled];
    p.apply(Msg::Killed(targets.into_iter().zip(outcomes).map(|(key, outcome)| KillReport { key, outcome }).collect()));
    p
}

#[test]
fn kill_results_160x48() {
    insta::assert_snapshot!(render(&killed_screen(), 160, 48));
}

#[test]
fn kill_results_40x10() {
    insta::assert_snapshot!(render(&killed_screen(), 40, 10));
}

#[test]
fn editing_the_pattern_with_an_error_80x24() {
    let mut p = listed_panel(false);
    p.apply(Msg::EditPattern);
    for c in "nginx: (worker".chars() {
        p.apply(Msg::Edit(TextEdit::Insert(c)));
    }
    insta::assert_snapshot!(render(&p, 80, 24));
}

#[test]
fn zombie_and_d_state_rows_are_colored_from_the_theme() {
    let p = zombie_screen();
    let theme = Theme::default_theme();
    let mut terminal = Terminal::new(TestBackend::new(160, 48)).unwrap();
    terminal.draw(|f| p.render(f, f.area())).unwrap();
    let buffer = terminal.backend().buffer().clone();
    let row_of = |needle: &str| {
        (0..48u16)
            .find(|&y| (0..160u16).map(|x| buffer[(x, y)].symbol().to_string()).collect::<String>().contains(needle))
            .unwrap_or_else(|| panic!("{needle} not on screen"))
    };
    // The HOST cell of each row: past the border, the marker and the tag column.
    let fg = |y: u16| buffer[(5, y)].fg;
    assert_eq!(fg(row_of("rsync -a")), theme.process.dstate.style().fg.unwrap(), "D state");
    assert_eq!(fg(row_of("zombie of 3100")), theme.process.zombie.style().fg.unwrap(), "zombie");
    assert_eq!(fg(row_of("nginx: worker process ")), theme.process.tagged.style().fg.unwrap(), "tagged");
    assert_eq!(fg(row_of("postgres: checkpointer")), Color::Reset, "an ordinary sleeping row");
}

#[test]
fn renders_at_any_size_without_panicking() {
    let shows = [zombie_screen(), confirm_screen(), {
        let mut p = zombie_screen();
        p.apply(Msg::EditUser);
        p
    }];
    for p in &shows {
        for (cols, rows) in [(1, 1), (10, 3), (20, 5), (40, 10), (79, 23), (300, 100)] {
            render(p, cols, rows);
        }
    }
    render(&panel(false), 80, 24);
}

#[test]
fn fifty_thousand_rows_scroll_by_pages_to_the_end() {
    let procs: Vec<Proc> =
        (0..50_000u32).map(|i| proc_(&format!("node-{:03}", i % 500), 100 + i, "app", &format!("worker --id {i}"))).collect();
    let mut p = panel(false);
    let seq = list_seq(p.apply(Msg::Shown(true)));
    p.apply(Msg::Listed { seq, listing: listing(procs) });
    assert_eq!(p.totals().processes, 50_000);
    assert_eq!(p.totals().matched_hosts, 500);
    p.apply(Msg::Nav(Nav::Bottom));
    let screen = render(&p, 80, 24);
    assert!(screen.contains("worker --id 49999"), "{screen}");
    assert!(screen.contains("processes 50,000"), "{screen}");
    // A page up moves the view a page, not only the selection.
    p.apply(Msg::Nav(Nav::PageUp));
    let screen = render(&p, 80, 24);
    assert!(!screen.contains("worker --id 49999"), "{screen}");
    assert!(p.selected_index() < 49_999);
}
