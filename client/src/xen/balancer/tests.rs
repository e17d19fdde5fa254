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
