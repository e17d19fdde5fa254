use super::*;

const HEADER: &str = "Name                                        ID   Mem VCPUs\tState\tTime(s)";

/// A row exactly as xl's printf writes it.
fn xl_row(name: &str, id: u32, mem: u64, vcpus: u32, state: &str, time: f64) -> String {
    format!("{name:<40} {id:>5} {mem:>5} {vcpus:>5}     {state}  {time:>8.1}")
}

#[test]
fn a_typical_list_parses_with_dom0_first() {
    let text = format!(
        "{HEADER}\n{}\n{}\n{}\n",
        xl_row("Domain-0", 0, 2048, 4, "r-----", 81234.5),
        xl_row("web1", 3, 1024, 2, "-b----", 120.7),
        xl_row("db1", 7, 8192, 8, "r-----", 5.0),
    );
    let rows = parse_xl_list(&text).unwrap();
    assert_eq!(rows.len(), 3);
    assert!(rows[0].is_dom0());
    assert_eq!(rows[0].cpu_time, 81234.5);
    let web = &rows[1];
    assert_eq!((web.name.as_str(), web.id, web.mem, web.vcpus), ("web1", 3, 1024, 2));
    assert!(web.blocked && !web.running && !web.paused && !web.shutdown && !web.dying);
    assert_eq!(web.state, "-b----");
    assert_eq!(web.cpu_time, 120.7);
    assert!(rows[2].running);
}

#[test]
fn names_longer_than_the_column_push_the_rest_right() {
    let long = "a-very-long-domain-name-for-the-billing-cluster-node-0001";
    assert!(long.len() > 40);
    let text = format!("{HEADER}\n{}\n", xl_row(long, 12, 4096, 2, "-b----", 99999.9));
    let rows = parse_xl_list(&text).unwrap();
    assert_eq!(rows[0].name, long);
    assert_eq!((rows[0].id, rows[0].mem, rows[0].vcpus, rows[0].cpu_time), (12, 4096, 2, 99999.9));
    // Exactly 40 characters leaves one space before the id.
    let forty = "x".repeat(40);
    let rows = parse_xl_list(&xl_row(&forty, 1, 512, 1, "r-----", 1.0)).unwrap();
    assert_eq!(rows[0].name, forty);
    // A large cpu time overflows its 8 columns.
    let rows = parse_xl_list(&xl_row("busy", 2, 512, 1, "r-----", 123456789.5)).unwrap();
    assert_eq!(rows[0].cpu_time, 123456789.5);
}

#[test]
fn paused_crashed_and_dying_flags() {
    let text = [
        xl_row("paused", 4, 512, 1, "--p---", 3.2),
        xl_row("crashed", 5, 512, 1, "---sc-", 44.0),
        xl_row("dying", 6, 512, 1, "-----d", 0.1),
        xl_row("rebooting", 8, 512, 1, "---sr-", 7.0),
        xl_row("poweredoff-dying", 9, 512, 1, "---s-d", 7.0),
    ]
    .join("\n");
    let rows = parse_xl_list(&text).unwrap();
    assert!(rows[0].paused && !rows[0].running && !rows[0].shutdown);
    assert!(rows[1].shutdown && rows[1].crashed() && rows[1].shutdown_reason == "crash");
    assert!(rows[2].dying && !rows[2].shutdown && rows[2].shutdown_reason.is_empty());
    assert_eq!(rows[3].shutdown_reason, "reboot");
    assert!(rows[4].shutdown && rows[4].dying && rows[4].shutdown_reason.is_empty());
}

#[test]
fn header_only_and_empty_output_are_no_domains() {
    assert_eq!(parse_xl_list(&format!("{HEADER}\n")).unwrap(), vec![]);
    assert_eq!(parse_xl_list("").unwrap(), vec![]);
    assert_eq!(parse_xl_list("\n\n").unwrap(), vec![]);
}

#[test]
fn garbage_names_its_line() {
    let text = format!("{HEADER}\n{}\nlibxl: error: something went wrong\n", xl_row("web1", 3, 1024, 2, "-b----", 1.0));
    let e = parse_xl_list(&text).unwrap_err();
    assert_eq!(e.line_no, 3);
    assert_eq!(e.line, "libxl: error: something went wrong");
    assert!(e.to_string().starts_with("cannot parse `xl list` output line 3 ("), "{e}");
    assert!(e.to_string().ends_with(": \"libxl: error: something went wrong\""), "{e}");

    let bad_flags = xl_row("web1", 3, 1024, 2, "-x----", 1.0);
    let e = parse_xl_list(&bad_flags).unwrap_err();
    assert!(e.reason.contains("'x' where 'b'"), "{e}");
    let bad_reason = xl_row("web1", 3, 1024, 2, "---sq-", 1.0);
    assert!(parse_xl_list(&bad_reason).unwrap_err().reason.contains("unknown shutdown reason 'q'"));
    let short_flags = xl_row("web1", 3, 1024, 2, "r--", 1.0);
    assert!(parse_xl_list(&short_flags).unwrap_err().reason.contains("six flags"));
    assert!(parse_xl_list("web1 3 1024 two -b---- 1.0").unwrap_err().reason.contains("vcpus 'two'"));
    assert!(parse_xl_list("   3 1024 2 -b---- 1.0").unwrap_err().reason.contains("name"));
    // A header after rows is not a header.
    let late = format!("{}\n{HEADER}\n", xl_row("web1", 3, 1024, 2, "-b----", 1.0));
    assert_eq!(parse_xl_list(&late).unwrap_err().line_no, 2);
}

