//! Balancer decisions on traces of observations.
use super::*;

const MIN: u64 = 60_000;
const T0: u64 = 1_700_000_000_000;

/// A recorded trace: one sample per minute per dom0, `loads[i]` at minute i, and each domU's
/// CPU time growing at its rate (CPU seconds per minute).
struct Trace {
    obs: Observations,
}

impl Trace {
    fn new() -> Trace {
        Trace { obs: Observations::default() }
    }

    fn dom0(mut self, name: &str, loads: &[f64], domus: &[(&str, f64)]) -> Trace {
        for (i, load) in loads.iter().enumerate() {
            let domus = domus.iter().map(|(n, rate)| DomuSample { name: n.to_string(), cpu_time: 100.0 + rate * i as f64 }).collect();
            self.obs.record(name, Sample { at_ms: T0 + i as u64 * MIN, load: *load, domus });
        }
        self
    }

    fn moved(mut self, domu: &str, from: &str, to: &str, at_ms: u64) -> Trace {
        self.obs.record_migration(PastMigration { at_ms, domu: domu.into(), from: from.into(), to: to.into() });
        self
    }

    /// The time of minute `i` of the trace.
    fn at(i: u64) -> u64 {
        T0 + i * MIN
    }
}

fn policy() -> BalancerPolicy {
    BalancerPolicy { interval: 60.0, ..BalancerPolicy::default() }
}

fn moves(plan: &Plan) -> Vec<(String, String, String)> {
    plan.migrations.iter().map(|m| (m.domu.clone(), m.from.clone(), m.to.clone())).collect()
}

fn mv(domu: &str, from: &str, to: &str) -> (String, String, String) {
    (domu.into(), from.into(), to.into())
}

fn rejected_why<'a>(plan: &'a Plan, considered: Considered, name: &str) -> Vec<&'a str> {
    plan.rejected.iter().filter(|r| r.considered == considered && r.name == name).map(|r| r.why.as_str()).collect()
}

/// hypervisor3 climbs over 1.0 at minute 1 and stays there; hypervisor2 idles.
fn sustained() -> Trace {
    Trace::new().dom0("hypervisor3", &[0.4, 1.2, 1.4, 1.6, 1.7, 1.8, 1.9, 2.1], &[("test1", 0.05), ("test3", 0.3), ("web9", 0.1)]).dom0(
        "hypervisor2",
        &[0.2, 0.2, 0.1, 0.1, 0.2, 0.1, 0.2, 0.16],
        &[],
    )
}

#[test]
fn a_sustained_overload_moves_the_hungriest_domu() {
    let plan = decide(&policy(), &sustained().obs, Trace::at(7));
    assert_eq!(moves(&plan), vec![mv("test3", "hypervisor3", "hypervisor2")]);
    let m = &plan.migrations[0];
    assert_eq!(m.reason, "hypervisor3 over 1.0 for 6 min; test3 ate 1.8 s of 6 min; hypervisor2 has 0 of 10 VMs, load 0.16");
    assert_eq!(m.address, "hypervisor2");
    assert_eq!(m.window_s, 360.0);
    let h3 = plan.dom0s.iter().find(|d| d.name == "hypervisor3").unwrap();
    assert!(h3.overloaded && !h3.stale);
    assert_eq!(h3.over_for_s, 360.0);
    assert_eq!(h3.summary, "load 2.1, over 1.0 for 6 min, 3 of 10 VMs");
}

#[test]
fn the_host_mapping_gives_the_migration_address() {
    let mut p = policy();
    p.host_mapping.insert("hypervisor2".into(), "10.10.0.2".into());
    let plan = decide(&p, &sustained().obs, Trace::at(7));
    assert_eq!(plan.migrations[0].address, "10.10.0.2");
}

