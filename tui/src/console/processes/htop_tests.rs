//! The htop-like views: the tree per host, quick sorts and the sort menu, the column chooser,
//! horizontal scrolling, the detail pane and copying `host:pid@start`; snapshots at 40x10, 80x24
//! and 160x48.

use crossterm::event::KeyCode;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use serde_json::json;

use super::tests::{at, fleet_procs, key, listing, panel, pids, press_action, render, select_pid, shifted};
use super::*;
use crate::console::inspector::Inspector;

const SIZES: [(u16, u16); 3] = [(40, 10), (80, 24), (160, 48)];

/// The fleet with nginx's worker under its master, listed on screen.
fn tree_panel() -> ProcessesPanel {
    let mut p = panel(false);
    p.update(Action::Tick(at(12, 34, 55)));
    let Some(Action::Net(cmd)) = p.update(Action::FocusChanged(PanelId::Processes)) else { panic!("a list goes out") };
    let NetCommand::Processes(Cmd::List { seq, .. }) = *cmd else { panic!() };
    p.update(Action::Tick(at(12, 34, 56)));
    let mut procs = fleet_procs();
    for x in procs.iter_mut().filter(|x| x.host == "web-01" && x.pid == 812) {
        x.ppid = 811;
    }
    p.apply(Msg::Listed { seq, listing: listing(procs) });
    p
}

fn snapshot_all(name: &str, p: &ProcessesPanel) {
    for (cols, rows) in SIZES {
        insta::assert_snapshot!(format!("{name}_{cols}x{rows}"), render(p, cols, rows));
    }
}

#[test]
fn the_tree_view_hangs_children_under_their_parent_per_host() {
    let mut p = tree_panel();
    assert!(matches!(press_action(&mut p, key(KeyCode::Char('t'))), Some(Action::Notify(_))));
    assert!(p.tree());
    // Hosts in name order; web-01's worker under its master, web-02's zombie under its spawner.
    assert_eq!(pids(&p), [2301, 4410, 811, 812, 5120, 1490, 3100, 3177]);
    let i = |pid: u32| p.listing().procs.iter().position(|x| x.pid == pid).unwrap() as u32;
    assert_eq!(p.prefix_of(i(812)), "└─ ");
    assert_eq!(p.prefix_of(i(3177)), "└─ ");
    assert_eq!(p.prefix_of(i(811)), "");
    snapshot_all("tree", &p);
    // F5 is the same key, as in htop.
    press_action(&mut p, key(KeyCode::F(5)));
    assert!(!p.tree());
}

#[test]
fn quick_sorts_and_the_sort_menu() {
    let mut p = tree_panel();
    press_action(&mut p, shifted('P'));
    assert_eq!(p.sort(), (Column::Cpu, true), "P: CPU, biggest first");
    press_action(&mut p, shifted('P'));
    assert_eq!(p.sort(), (Column::Cpu, false), "again: reversed");
    press_action(&mut p, shifted('M'));
    assert_eq!(p.sort(), (Column::Rss, true));
    assert_eq!(pids(&p)[0], 2301, "the database uses the most memory");
    press_action(&mut p, shifted('T'));
    assert_eq!(p.sort(), (Column::Started, false), "T: the oldest first");

    press_action(&mut p, key(KeyCode::Char('s')));
    assert_eq!(p.mode(), PanelMode::SortMenu);
    snapshot_all("sort_menu", &p);
    press_action(&mut p, key(KeyCode::Char('k')));
    press_action(&mut p, key(KeyCode::Enter));
    assert_eq!(p.mode(), PanelMode::Browse);
    assert_eq!(p.sort(), (Column::Vsz, true), "the menu opens on the sort in force (STARTED); one up is VSZ");
}

