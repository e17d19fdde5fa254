//! The records a registry keeps answer filters exactly as the registrations they were made from,
//! share their lists, and tell changes apart as the registrations would.

use std::collections::BTreeMap;
use std::sync::Arc;

use fleet_protocol::{AgentInfo, Filter, Registration};
use serde_json::json;

use super::*;

fn agent(name: &str, version: &str) -> AgentInfo {
    AgentInfo { name: name.into(), version: version.into(), ddl_digest: format!("{name}-{version}-digest") }
}

fn registration(identity: &str, facts: Value, classes: &[&str]) -> Registration {
    Registration {
        identity: identity.into(),
        collectives: vec!["fleet".into(), "uk".into()],
        facts,
        classes: classes.iter().map(|c| c.to_string()).collect(),
        agents: vec![agent("rpcutil", "1.0"), agent("process", "2.1")],
        stats: Default::default(),
        metrics: BTreeMap::from([("load1".to_string(), 0.5)]),
        interval_ms: 30_000,
        version: "0.1.0".into(),
        started: 1,
    }
}

/// Registrations with the kinds of facts filters look at: nested objects, arrays, numbers,
/// booleans, nulls, a literal key with a dot, and none at all.
fn registrations() -> Vec<Registration> {
    vec![
        registration(
            "web-01",
            json!({"country": "uk", "cpus": 8, "os": {"family": "Debian", "release": {"major": "12"}},
                   "roles": ["web", "db"], "sim": true, "rack": 3, "load": 0.25, "none": null}),
            &["base", "role::web", "dev_server"],
        ),
        registration(
            "db-02",
            json!({"country": "us", "cpus": 2, "os": {"family": "RedHat"}, "roles": [], "os.family": "literal", "rack": -1}),
            &["base", "role::db"],
        ),
        registration("bare-03", json!({}), &[]),
        registration("null-04", Value::Null, &["base"]),
    ]
}

const FILTERS: &[&str] = &[
    "",
    "country=uk",
    "country!=uk",
    "country=/u[ks]/",
    "cpus>4",
    "cpus<=2",
    "rack<0",
    "load>=0.25",
    "os.family=Debian",
    "os.family=literal",
    "os.release.major=12",
    "os=x",
    "os!=x",
    "roles=db",
    "roles!=web",
    "sim=true",
    "none=\"\"",
    "missing!=x",
    "missing=x",
    "base",
    "/role::/",
    "not dev_server",
    "identity=/^web/",
    "agent=process",
    "agent=/^rpc/ and not country=us",
    "(country=uk or cpus<4) and base",
    "metric.load1>8",
    r#"fstat("/etc/motd").present=true and country=uk"#,
];

#[test]
fn a_record_matches_every_filter_as_its_registration_does() {
    let mut shared = SharedLists::default();
    for reg in registrations() {
        let record = shared.record(reg.clone());
        assert_eq!(record.facts(), reg.facts, "{}: facts come back as sent", reg.identity);
        for text in FILTERS {
            let filter = Filter { compound: if text.is_empty() { vec![] } else { vec![text.to_string()] }, ..Default::default() };
            let expr = filter.compile().unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(
                RegistryFilter::new(&expr).matches(&record),
                expr.matches(&reg.view()),
                "{}: filter {text:?} answers differently on the record",
                reg.identity
            );
        }
    }
}

#[test]
fn nodes_with_the_same_lists_share_them() {
    let mut shared = SharedLists::default();
    let records: Vec<NodeRecord> = (0..1000)
        .map(|i| {
            let classes: &[&str] = if i % 2 == 0 { &["base", "role::web"] } else { &["base", "role::db"] };
            shared.record(registration(&format!("node-{i}"), json!({"hostname": format!("node-{i}")}), classes))
        })
        .collect();
    let (first, second) = (&records[0], &records[2]);
    assert!(Arc::ptr_eq(&first.collectives, &second.collectives));
    assert!(Arc::ptr_eq(&first.classes, &second.classes));
    assert!(Arc::ptr_eq(&first.agents, &second.agents));
    assert!(!Arc::ptr_eq(&first.classes, &records[1].classes));
    // One collectives list, two class lists, one agent list.
    assert_eq!(shared.len(), 4);
}

#[test]
fn a_change_is_one_in_facts_classes_agents_or_collectives() {
    let mut shared = SharedLists::default();
    let base = registrations().remove(0);
    let old = shared.record(base.clone());
    let changed = |shared: &mut SharedLists, edit: &dyn Fn(&mut Registration)| {
        let mut reg = base.clone();
        edit(&mut reg);
        shared.record(reg).changed_from(&old)
    };
    assert!(!changed(&mut shared, &|_| {}));
    // What the registry does not keep is no change.
    assert!(!changed(&mut shared, &|r| r.stats.total = 99));
    assert!(!changed(&mut shared, &|r| r.metrics.clear()));
    assert!(!changed(&mut shared, &|r| r.version = "0.2.0".into()));
    assert!(!changed(&mut shared, &|r| r.started = 2));
    assert!(!changed(&mut shared, &|r| r.interval_ms = 10_000));
    assert!(changed(&mut shared, &|r| r.facts["os"]["family"] = json!("Ubuntu")));
    assert!(changed(&mut shared, &|r| r.facts["cpus"] = json!(8.0)));
    assert!(changed(&mut shared, &|r| {
        r.classes.pop();
    }));
    assert!(changed(&mut shared, &|r| r.collectives.reverse()));
    assert!(changed(&mut shared, &|r| r.agents[1].version = "2.2".into()), "an agent upgrade is a change");
    assert!(changed(&mut shared, &|r| r.agents[0].ddl_digest = "other".into()));
}

#[test]
fn equal_facts_that_pack_apart_are_no_change() {
    let mut shared = SharedLists::default();
    let zero = shared.record(registration("n", json!({"x": 0.0}), &[]));
    let negative_zero = shared.record(registration("n", json!({"x": -0.0}), &[]));
    assert_eq!(json!({"x": 0.0}), json!({"x": -0.0}));
    assert!(!negative_zero.changed_from(&zero));
}