#[test]
fn a_spike_shorter_than_max_over_does_not_trigger() {
    let trace = Trace::new().dom0("hypervisor3", &[0.4, 0.5, 0.6, 0.5, 0.4, 0.7, 2.5, 3.0, 2.8], &[("test3", 0.3)]).dom0(
        "hypervisor2",
        &[0.1; 9],
        &[],
    );
    let plan = decide(&policy(), &trace.obs, Trace::at(8));
    assert!(plan.migrations.is_empty(), "{plan:?}");
    assert_eq!(rejected_why(&plan, Considered::Source, "hypervisor3"), ["over 1.0 for 2 min, under max_over 5 min"]);
    // One dip under the threshold restarts the count.
    let trace =
        Trace::new().dom0("hypervisor3", &[1.5, 1.5, 1.5, 1.5, 0.9, 1.5, 1.5, 1.5], &[("test3", 0.3)]).dom0("hypervisor2", &[0.1; 8], &[]);
    let plan = decide(&policy(), &trace.obs, Trace::at(7));
    assert!(plan.migrations.is_empty(), "{plan:?}");
    assert_eq!(rejected_why(&plan, Considered::Source, "hypervisor3"), ["over 1.0 for 2 min, under max_over 5 min"]);
}

#[test]
fn cooldowns_prevent_ping_pong_between_two_hosts() {
    // test3 moved from h1 to h2 at minute 0; now h2 is the one over the threshold and h1 idles.
    let p = BalancerPolicy { vm_cooldown: 30.0, host_cooldown: 10.0, ..policy() };
    let after =
        |minutes: u64| {
            let loads: Vec<f64> = (0..=minutes).map(|i| if i == 0 { 0.3 } else { 1.5 }).collect();
            Trace::new()
                .dom0("h2", &loads, &[("test3", 0.5), ("quiet", 0.01)])
                .dom0("h1", &vec![0.1; loads.len()], &[("other", 0.01)])
                .moved("test3", "h1", "h2", Trace::at(0))
        };
    // Within host_cooldown, h2 is left to settle and h1 receives nothing.
    let plan = decide(&p, &after(7).obs, Trace::at(7));
    assert!(plan.migrations.is_empty(), "{plan:?}");
    assert_eq!(
        rejected_why(&plan, Considered::Source, "h2"),
        ["over 1.0 for 6 min, but settling: received test3 from h1 7 min ago (host_cooldown 10 min)"]
    );
    // After host_cooldown, test3 is still within vm_cooldown: it stays, and the next domU goes.
    let plan = decide(&p, &after(12).obs, Trace::at(12));
    assert_eq!(moves(&plan), vec![mv("quiet", "h2", "h1")]);
    assert_eq!(rejected_why(&plan, Considered::Domu, "test3"), ["on h2: moved from h1 to h2 12 min ago (vm_cooldown 30 min)"]);
    // After vm_cooldown it may move again.
    let plan = decide(&p, &after(31).obs, Trace::at(31));
    assert_eq!(moves(&plan), vec![mv("test3", "h2", "h1")]);
    // A destination that just sent a domU is left alone too.
    let trace = sustained().moved("x", "hypervisor2", "elsewhere", Trace::at(5));
    let plan = decide(&p, &trace.obs, Trace::at(7));
    assert!(plan.migrations.is_empty());
    assert_eq!(
        rejected_why(&plan, Considered::Destination, "hypervisor2"),
        ["settling: sent x to elsewhere 2 min ago (host_cooldown 10 min)"]
    );
}