#[test]
fn the_column_chooser_hides_columns_and_command_lines_scroll() {
    let mut p = tree_panel();
    press_action(&mut p, key(KeyCode::Char('c')));
    assert_eq!(p.mode(), PanelMode::Columns);
    // USER is the second: hidden with space.
    press_action(&mut p, key(KeyCode::Char('j')));
    press_action(&mut p, key(KeyCode::Char(' ')));
    assert!(p.hidden().contains(&Column::User));
    snapshot_all("column_chooser", &p);
    press_action(&mut p, key(KeyCode::Esc));
    assert_eq!(p.mode(), PanelMode::Browse);
    assert!(!render(&p, 160, 48).lines().any(|l| l.contains("HOST") && l.contains("USER")), "USER is gone from the table");

    select_pid(&mut p, 4410);
    press_action(&mut p, key(KeyCode::Char('l')));
    assert_eq!(p.command_offset(), 16);
    let screen = render(&p, 80, 24);
    assert!(screen.contains("…b/pgsql /mnt/nfs/backup") && screen.contains("command +16"), "{screen}");
    press_action(&mut p, key(KeyCode::Char('h')));
    press_action(&mut p, key(KeyCode::Char('h')));
    assert_eq!(p.command_offset(), 0);
}

#[test]
fn y_copies_the_exact_process() {
    let mut p = tree_panel();
    select_pid(&mut p, 4410);
    let Some(Action::Batch(actions)) = press_action(&mut p, key(KeyCode::Char('y'))) else { panic!() };
    assert_eq!(actions[0], Action::Clipboard("db-01:4410@5410".into()));
}

#[test]
fn the_detail_pane_opens_at_once_and_fills_in_when_the_node_answers() {
    let mut p = tree_panel();
    select_pid(&mut p, 4410);
    let Some(Action::Batch(actions)) = press_action(&mut p, key(KeyCode::Enter)) else { panic!("enter opens the detail") };
    let [Action::Inspect(pane), Action::Net(cmd)] = &actions[..] else { panic!("{actions:?}") };
    let key = ProcKey { host: "db-01".into(), pid: 4410, start_time: 5410 };
    assert_eq!(**cmd, NetCommand::Processes(Cmd::Detail { key: key.clone() }));
    assert!(pane.text().contains("fetching process#detail"), "{}", pane.text());

    let detail = json!({
        "pid": 4410, "ppid": 1, "user": "backup", "state": "D", "name": "rsync",
        "cmdline": "rsync -a /var/lib/pgsql /mnt/nfs/backup", "argv": ["rsync", "-a", "/var/lib/pgsql", "/mnt/nfs/backup"],
        "environment": {"HOME": "/var/backups", "PATH": "/usr/bin:/bin"}, "cwd": "/var/backups", "exe": "/usr/bin/rsync",
        "open_files": 7, "cgroup": "/system.slice/backup.service", "threads": 1, "started": 20_000u64 * 86_400 + 8 * 3600,
        "start_time": 5410, "rss": 12_582_912, "vsz": 94_371_840, "cpu": 0.9,
    });
    let Some(Action::InspectUpdate(full)) = p.apply(Msg::Detailed { key: key.clone(), result: Ok(detail) }) else { panic!() };
    assert_eq!(full.id, pane.id, "the update is for the pane that is open");
    let text = full.text();
    for want in [
        "Command line: rsync -a /var/lib/pgsql /mnt/nfs/backup",
        "Working directory: /var/backups",
        "Open files: 7",
        "Cgroup: /system.slice/backup.service",
        "Threads: 1",
        "Started: 2024-10-04 08:00:00 UTC (1728028800)",
        "RSS: 12.0 MiB (12,582,912 bytes)",
        "PATH: /usr/bin:/bin",
    ] {
        assert!(text.contains(want), "{want:?} in:\n{text}");
    }
    let mut inspector = Inspector::new(None);
    inspector.open(*full);
    for (cols, rows) in SIZES {
        let mut terminal = Terminal::new(TestBackend::new(cols, rows)).unwrap();
        terminal.draw(|f| inspector.draw(f, f.area(), &crate::console::theme::Theme::default_theme())).unwrap();
        insta::assert_snapshot!(format!("detail_{cols}x{rows}"), terminal.backend().to_string());
    }

    // A node that cannot read it says why, in the pane.
    let Some(Action::InspectUpdate(failed)) = p.apply(Msg::Detailed { key, result: Err("Aborted: pid reused".into()) }) else { panic!() };
    assert!(failed.text().contains("failed: Aborted: pid reused"), "{}", failed.text());
}