const INFO: &str = "host                   : xen-01
release                : 6.1.0-18-amd64
version                : #1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01)
machine                : x86_64
nr_cpus                : 8
max_cpu_id             : 7
nr_nodes               : 1
cores_per_socket       : 4
threads_per_core       : 2
cpu_mhz                : 2893.202
hw_caps                : bfebfbff:77fafbff:2c100800:00000121:0000000f:009c6fbf:00000000:00000100
virt_caps              : pv hvm hvm_directio pv_directio hap shadow
total_memory           : 32583
free_memory            : 20210
sharing_freed_memory   : 0
sharing_used_memory    : 0
outstanding_claims     : 0
free_cpus              : 0
xen_major              : 4
xen_minor              : 17
xen_extra              : .3-pre
xen_version            : 4.17.3-pre
xen_caps               : xen-3.0-x86_64 hvm-3.0-x86_32 hvm-3.0-x86_32p hvm-3.0-x86_64
xen_scheduler          : credit2
xen_pagesize           : 4096
platform_params        : virt_start=0xffff800000000000
xen_changeset          :
xen_commandline        : placeholder dom0_mem=2048M,max:2048M
cc_compiler            : x86_64-linux-gnu-gcc (Debian 12.2.0-14) 12.2.0
cc_compile_by          : pkg-xen-devel
cc_compile_domain      : lists.alioth.debian.org
cc_compile_date        : Tue Feb 20 10:00:00 UTC 2024
build_id               : 1a2b3c
xend_config_format     : 4
";

#[test]
fn info_parses_cpus_memory_and_every_field() {
    let info = parse_xl_info(INFO).unwrap();
    assert_eq!((info.nr_cpus, info.total_memory, info.free_memory), (8, 32583, 20210));
    assert_eq!(info.xen_version, "4.17.3-pre");
    assert_eq!(info.fields["cc_compile_date"], "Tue Feb 20 10:00:00 UTC 2024");
    assert_eq!(info.fields["xen_changeset"], "");
    assert_eq!(info.fields["host"], "xen-01");
    // Older xl prints no xen_version line.
    let old: String = INFO.lines().filter(|l| !l.starts_with("xen_version")).map(|l| format!("{l}\n")).collect();
    assert_eq!(parse_xl_info(&old).unwrap().xen_version, "4.17.3-pre");
}

#[test]
fn info_errors_name_the_line() {
    let e = parse_xl_info(&INFO.replace("nr_cpus                : 8", "nr_cpus                : eight")).unwrap_err();
    assert_eq!(e.line_no, 5);
    assert!(e.to_string().contains("nr_cpus is not a whole number"), "{e}");
    assert!(e.to_string().contains("eight"), "{e}");
    let e = parse_xl_info(&format!("{INFO}WARNING: something odd\n")).unwrap_err();
    assert_eq!(e.line, "WARNING: something odd");
    assert_eq!(e.line_no, 35);
    assert!(parse_xl_info("host : x\n").unwrap_err().reason.contains("padded to 23 columns"));
    let e = parse_xl_info(&format!("{:<23}: x\n", "host")).unwrap_err();
    assert!(e.to_string().contains("no nr_cpus field"), "{e}");
    assert!(parse_xl_info("just words\n").unwrap_err().reason.contains("name : value"));
}

#[test]
fn loadavg_parses_the_three_averages() {
    assert_eq!(parse_loadavg("0.16 0.20 0.18 1/123 4567\n").unwrap(), [0.16, 0.20, 0.18]);
    assert!(parse_loadavg("0.16 0.20").unwrap_err().contains("fewer than three"));
    assert!(parse_loadavg("0.16 x 0.1 1/2 3").unwrap_err().contains("'x'"));
}

#[test]
fn the_migration_address_comes_from_the_caller_then_the_map() {
    let map: HashMap<String, String> = [("xen-02".to_string(), "10.9.9.2".to_string())].into();
    assert_eq!(migration_address("xen-02", "", &map), "10.9.9.2");
    assert_eq!(migration_address("xen-03", "", &map), "xen-03");
    assert_eq!(migration_address("xen-02", "192.168.1.2", &map), "192.168.1.2");
}