#[test]
fn capacity_and_load_limits_exclude_candidates() {
    let ten: Vec<(String, f64)> = (0..10).map(|i| (format!("full{i}"), 0.0)).collect();
    let ten: Vec<(&str, f64)> = ten.iter().map(|(n, r)| (n.as_str(), *r)).collect();
    let base = || {
        Trace::new().dom0("h1", &[1.5; 7], &[("busy", 0.4)]).dom0("h2", &[0.05; 7], &ten).dom0("h3", &[0.6; 7], &[]).dom0(
            "h4",
            &[0.2, 0.2, 0.2, 0.2, 1.2, 1.2, 1.2],
            &[],
        )
    };
    let plan = decide(&policy(), &base().obs, Trace::at(6));
    assert!(plan.migrations.is_empty(), "{plan:?}");
    assert_eq!(rejected_why(&plan, Considered::Destination, "h2"), ["has 10 of 10 VMs (max_vm_per_host)"]);
    assert_eq!(rejected_why(&plan, Considered::Destination, "h3"), ["load 0.6 is not under max_load_candidate 0.5"]);
    assert_eq!(rejected_why(&plan, Considered::Destination, "h4"), ["load 1.2 is over load_threshold 1.0"]);
    assert_eq!(rejected_why(&plan, Considered::Source, "h1"), ["over 1.0 for 6 min, but no dom0 can take busy (see the destinations)"]);
    // h4 is over too, but not for max_over yet.
    assert_eq!(rejected_why(&plan, Considered::Source, "h4"), ["over 1.0 for 2 min, under max_over 5 min"]);
    // A dom0 with room and a low load takes it.
    let plan = decide(&policy(), &base().dom0("h5", &[0.3; 7], &[("a", 0.0), ("b", 0.0)]).obs, Trace::at(6));
    assert_eq!(moves(&plan), vec![mv("busy", "h1", "h5")]);
    assert_eq!(plan.migrations[0].reason, "h1 over 1.0 for 6 min; busy ate 2.4 s of 6 min; h5 has 2 of 10 VMs, load 0.3");
}

#[test]
fn pinned_domus_never_move() {
    let p = BalancerPolicy { pinned: vec!["test3".into()], ..policy() };
    let plan = decide(&p, &sustained().obs, Trace::at(7));
    assert_eq!(moves(&plan), vec![mv("web9", "hypervisor3", "hypervisor2")]);
    assert_eq!(rejected_why(&plan, Considered::Domu, "test3"), ["on hypervisor3: pinned by the policy"]);
    let p = BalancerPolicy { pinned: vec!["test1".into(), "test3".into(), "web9".into()], ..policy() };
    let plan = decide(&p, &sustained().obs, Trace::at(7));
    assert!(plan.migrations.is_empty());
    assert_eq!(rejected_why(&plan, Considered::Source, "hypervisor3"), ["over 1.0 for 6 min, but none of its domUs may move"]);
}

#[test]
fn hosts_in_maintenance_neither_send_nor_receive() {
    let p = BalancerPolicy { maintenance: vec!["hypervisor3".into()], ..policy() };
    let plan = decide(&p, &sustained().obs, Trace::at(7));
    assert!(plan.migrations.is_empty());
    assert_eq!(
        rejected_why(&plan, Considered::Source, "hypervisor3"),
        ["over 1.0 for 6 min, but in maintenance: it neither sends nor receives"]
    );
    let p = BalancerPolicy { maintenance: vec!["hypervisor2".into()], ..policy() };
    let trace = sustained().dom0("hypervisor4", &[0.3; 8], &[]);
    let plan = decide(&p, &trace.obs, Trace::at(7));
    assert_eq!(moves(&plan), vec![mv("test3", "hypervisor3", "hypervisor4")]);
    assert_eq!(rejected_why(&plan, Considered::Destination, "hypervisor2"), ["in maintenance: it neither sends nor receives"]);
}

#[test]
fn the_plan_is_deterministic() {
    // Two domUs ate the same and two destinations look the same: names break the ties.
    let build = |reverse: bool| {
        let mut domus = vec![("b-vm", 0.2), ("a-vm", 0.2), ("c-vm", 0.1)];
        let mut dests = vec!["z-idle", "m-idle"];
        if reverse {
            domus.reverse();
            dests.reverse();
        }
        let mut t = Trace::new().dom0("src", &[1.5; 7], &domus);
        for d in dests {
            t = t.dom0(d, &[0.1; 7], &[("x", 0.0)]);
        }
        t
    };
    let first = decide(&policy(), &build(false).obs, Trace::at(6));
    assert_eq!(moves(&first), vec![mv("a-vm", "src", "m-idle")]);
    for _ in 0..5 {
        assert_eq!(decide(&policy(), &build(false).obs, Trace::at(6)), first);
    }
    assert_eq!(decide(&policy(), &build(true).obs, Trace::at(6)), first);
}

