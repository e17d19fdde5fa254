//! `fleet pgrep -o FIELDS`, `--sort` and `--tree` on real nodes: a shell and the sleep it started
//! are listed in the columns asked for, sorted, and as a tree under each host, with the totals.

use std::process::{Child, Command};
use std::time::Duration;

use fleet_e2e::support::*;

const T: Duration = Duration::from_secs(20);
/// In both command lines of the pair, and nowhere else.
const MARK: &str = "7391.75";

/// `sh -c 'sleep MARK & wait'`: a parent and its child, both matching MARK. Returns the shell and
/// the sleep's pid, once the shell has started it.
fn parent_and_child() -> (Child, u32) {
    let shell = Command::new("sh").arg("-c").arg(format!("sleep {MARK} & wait")).spawn().unwrap();
    let pid = shell.id();
    let mut child = 0;
    wait_for("the shell to start its sleep", T, || {
        let kids = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        child = kids.split_whitespace().next().and_then(|c| c.parse().ok()).unwrap_or(0);
        child != 0 && std::fs::read_to_string(format!("/proc/{child}/cmdline")).is_ok_and(|c| c.contains(MARK))
    });
    (shell, child)
}

/// The table rows of pgrep's output (the lines before the totals), split on whitespace.
fn rows(stdout: &str) -> Vec<Vec<&str>> {
    stdout.lines().take_while(|l| !l.trim().is_empty()).map(|l| l.split_whitespace().collect()).collect()
}

#[test]
fn pgrep_prints_the_columns_asked_for_sorted_and_as_a_tree() {
    let hub = Hub::start();
    let _alpha = Node::start(hub.endpoint(), "alpha", "", &[]);
    let _beta = Node::start(hub.endpoint(), "beta", "", &[]);
    wait_for_nodes(hub.endpoint(), &["alpha", "beta"], T);
    let (mut shell, sleep) = parent_and_child();
    let (sh, me) = (shell.id().to_string(), std::process::id().to_string());
    let sleep = sleep.to_string();

    // -o: the host first, then the fields in the order asked; the totals are kept.
    let out = fleet(hub.endpoint(), &["pgrep", MARK, "-I", "alpha", "-o", "pid,ppid,cmd"]);
    assert_eq!(out.code, Some(0), "{out}");
    let table = rows(&out.stdout);
    assert_eq!(table[0], ["HOST", "PID", "PPID", "CMD"], "{out}");
    assert_eq!(table[1..], [vec!["alpha", &sh, &me, "sh", "-c", "sleep", MARK, "&", "wait"], vec!["alpha", &sleep, &sh, "sleep", MARK]]);
    assert!(out.stdout.contains("    Matched processes: 2\n"), "{out}");

    // --sort with a minus: the largest pid first.
    let out = fleet(hub.endpoint(), &["pgrep", MARK, "-I", "alpha", "-o", "pid,user", "--sort", "-pid"]);
    let pids: Vec<u32> = rows(&out.stdout)[1..].iter().map(|r| r[1].parse().unwrap()).collect();
    let mut largest_first = pids.clone();
    largest_first.sort_by(|a, b| b.cmp(a));
    assert_eq!((pids.len(), &pids), (2, &largest_first), "{out}");

    // --tree: each host's shell with its sleep under it, as ps f draws it.
    let out = fleet(hub.endpoint(), &["pgrep", MARK, "-I", "alpha", "-I", "beta", "--tree", "-o", "pid,cmd"]);
    assert_eq!(out.code, Some(0), "{out}");
    let lines: Vec<&str> = out.stdout.lines().take(5).collect();
    let shell_line = |host: &str| format!("{host:<5} {sh:>w$} sh -c sleep {MARK} & wait", w = sh.len().max(sleep.len()).max(3));
    let sleep_line = |host: &str| format!("{host:<5} {sleep:>w$}  \\_ sleep {MARK}", w = sh.len().max(sleep.len()).max(3));
    assert_eq!(lines[1..], [shell_line("alpha"), sleep_line("alpha"), shell_line("beta"), sleep_line("beta")], "{out}");
    assert!(out.stdout.contains("        Matched hosts: 2\n") && out.stdout.contains("    Matched processes: 4\n"), "{out}");

    // An unknown field is refused before anything is sent, with the valid ones.
    let out = fleet(hub.endpoint(), &["pgrep", MARK, "-o", "pid,mem"]);
    assert_eq!(out.code, Some(4), "{out}");
    assert!(out.stderr.contains("unknown field 'mem' (valid: host, pid, ppid, user, state, rss, vsz, cpu, start, name, cmd)"), "{out}");

    let _ = shell.kill();
    let _ = Command::new("kill").arg(&sleep).status();
    shell.wait().unwrap();
}
