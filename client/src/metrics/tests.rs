use super::*;

fn host(identity: &str, role: Option<&str>, metrics: &[(&str, f64)]) -> HostMetrics {
    let data = json!({
        "time_ms": 1,
        "metrics": metrics.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<Map<String, Value>>(),
        "facts": { "role": role },
    });
    HostMetrics::from_reply(identity, &data, Some("role"))
}

#[test]
fn groups_have_min_avg_max_and_their_worst_host_worst_group_first() {
    let hosts = [
        host("web-1", Some("web"), &[("load1", 1.0), ("mem_available_bytes", 500.0)]),
        host("web-2", Some("web"), &[("load1", 3.0), ("mem_available_bytes", 100.0)]),
        host("db-1", Some("db"), &[("load1", 9.0), ("mem_available_bytes", 900.0)]),
        host("db-2", Some("db"), &[("load1", 0.5)]),
        host("odd", None, &[]),
    ];
    let groups = group(&hosts, "load1");
    let values: Vec<&str> = groups.iter().map(|g| g.value.as_str()).collect();
    assert_eq!(values, ["db", "web", NO_GROUP], "worst group first; a group without the metric last");
    let db = &groups[0];
    assert_eq!(db.worst_host.as_deref(), Some("db-1"));
    assert_eq!(db.hosts, ["db-1", "db-2"]);
    let load = &db.metrics["load1"];
    assert_eq!((load.min, load.avg, load.max, load.hosts), (0.5, 4.75, 9.0, 2));
    // Only the hosts that have a metric count in its spread.
    assert_eq!(db.metrics["mem_available_bytes"].hosts, 1);
    // Less memory available is worse.
    let web = &groups[1];
    assert_eq!(web.metrics["mem_available_bytes"].worst_host, "web-2");
    assert_eq!(web.hosts, ["web-2", "web-1"]);
    assert_eq!(groups[2].worst_host, None);
}

#[test]
fn ranking_by_another_metric_reorders_groups() {
    let hosts = [host("a", Some("x"), &[("load1", 9.0), ("zombies", 0.0)]), host("b", Some("y"), &[("load1", 1.0), ("zombies", 4.0)])];
    let by_zombies: Vec<String> = group(&hosts, "zombies").into_iter().map(|g| g.value).collect();
    assert_eq!(by_zombies, ["y", "x"]);
}

#[test]
fn derived_figures_and_missing_facts() {
    let h = host(
        "n",
        None,
        &[("disk_used_pct:/", 40.0), ("disk_used_pct:/var", 91.5), ("net_rx_bytes_per_s:eth0", 100.0), ("net_rx_bytes_per_s:eth1", 50.0)],
    );
    assert_eq!((h.get("disk_used_max_pct"), h.get("net_rx_bytes_per_s")), (Some(91.5), Some(150.0)));
    assert_eq!(h.get("net_tx_bytes_per_s"), None);
    assert_eq!(h.group.as_deref(), Some(NO_GROUP));
    assert_eq!(HostMetrics::from_reply("n", &json!({}), None).group, None);
}

#[test]
fn hosts_rank_worst_first() {
    let mut hosts = vec![host("a", None, &[("load1", 1.0)]), host("b", None, &[]), host("c", None, &[("load1", 5.0)])];
    rank(&mut hosts, "load1");
    let order: Vec<&str> = hosts.iter().map(|h| h.identity.as_str()).collect();
    assert_eq!(order, ["c", "a", "b"]);
}

#[test]
fn values_read_as_people_read_them() {
    assert_eq!(value_text("load1", 2.5), "2.50");
    assert_eq!(value_text("load15", 99.0), "99.00");
    assert_eq!(value_text("h/memory/memory-used", 1048576.0), "1048576");
    assert_eq!(value_text("mem_used_pct", 91.25), "91.2%");
    assert_eq!(value_text("disk_used_pct:/var", 50.0), "50.0%");
    assert_eq!(value_text("mem_used_bytes", 2048.0), "2.0 KiB");
    assert_eq!(value_text("net_rx_bytes_per_s:eth0", 1536.0), "1.5 KiB/s");
    assert_eq!(value_text("zombies", 3.0), "3");
    assert_eq!(value_text("h/load/load:shortterm", 0.25), "0.25");
}

#[test]
fn latest_args_name_what_is_wanted() {
    assert_eq!(latest_args(&[], None), Map::new());
    let args = latest_args(&["load*".into(), "zombies".into()], Some("role"));
    assert_eq!(Value::Object(args), json!({"metrics": "load*,zombies", "facts": "role"}));
}