#[test]
fn max_migrations_per_round_is_respected() {
    let trace = Trace::new()
        .dom0("src-a", &[1.5; 7], &[("a1", 0.3)])
        .dom0("src-b", &[2.5; 7], &[("b1", 0.3)])
        .dom0("src-c", &[2.0; 7], &[("c1", 0.3)])
        .dom0("dst-1", &[0.1; 7], &[])
        .dom0("dst-2", &[0.2; 7], &[])
        .dom0("dst-3", &[0.3; 7], &[]);
    let p = BalancerPolicy { max_migrations_per_round: 2, ..policy() };
    let plan = decide(&p, &trace.obs, Trace::at(6));
    // The most loaded sources go first, each to its own destination.
    assert_eq!(moves(&plan), vec![mv("b1", "src-b", "dst-1"), mv("c1", "src-c", "dst-2")]);
    assert_eq!(
        rejected_why(&plan, Considered::Source, "src-a"),
        ["over 1.0 for 6 min, but this round already has 2 migration(s) (max_migrations_per_round)"]
    );
    let plan = decide(&policy(), &trace.obs, Trace::at(6));
    assert_eq!(plan.migrations.len(), 1);
}

#[test]
fn a_dom0_gone_quiet_is_neither_source_nor_destination() {
    let trace = sustained().dom0("hypervisor9", &[0.0], &[]);
    let plan = decide(&policy(), &trace.obs, Trace::at(7));
    assert_eq!(moves(&plan), vec![mv("test3", "hypervisor3", "hypervisor2")]);
    let h9 = plan.dom0s.iter().find(|d| d.name == "hypervisor9").unwrap();
    assert!(h9.stale);
    assert_eq!(h9.summary, "no sample for 7 min, 0 of 10 VMs");
    // The source itself gone quiet: nothing is decided on old news.
    let plan = decide(&policy(), &sustained().obs, Trace::at(12));
    assert!(plan.migrations.is_empty());
    assert_eq!(rejected_why(&plan, Considered::Source, "hypervisor3"), ["no sample for 5 min"]);
}

#[test]
fn load_that_is_not_the_domus_moves_nothing() {
    let trace = Trace::new().dom0("h1", &[1.5; 7], &[("idle", 0.0)]).dom0("h2", &[0.1; 7], &[]);
    let plan = decide(&policy(), &trace.obs, Trace::at(6));
    assert!(plan.migrations.is_empty());
    assert_eq!(
        rejected_why(&plan, Considered::Source, "h1"),
        ["over 1.0 for 6 min, but no movable domU ate CPU over the last 6 min: the load is not theirs"]
    );
}

#[test]
fn history_is_bounded() {
    let mut obs = sustained().moved("old", "a", "b", Trace::at(0) - 60 * MIN).obs;
    let p = BalancerPolicy { max_over: 2.0, ..policy() };
    obs.forget_old(&p, Trace::at(7));
    // 2 min of max_over plus 4 intervals: minutes 1..=7 stay.
    assert_eq!(obs.dom0s["hypervisor3"].len(), 7);
    assert!(obs.migrations.is_empty());
    obs.forget_old(&p, Trace::at(100));
    assert_eq!(obs.dom0s["hypervisor2"].len(), 1, "the latest sample is always kept");
    assert_eq!(obs.dom0s["hypervisor3"].len(), 7, "an overload run is kept");
    obs.forget_old(&p, Trace::at(25 * 60));
    assert_eq!(obs.dom0s["hypervisor3"].len(), 1, "up to a day");
    // An overload still going on keeps its whole run, so its length is told truly.
    let mut obs = Trace::new().dom0("h", &[0.5, 0.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5], &[]).obs;
    obs.forget_old(&p, Trace::at(11));
    assert_eq!(obs.dom0s["h"].len(), 10);
    assert_eq!(decide(&p, &obs, Trace::at(11)).dom0s[0].summary, "load 1.5, over 1.0 for 9 min, 0 of 10 VMs");
}

