//! README's quick tour, run as written: the `sh` block under "## A quick tour" in bash, against the
//! real demo, with each command's exit code checked. The README cannot drift from what fleet does.

use std::path::Path;
use std::process::Command;

use fleet_e2e::support::fleet_bin;

/// The first ```sh block after `heading`.
fn block_after(readme: &str, heading: &str) -> String {
    let at = readme.find(heading).unwrap_or_else(|| panic!("README has no {heading:?}"));
    let rest = &readme[at..];
    let start = rest.find("```sh\n").expect("an sh block") + "```sh\n".len();
    let end = rest[start..].find("```").expect("the block ends");
    rest[start..start + end].to_string()
}

#[test]
fn the_quick_tour_runs_as_written() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let tour = block_after(&readme, "## A quick tour");
    // Every command line is followed by a check of its exit code; a failing command names itself.
    let mut script = String::from("set -u\nstatus=0\n");
    for line in tour.lines() {
        let cmd = line.split("  #").next().unwrap().trim();
        if cmd.is_empty() {
            continue;
        }
        script.push_str(cmd);
        script.push('\n');
        if cmd.starts_with("fleet ") {
            let quoted = cmd.replace('\'', "'\\''");
            script.push_str(&format!("rc=$?; [ $rc -eq 0 ] || {{ echo 'FAILED (exit '$rc'): {quoted}' >&2; status=1; }}\n"));
        }
    }
    script.push_str("wait\nexit $status\n");
    let work = tempfile::tempdir().unwrap();
    let xdg = tempfile::tempdir().unwrap();
    let bin_dir = fleet_bin().parent().unwrap().to_path_buf();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(work.path())
        .env("PATH", path)
        .env("XDG_CONFIG_HOME", xdg.path())
        .env("XDG_STATE_HOME", xdg.path())
        .env_remove("FLEET_HUB")
        .env_remove("FLEET_KEY")
        .env_remove("FLEET_HUB_KEY")
        .env_remove("FLEET_NODES_DIR")
        .env_remove("FLEET_CONFIG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the tour failed:\n--- script ---\n{script}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}");
    // What the tour promises to show.
    assert!(stdout.contains("---- ping statistics ----") && stdout.contains("6 replies"), "{stdout}");
    assert!(stdout.contains("signalled"), "the kill and pkill report their targets: {stdout}");
    assert!(stdout.contains("Finished processing"), "{stdout}");
}