#[test]
fn activation_needs_an_executable_file() {
    let dir = tempfile::tempdir().unwrap();
    let xl = dir.path().join("xl");
    assert!(!activation_check(&xl));
    std::fs::write(&xl, "#!/bin/sh\n").unwrap();
    assert!(!activation_check(&xl));
    std::fs::set_permissions(&xl, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(activation_check(&xl));
    assert!(!activation_check(dir.path()));
}

fn agent_with(xl: &Path) -> Arc<Xl> {
    XenAgent::new(xl.to_path_buf(), HashMap::new()).xl
}

#[tokio::test]
async fn a_missing_xl_answers_clearly() {
    let agent = agent_with(Path::new("/nonexistent/fleet-test/xl"));
    let e = agent.xl_list().await.unwrap_err();
    assert_eq!(e.status, Status::UnknownError);
    assert!(e.message.starts_with("xl not found at /nonexistent/fleet-test/xl"), "{}", e.message);
}

#[tokio::test]
async fn xl_output_is_parsed_and_garbage_quoted() {
    let dir = tempfile::tempdir().unwrap();
    let xl = dir.path().join("xl");
    let rows = format!("{HEADER}\n{}\n{}\n", xl_row("Domain-0", 0, 2048, 4, "r-----", 10.0), xl_row("web1", 3, 1024, 2, "-b----", 5.5));
    std::fs::write(dir.path().join("list.txt"), &rows).unwrap();
    std::fs::write(&xl, format!("#!/bin/sh\ncat {}\n", dir.path().join("list.txt").display())).unwrap();
    std::fs::set_permissions(&xl, std::fs::Permissions::from_mode(0o755)).unwrap();
    let agent = agent_with(&xl);
    let v = list(&agent).await.unwrap();
    assert_eq!(v["domu_count"], 1);
    assert_eq!(v["domus"][0]["name"], "web1");
    assert_eq!(v["dom0"]["mem"], 2048);
    let found = find(&agent, &serde_json::from_value(json!({"domain": "web1"})).unwrap()).await.unwrap();
    assert_eq!(found["present"], true);
    let absent = find(&agent, &serde_json::from_value(json!({"domain": "web9"})).unwrap()).await.unwrap();
    assert_eq!(absent["present"], false);

    std::fs::write(dir.path().join("list.txt"), format!("{rows}Segmentation fault\n")).unwrap();
    let e = list(&agent).await.unwrap_err();
    assert_eq!(e.status, Status::UnknownError);
    assert!(e.message.contains("\"Segmentation fault\""), "{}", e.message);
}

/// The stand-in must print exactly xl's formats: the agent's strict parsers read it unchanged.
#[tokio::test]
async fn the_standin_speaks_xl() {
    let standin = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/support/xl-standin");
    let state = tempfile::tempdir().unwrap();
    let seeded = std::process::Command::new(&standin)
        .args(["seed", "--host", "xen-01", "--load", "1.5,1.0,0.5", "--domu", "web1:1024:2:120.5:0.5"])
        .args(["--domu", "a-very-long-domain-name-for-the-billing-cluster-node-0001:512:1:5", "--domu", "gone:256:1:3:0:---sc-"])
        .env(STANDIN_ENV, state.path())
        .status()
        .unwrap();
    assert!(seeded.success());
    let xl = XenAgent::simulated(standin, state.path(), "xen-01", HashMap::new()).xl;
    let v = list(&xl).await.unwrap();
    assert_eq!(v["domu_count"], 3);
    assert_eq!(v["domu_memory"], 1792);
    assert_eq!(v["dom0"]["name"], DOMAIN0);
    assert_eq!(v["domus"][1]["name"], "a-very-long-domain-name-for-the-billing-cluster-node-0001");
    assert_eq!(v["domus"][2]["shutdown_reason"], "crash");
    let v = info(&xl).await.unwrap();
    assert_eq!(
        (v["nr_cpus"].as_u64(), v["total_memory"].as_u64(), v["free_memory"].as_u64()),
        (Some(8), Some(32768), Some(32768 - 2048 - 1792))
    );
    assert_eq!((v["load_1"].as_f64(), v["load_15"].as_f64()), (Some(1.5), Some(0.5)));
    assert_eq!(v["simulated"], true);
    let v = stat(&xl).await.unwrap();
    assert_eq!(v["domu_count"], 3);
    assert!(v["domus"][0]["cpu_time"].as_f64().unwrap() >= 120.5);
}

#[tokio::test]
async fn a_hung_xl_is_killed_at_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let xl = dir.path().join("xl");
    std::fs::write(&xl, "#!/bin/sh\necho starting >&2\nexec sleep 30\n").unwrap();
    std::fs::set_permissions(&xl, std::fs::Permissions::from_mode(0o755)).unwrap();
    let agent = agent_with(&xl);
    let started = Instant::now();
    let e = agent.run_xl(&["list"], Duration::from_millis(300), None).await.err().expect("times out");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(e.status, Status::Aborted);
    assert!(e.message.contains("`xl list` did not finish within 0.3 s and was killed; it last said:\nstarting"), "{}", e.message);
}