#[test]
fn policy_files_parse_with_defaults_and_refuse_typos() {
    let p = BalancerPolicy::from_toml("", "p.toml").unwrap();
    assert_eq!(p, BalancerPolicy::default());
    let text = "interval = 30\nload_threshold = 1.5\nmax_over = 6\nmax_vm_per_host = 8\nmax_load_candidate = 0.8\n\
                max_migrations_per_round = 2\nvm_cooldown = 45\nhost_cooldown = 15\npinned = [\"db1\"]\n\
                maintenance = [\"xen-09\"]\n[host_mapping]\nxen-02 = \"10.0.0.2\"\n";
    let p = BalancerPolicy::from_toml(text, "p.toml").unwrap();
    assert_eq!(p.interval, 30.0);
    assert_eq!(p.max_vm_per_host, 8);
    assert_eq!(p.address_of("xen-02"), "10.0.0.2");
    assert_eq!(p.address_of("xen-03"), "xen-03");
    assert_eq!(p.pinned, ["db1"]);

    let e = BalancerPolicy::from_toml("interval = 30\nmax_overr = 5\n", "/etc/fleet/balancer.toml").unwrap_err().to_string();
    assert!(e.starts_with("/etc/fleet/balancer.toml:2: unknown field `max_overr`"), "{e}");
    let e = BalancerPolicy::from_toml("interval = 0\n", "p.toml").unwrap_err().to_string();
    assert_eq!(e, "p.toml: interval: must be a positive number of seconds (got 0)");
    let e = BalancerPolicy::from_toml("max_load_candidate = 2.0\n", "p.toml").unwrap_err().to_string();
    assert_eq!(e, "p.toml: max_load_candidate: 2 is above load_threshold 1: a dom0 could receive a domU while over the threshold");
    let e = BalancerPolicy::from_toml("[host_mapping]\nxen-02 = \"-oProxyCommand=x\"\n", "p.toml").unwrap_err().to_string();
    assert_eq!(e, "p.toml: host_mapping.xen-02: '-oProxyCommand=x' is not a host name or address");
    let e = BalancerPolicy::from_toml("max_vm_per_host = 0\n", "p.toml").unwrap_err().to_string();
    assert_eq!(e, "p.toml: max_vm_per_host: must be at least 1");
}

#[test]
fn formats_read_as_an_admin_writes() {
    assert_eq!(fmt_load(1.0), "1.0");
    assert_eq!(fmt_load(0.16), "0.16");
    assert_eq!(fmt_load(2.5), "2.5");
    assert_eq!(fmt_duration(30_000), "30 s");
    assert_eq!(fmt_duration(90_500), "90.5 s");
    assert_eq!(fmt_duration(360_000), "6 min");
    assert_eq!(fmt_duration(390_000), "6.5 min");
}

// -------------------------------------------------------------------------------------------------
// Rules in the filter language

/// `policy()` with the `[rules]` table `rules_toml`.
fn ruled(rules_toml: &str) -> BalancerPolicy {
    let p = BalancerPolicy::from_toml(&format!("interval = 60\n[rules]\n{rules_toml}"), "balancer.toml").unwrap();
    assert!(!p.rules.is_empty());
    p
}

