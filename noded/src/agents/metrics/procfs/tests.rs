use super::*;
use crate::agents::metrics::fake::fake_proc;

#[test]
fn reads_a_proc_tree_and_rates_appear_from_the_second_read() {
    let tmp = tempfile::tempdir().unwrap();
    fake_proc(tmp.path(), "9.50 4.00 1.25", "100 0 50 800 50 0 0 0 0 0", (1000, 2000));
    let mut reader = ProcReader::new(tmp.path());
    let mut first = BTreeMap::new();
    assert_eq!(reader.read(&mut first), Vec::<String>::new());
    assert_eq!((first["load1"], first["load5"], first["load15"]), (9.5, 4.0, 1.25));
    assert_eq!((first["processes"], first["zombies"]), (2.0, 1.0));
    assert_eq!(first["mem_used_bytes"], 750.0 * 1024.0);
    assert_eq!(first["mem_used_pct"], 75.0);
    assert_eq!(first["swap_used_pct"], 25.0);
    assert!(first.contains_key("disk_used_pct:/"), "{first:?}");
    assert!(!first.keys().any(|k| k.starts_with("cpu_") || k.starts_with("net_")), "no rates yet: {first:?}");

    // 100 more ticks: 60 user, 20 system, 10 iowait, 10 idle.
    fake_proc(tmp.path(), "9.50 4.00 1.25", "160 0 70 810 60 0 0 0 0 0", (5000, 2000));
    let mut second = BTreeMap::new();
    reader.read(&mut second);
    assert_eq!((second["cpu_user_pct"], second["cpu_system_pct"], second["cpu_iowait_pct"]), (60.0, 20.0, 10.0));
    assert_eq!(second["cpu_busy_pct"], 80.0);
    assert!(second["net_rx_bytes_per_s:eth0"] > 0.0);
    assert_eq!(second["net_tx_bytes_per_s:eth0"], 0.0);
    assert!(!second.contains_key("net_rx_bytes_per_s:lo"));
}

#[test]
fn a_missing_file_is_reported_and_the_rest_still_read() {
    let tmp = tempfile::tempdir().unwrap();
    fake_proc(tmp.path(), "1 2 3", "1 0 1 1 0 0 0 0", (0, 0));
    std::fs::remove_file(tmp.path().join("meminfo")).unwrap();
    let mut out = BTreeMap::new();
    let problems = ProcReader::new(tmp.path()).read(&mut out);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("meminfo"));
    assert_eq!(out["load1"], 1.0);
}

#[test]
fn mounts_keep_local_disks_once_per_device() {
    let mounts = "/dev/sda1 / ext4 rw 0 0\n/dev/sda1 /etc/hosts ext4 rw 0 0\ntmpfs /run tmpfs rw 0 0\n\
                  srv:/x /mnt/nfs nfs4 rw 0 0\n/dev/sdb1 /srv/my\\040data xfs rw 0 0\nsshfs#a /mnt/s fuse.sshfs rw 0 0\n";
    assert_eq!(disk_mounts(mounts), ["/", "/srv/my data"]);
}

#[test]
fn the_state_follows_the_last_parenthesis() {
    assert_eq!(process_state("12 (we (ird) name) Z 1"), Some('Z'));
    assert_eq!(process_state("garbage"), None);
}
