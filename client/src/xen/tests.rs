//! Views, samples and plans from rounds of the xen agent.
use super::*;
use crate::round::ReplyRecord;
use crate::xen::balancer::Rejection;
use fleet_protocol::{Reply, Status};

fn reply(sender: &str, status: Status, data: Value) -> ReplyRecord {
    ReplyRecord {
        reply: Reply {
            request_id: "r".into(),
            sender: sender.into(),
            status,
            status_msg: if status.is_ok() { "OK".into() } else { "xl not found".into() },
            data,
            elapsed_us: 0,
        },
        time_ms: 5.0,
        expected: true,
        signature: crate::link::SignatureCheck::Unverified,
    }
}

fn outcome(replies: Vec<ReplyRecord>, no_reply: &[&str]) -> Outcome {
    let mut discovered: Vec<String> = replies.iter().map(|r| r.reply.sender.clone()).collect();
    discovered.extend(no_reply.iter().map(|s| s.to_string()));
    Outcome {
        request_id: "r".into(),
        discovered,
        replies,
        no_reply: no_reply.iter().map(|s| s.to_string()).collect(),
        down: Vec::new(),
        hub_lost: None,
        discovery_ms: 1.0,
        resent: 0,
        rollout: None,
        elapsed_ms: 10.0,
    }
}

fn row(name: &str, id: u32) -> Value {
    json!({"name": name, "id": id, "mem": 1024, "vcpus": 2, "state": "-b----", "running": false, "blocked": true, "paused": false,
           "shutdown": false, "shutdown_reason": "", "dying": false, "cpu_time": 12.5})
}

#[test]
fn the_view_joins_list_and_info_per_dom0() {
    let list = outcome(
        vec![
            reply(
                "xen-02",
                Status::Ok,
                json!({"domus": [row("web1", 3)], "dom0": row("Domain-0", 0), "domu_count": 1, "domu_memory": 1024}),
            ),
            reply("xen-01", Status::Ok, json!({"domus": [], "dom0": row("Domain-0", 0), "domu_count": 0, "domu_memory": 0})),
            reply("xen-03", Status::UnknownError, Value::Null),
        ],
        &["xen-04"],
    );
    let info = outcome(
        vec![reply(
            "xen-02",
            Status::Ok,
            json!({"load_1": 0.5, "load_5": 0.4, "load_15": 0.3, "nr_cpus": 8, "total_memory": 32768, "free_memory": 20000, "simulated": true}),
        )],
        &[],
    );
    let v = view_from(&list, &info);
    assert_eq!(v.dom0s.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(), ["xen-01", "xen-02", "xen-03"]);
    let x2 = &v.dom0s[1];
    assert_eq!(x2.load, [0.5, 0.4, 0.3]);
    assert_eq!((x2.total_memory, x2.free_memory, x2.domu_count), (32768, 20000, 1));
    assert!(x2.simulated);
    assert_eq!(v.domus.len(), 1);
    assert_eq!((v.domus[0].dom0.as_str(), v.domus[0].domu.name.as_str()), ("xen-02", "web1"));
    assert_eq!(v.dom0s[2].error.as_deref(), Some("list: UnknownError: xl not found"));
    assert_eq!(v.no_reply, ["xen-04"]);
}

#[test]
fn stat_replies_become_balancer_samples() {
    let stat = outcome(
        vec![
            reply("xen-02", Status::Ok, json!({"load_1": 1.5, "domu_count": 1, "domus": [row("web1", 3)]})),
            reply("xen-01", Status::Ok, json!({"load_1": 0.1, "domu_count": 0, "domus": []})),
            reply("xen-03", Status::UnknownError, Value::Null),
        ],
        &[],
    );
    let samples = samples_from(&stat, 1_000_000);
    assert_eq!(samples.len(), 2);
    assert_eq!(samples[0].0, "xen-01");
    assert_eq!(samples[1].1.load, 1.5);
    assert_eq!(samples[1].1.domus, vec![balancer::DomuSample { name: "web1".into(), cpu_time: 12.5 }]);
    assert_eq!(samples[1].1.at_ms, 1_000_006);
}

#[test]
fn plans_read_as_text() {
    let plan = Plan {
        at_ms: 0,
        migrations: vec![Move {
            domu: "test3".into(),
            from: "hypervisor3".into(),
            to: "hypervisor2".into(),
            address: "10.0.0.2".into(),
            reason: "hypervisor3 over 1.0 for 6 min; test3 ate 1.7 s of 30 s; hypervisor2 has 0 of 10 VMs, load 0.16".into(),
            cpu_eaten: 1.7,
            window_s: 30.0,
            rules: vec!["rule movable \"not name=/^db-/\" holds for test3 (name=test3)".into()],
        }],
        rejected: vec![Rejection {
            considered: balancer::Considered::Destination,
            name: "hypervisor1".into(),
            why: "has 10 of 10 VMs (max_vm_per_host)".into(),
        }],
        dom0s: vec![],
    };
    assert_eq!(
        plan_lines(&plan),
        [
            "Dom0s:",
            "Plan: 1 migration(s)",
            "  1. test3: hypervisor3 -> hypervisor2 via 10.0.0.2",
            "     hypervisor3 over 1.0 for 6 min; test3 ate 1.7 s of 30 s; hypervisor2 has 0 of 10 VMs, load 0.16",
            "     rule movable \"not name=/^db-/\" holds for test3 (name=test3)",
            "Considered and left alone:",
            "  destination hypervisor1: has 10 of 10 VMs (max_vm_per_host)",
        ]
    );
}

#[test]
fn the_scope_always_asks_dom0s_only() {
    let s = Scope::default().with_agent("xen");
    assert_eq!(s.filter.agent, ["xen"]);
    let s = Scope::filter(fleet_protocol::Filter { fact: vec!["dc=nyc1".into()], ..Default::default() }).with_agent("xen");
    assert_eq!((s.filter.agent.as_slice(), s.filter.fact.as_slice()), (&["xen".to_string()][..], &["dc=nyc1".to_string()][..]));
}