/// The sustained trace plus hypervisor1, idler than hypervisor2, and what a gather tells the
/// rules: each dom0's datacenter and free memory, each domU's memory.
fn sustained_in_two_datacenters() -> Trace {
    let mut t = sustained().dom0("hypervisor1", &[0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1], &[]);
    let dom0 = |name: &str, dc: &str, free: u64| crate::xen::Dom0 {
        name: name.into(),
        free_memory: free,
        total_memory: 65536,
        node: crate::xen::NodeFacts { facts: serde_json::json!({ "datacenter": dc }), classes: vec!["xen_prod".into()] },
        ..crate::xen::Dom0::default()
    };
    for d in [dom0("hypervisor1", "ams1", 30000), dom0("hypervisor2", "fra1", 8192), dom0("hypervisor3", "fra1", 1024)] {
        t.obs.dom0_info.insert(d.name.clone(), d);
    }
    for (name, mem) in [("test1", 1024), ("test3", 6144), ("web9", 2048)] {
        let row = DomainRow {
            name: name.into(),
            id: 1,
            mem,
            vcpus: 2,
            state: "r-----".into(),
            running: true,
            blocked: false,
            paused: false,
            shutdown: false,
            shutdown_reason: String::new(),
            dying: false,
            cpu_time: 100.0,
        };
        t.obs.domu_info.insert(name.into(), row);
    }
    t
}

#[test]
fn without_rules_the_idlest_dom0_receives() {
    let plan = decide(&policy(), &sustained_in_two_datacenters().obs, Trace::at(7));
    assert_eq!(moves(&plan), vec![mv("test3", "hypervisor3", "hypervisor1")]);
    assert!(plan.migrations[0].rules.is_empty());
}

#[test]
fn a_movable_rule_forbids_a_move_and_says_so() {
    let p = ruled("movable = \"not name=/^test3$/\"\n");
    let plan = decide(&p, &sustained_in_two_datacenters().obs, Trace::at(7));
    // test3 ate the most but may not move; web9, the next hungriest, goes instead.
    assert_eq!(moves(&plan), vec![mv("web9", "hypervisor3", "hypervisor1")]);
    assert_eq!(
        rejected_why(&plan, Considered::Domu, "test3"),
        ["on hypervisor3: rule movable \"not name=/^test3$/\" is false (name=test3)"]
    );
    assert_eq!(plan.migrations[0].rules, ["rule movable \"not name=/^test3$/\" holds for web9 (name=web9)"]);
    let text = crate::xen::plan_lines(&plan).join("\n");
    assert!(text.contains("     rule movable \"not name=/^test3$/\" holds for web9 (name=web9)\n"), "{text}");
    assert!(text.contains("  domU test3: on hypervisor3: rule movable \"not name=/^test3$/\" is false (name=test3)"), "{text}");
}

#[test]
fn a_receive_rule_refuses_dom0s_with_the_values_it_read() {
    let p = ruled("receive = \"datacenter=fra1 and free_mem_mib>=4096\"\n");
    let plan = decide(&p, &sustained_in_two_datacenters().obs, Trace::at(7));
    assert_eq!(moves(&plan), vec![mv("test3", "hypervisor3", "hypervisor2")]);
    assert_eq!(
        rejected_why(&plan, Considered::Destination, "hypervisor1"),
        ["rule receive \"datacenter=fra1 and free_mem_mib>=4096\" is false for test3 (datacenter=ams1, free_mem_mib=30000)"]
    );
    assert_eq!(
        plan.migrations[0].rules,
        ["rule receive \"datacenter=fra1 and free_mem_mib>=4096\" holds for hypervisor2 taking test3 (datacenter=fra1, free_mem_mib=8192)"]
    );

    // A rule may weigh the domU against the dom0: test3 needs 6 GiB, which no fra1 dom0 has.
    let p = ruled("receive = \"datacenter=fra1 and (domu.mem_mib<4096 or free_mem_mib>=16384)\"\n");
    let plan = decide(&p, &sustained_in_two_datacenters().obs, Trace::at(7));
    assert!(plan.migrations.is_empty());
    assert_eq!(
        rejected_why(&plan, Considered::Destination, "hypervisor2"),
        [
            "rule receive \"datacenter=fra1 and (domu.mem_mib<4096 or free_mem_mib>=16384)\" is false for test3 (datacenter=fra1, domu.mem_mib=6144, free_mem_mib=8192)"
        ]
    );
    assert!(rejected_why(&plan, Considered::Source, "hypervisor3")[0].ends_with("but no dom0 can take test3 (see the destinations)"));
}

