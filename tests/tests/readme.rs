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

/// A loopback port nothing listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn running_a_real_fleet_runs_as_written() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let block = block_after(&readme, "## Running a real fleet");
    // Sections start with "# 1.", "# 2.", "# 3.": the hub host, each node host, the admin.
    let mut sections: Vec<Vec<String>> = Vec::new();
    for line in block.lines() {
        if line.starts_with("# ") && line[2..].chars().next().is_some_and(|c| c.is_ascii_digit()) {
            sections.push(Vec::new());
            continue;
        }
        let cmd = line.split("  #").next().unwrap().trim();
        if !cmd.is_empty() {
            sections.last_mut().expect("a command before the first section").push(cmd.to_string());
        }
    }
    assert_eq!(sections.len(), 3, "hub, nodes, admin: {block}");
    let commands: usize = sections.iter().map(Vec::len).sum();
    assert!(commands <= 8, "the walkthrough promises at most 8 commands, it has {commands}");
    let work = tempfile::tempdir().unwrap();
    let t = work.path().display().to_string();
    let checked = |cmd: &str| {
        if cmd.ends_with('&') {
            return format!("{cmd}\n");
        }
        let quoted = cmd.replace('\'', "'\\''");
        format!("{cmd}\nrc=$?; [ $rc -eq 0 ] || {{ echo 'FAILED (exit '$rc'): {quoted}' >&2; status=1; }}\n")
    };
    let mut script = format!("set -u\nstatus=0\nexport HUB=127.0.0.1:{}\n", free_port());
    // The hub host.
    script.push_str(&format!("export FLEET_CONFIG_DIR={t}/hub/etc FLEET_STATE_DIR={t}/hub/var\n"));
    sections[0].iter().for_each(|c| script.push_str(&checked(c)));
    // Three node hosts, each with its own directories and identity.
    for n in 1..=3 {
        script.push_str(&format!("export FLEET_CONFIG_DIR={t}/node{n}/etc FLEET_STATE_DIR={t}/node{n}/var NODED_IDENTITY=node-0{n}\n"));
        sections[1].iter().for_each(|c| script.push_str(&checked(c)));
    }
    // Not in the README: on separate machines an admin takes longer than this to get to step 3.
    script.push_str(&format!(
        "for i in $(seq 100); do [ $(ls {t}/hub/var/enroll/accepted | wc -l) -ge 3 ] && break; sleep 0.1; done; sleep 0.5\n"
    ));
    // The admin.
    script.push_str(&format!(
        "unset FLEET_CONFIG_DIR FLEET_STATE_DIR NODED_IDENTITY\nexport HOME={t}/admin XDG_CONFIG_HOME={t}/admin/.config\n"
    ));
    sections[2].iter().for_each(|c| script.push_str(&checked(c)));
    script.push_str("kill $(jobs -p) 2>/dev/null\nwait\nexit $status\n");
    let bin_dir = fleet_bin().parent().unwrap().to_path_buf();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let mut cmd = Command::new("bash");
    cmd.arg("-c").arg(&script).current_dir(work.path()).env("PATH", path);
    for var in
        ["FLEET_HUB", "FLEET_KEY", "FLEET_HUB_KEY", "FLEET_NODES_DIR", "FLEET_CONFIG", "FLEET_CALLER", "XDG_STATE_HOME", "NODED_CONFIG"]
    {
        cmd.env_remove(var);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let context = format!("--- script ---\n{script}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}");
    assert!(out.status.success(), "the walkthrough failed:\n{context}");
    assert!(stdout.contains("3 replies"), "three nodes answer the admin's ping:\n{context}");
    for n in 1..=3 {
        assert!(stdout.contains(&format!("node-0{n} ")), "node-0{n} answered:\n{context}");
    }
    let hub_cfg = std::fs::metadata(work.path().join("hub/etc")).unwrap();
    assert_eq!(std::os::unix::fs::PermissionsExt::mode(&hub_cfg.permissions()) & 0o777, 0o700, "created 0700");
}