#[test]
fn a_prefer_rule_picks_a_dom0_before_a_less_loaded_one() {
    let p = ruled("prefer = [\"rack=r12\", \"datacenter=fra1\"]\n");
    let plan = decide(&p, &sustained_in_two_datacenters().obs, Trace::at(7));
    assert_eq!(moves(&plan), vec![mv("test3", "hypervisor3", "hypervisor2")]);
    assert_eq!(plan.migrations[0].rules, ["rule prefer #2 \"datacenter=fra1\" picked hypervisor2 (datacenter=fra1)"]);

    // A preferred dom0 that may not receive is passed over, and the trace says none was met.
    let mut p = p;
    p.maintenance = vec!["hypervisor2".into()];
    let plan = decide(&p, &sustained_in_two_datacenters().obs, Trace::at(7));
    assert_eq!(moves(&plan), vec![mv("test3", "hypervisor3", "hypervisor1")]);
    assert_eq!(
        plan.migrations[0].rules,
        ["rule prefer: hypervisor1 meets none of the 2 preference(s); no preferred dom0 could take test3"]
    );
    assert_eq!(rejected_why(&plan, Considered::Destination, "hypervisor2"), ["in maintenance: it neither sends nor receives"]);
}

#[test]
fn policy_rules_parse_from_the_file_and_bad_ones_name_the_key() {
    let p = BalancerPolicy::from_toml("[rules]\nreceive = \"datacenter=fra1\"\nprefer = [\"rack=r12\"]\n", "p.toml").unwrap();
    assert_eq!((p.rules.receive.len(), p.rules.movable.len(), p.rules.prefer.len()), (1, 0, 1));
    let e = BalancerPolicy::from_toml("interval = 30\n[rules]\nmovable = \"not name=/^db-\"\n", "/etc/fleet/balancer.toml")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("/etc/fleet/balancer.toml:2: rules.movable[0]: invalid filter at column"), "{e}");
    assert!(e.contains("missing its closing '/'") || e.contains("regex"), "{e}");
}

#[test]
fn the_deploy_example_parses_as_the_defaults_and_with_its_rules() {
    let example = include_str!("../../../../deploy/balancer.toml.example");
    assert_eq!(BalancerPolicy::from_toml(example, "balancer.toml.example").unwrap(), BalancerPolicy::default());
    // Uncommented, its example rules parse too (the first `receive` of the two written).
    let mut receive_taken = false;
    let with_rules: String = example
        .lines()
        .map(|l| match l.strip_prefix("# ") {
            Some(rule) if rule.starts_with("movable =") || rule.starts_with("prefer =") => rule.to_string(),
            Some(rule) if rule.starts_with("receive =") && !std::mem::replace(&mut receive_taken, true) => rule.to_string(),
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    let p = BalancerPolicy::from_toml(&with_rules, "balancer.toml.example").unwrap();
    let texts = |rules: &[crate::xen::rules::Rule]| rules.iter().map(|r| r.text.clone()).collect::<Vec<_>>();
    assert_eq!(texts(&p.rules.movable), ["not name=/^db-/"]);
    assert_eq!(texts(&p.rules.receive), ["datacenter=fra1 and free_mem_mib>=4096"]);
    assert_eq!(texts(&p.rules.prefer), ["rack=r12", "datacenter=fra1"]);
}
