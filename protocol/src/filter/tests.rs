//! Unit tests of the filter module.
use super::*;
use proptest::prelude::*;
use serde_json::json;

fn node<'a>(id: &'a str, facts: &'a Value, classes: &'a [String]) -> NodeView<'a> {
    NodeView { identity: id, facts, classes, agents: vec!["rpcutil", "process"] }
}

fn check(filter: &Filter, n: &NodeView) -> bool {
    filter.compile().unwrap().matches(n)
}

#[test]
fn fact_operators() {
    let facts = json!({"country": "uk", "cpus": 8, "os": {"family": "Debian"}, "roles": ["web", "db"]});
    let classes = vec!["apache".to_string(), "acme::devserver".to_string()];
    let n = node("web-01", &facts, &classes);
    let f = |s: &str| Filter { fact: vec![s.into()], ..Default::default() };
    assert!(check(&f("country=uk"), &n));
    assert!(check(&f("country=/uk|us/"), &n));
    assert!(!check(&f("country=us"), &n));
    assert!(check(&f("country!=us"), &n));
    assert!(check(&f("cpus>4"), &n));
    assert!(check(&f("cpus>=8"), &n));
    assert!(!check(&f("cpus<8"), &n));
    assert!(check(&f("cpus==8"), &n));
    assert!(check(&f("os.family=Debian"), &n));
    assert!(check(&f("roles=db"), &n));
    assert!(!check(&f("missing=x"), &n));
    assert!(check(&f("os.family=~^deb|^Deb"), &n));
}

#[test]
fn identity_class_agent_and_compound() {
    let facts = json!({"country": "uk", "environment": "staging", "customer": "acme"});
    let classes = vec!["apache".to_string(), "dev_server".to_string()];
    let n = node("web-01", &facts, &classes);
    assert!(check(&Filter { identity: vec!["/web/".into()], ..Default::default() }, &n));
    assert!(check(&Filter { identity: vec!["db-01".into(), "web-01".into()], ..Default::default() }, &n));
    assert!(!check(&Filter { identity: vec!["web".into()], ..Default::default() }, &n));
    assert!(check(&Filter { class: vec!["/dev_server/".into()], ..Default::default() }, &n));
    assert!(!check(&Filter { class: vec!["nginx".into()], ..Default::default() }, &n));
    assert!(check(&Filter { agent: vec!["process".into()], ..Default::default() }, &n));
    let s = |e: &str| Filter { compound: vec![e.into()], ..Default::default() };
    assert!(check(&s("(country=uk or country=us) and not class=/prod/"), &n));
    assert!(!check(&s("(country=uk or country=us) and not class=/dev/"), &n));
    assert!(check(&s("((customer=acme and environment=staging) or environment=development) and /apache/"), &n));
    assert!(check(&s("apache and !nginx"), &n));
    assert!(check(&s("identity=/^web/ and agent=rpcutil"), &n));
    assert!(check(&s("identity!=db-01"), &n));
}

#[test]
fn errors_point_at_the_column() {
    let e = parse_compound("country=uk and (role=web").unwrap_err();
    assert_eq!(e.column, 25, "{e}");
    assert!(e.message.contains("')'"));
    let e = parse_compound("country=/uk(/").unwrap_err();
    assert_eq!(e.column, 10, "{e}");
    let e = parse_compound("country=uk role=web").unwrap_err();
    assert_eq!(e.column, 12, "{e}");
    let e = parse_compound("=uk").unwrap_err();
    assert_eq!(e.column, 1);
    let e = parse_compound("country=").unwrap_err();
    assert_eq!(e.column, 9);
    let e = Filter { fact: vec!["justaword".into()], ..Default::default() }.compile().unwrap_err();
    assert_eq!(e.flag, Some("-F"));
    let shown = parse_compound("a=1 and (").unwrap_err().to_string();
    assert!(shown.contains("column 10") && shown.ends_with("         ^"), "{shown}");
}

#[test]
fn deep_nesting_is_refused_not_overflowed() {
    let s = "(".repeat(10_000) + "a=1" + &")".repeat(10_000);
    let e = parse_compound(&s).unwrap_err();
    assert!(e.message.contains("nested deeper"));
    let s = "not ".repeat(10_000) + "a=1";
    assert!(parse_compound(&s).is_err());
}

/// A data source answering `fstat` for two paths and `puppet()`.
struct Fake;
impl DataSource for Fake {
    fn query(&self, plugin: &str, arg: Option<&str>, _node: &NodeView<'_>) -> Result<Map<String, Value>, String> {
        let v = match (plugin, arg) {
            ("fstat", Some("/etc/motd")) => json!({"present": true, "size": 42, "type": "file"}),
            ("fstat", Some(_)) => json!({"present": false}),
            ("puppet", None) => json!({"enabled": false, "since_lastrun": 90}),
            _ => return Err(format!("no data plugin {plugin}")),
        };
        Ok(v.as_object().unwrap().clone())
    }
}

#[test]
fn data_functions_parse_and_evaluate_three_valued() {
    let e = parse_compound(r#"fstat("/etc/motd").present=true and country=uk"#).unwrap();
    let FilterExpr::And(parts) = &e else { panic!("{e:?}") };
    assert_eq!(
        parts[0],
        FilterExpr::Data(DataTerm {
            plugin: "fstat".into(),
            arg: Some("/etc/motd".into()),
            field: "present".into(),
            op: Op::Eq,
            value: FactValue::Text("true".into())
        })
    );
    assert!(e.has_data_terms());
    let facts = json!({"country": "uk"});
    let n = node("web-01", &facts, &[]);
    // Without data plugins: unknown, so included unless the rest excludes.
    assert_eq!(e.eval(&n, None), None);
    assert!(e.matches(&n));
    assert!(!parse_compound(r#"fstat("/etc/motd").present=true and country=us"#).unwrap().matches(&n));
    assert!(parse_compound(r#"not fstat("/etc/motd").present=true"#).unwrap().matches(&n), "not unknown is unknown");
    assert_eq!(parse_compound(r#"fstat("/x").present=true or country=uk"#).unwrap().eval(&n, None), Some(true));
    // With them: known.
    assert!(e.matches_with(&n, &Fake));
    let m = |s: &str| parse_compound(s).unwrap_or_else(|e| panic!("{e}")).matches_with(&n, &Fake);
    assert!(m(r#"fstat("/etc/motd").size>10"#));
    assert!(!m(r#"fstat("/etc/motd").size>100"#));
    assert!(m(r#"fstat('/etc/motd').type=/fi/"#));
    assert!(m(r#"fstat("/etc/nope").present=false"#));
    assert!(m("puppet().enabled=false and puppet().since_lastrun < 3600"));
    assert!(!m(r#"nosuch("x").a=1"#), "a plugin that fails is false on the node");
    assert!(!m(r#"fstat("/etc/motd").nofield=1"#));
    assert!(m(r#"fstat("/etc/motd").nofield!=1"#));
    // As MCollective writes it in -S, parenthesised and mixed with classes.
    assert!(parse_compound(r#"(puppet().enabled=false and apache) or process("nginx").exists=true"#).is_ok());
    assert!(parse_compound(r#"process(/ngin.x/).count>=1"#).is_ok());
}

#[test]
fn data_function_errors_say_what_was_expected() {
    let e = parse_compound(r#"fstat("/etc/motd")=true"#).unwrap_err();
    assert!(e.message.contains("expected .FIELD"), "{e}");
    assert_eq!(e.column, 19);
    let e = parse_compound(r#"fstat("/etc/motd".present=true"#).unwrap_err();
    assert!(e.message.contains("expected ')'"), "{e}");
    let e = parse_compound(r#"fstat("/etc/motd").present"#).unwrap_err();
    assert!(e.message.contains("expected an operator"), "{e}");
    let e = parse_compound(r#"Fstat("/x").present=true"#).unwrap_err();
    assert!(e.message.contains("not a data function name"), "{e}");
    // A class followed by a group is still a syntax error, not a data function.
    assert!(parse_compound("apache (country=uk)").is_err());
}

#[test]
fn filters_with_data_functions_need_the_nodes() {
    let s = |e: &str| Filter { compound: vec![e.into()], ..Default::default() };
    assert!(s(r#"fstat("/etc/motd").present=true and country=uk"#).needs_node_evaluation());
    assert!(!s("country=uk").needs_node_evaluation());
    assert!(!Filter::default().needs_node_evaluation());
}

#[test]
fn metric_terms_are_data_terms_the_nodes_answer() {
    let term = |e: &str| match parse_compound(e).unwrap() {
        FilterExpr::Data(t) => (t.plugin, t.arg, t.field, t.op),
        other => panic!("{e} parsed as {other:?}"),
    };
    assert_eq!(term("metric.load1>8"), ("metric".into(), None, "load1".into(), Op::Gt));
    assert_eq!(term(r#""metric.disk_used_pct:/var">=90"#).2, "disk_used_pct:/var");
    assert!(matches!(parse_fact_term("metric.mem_used_pct>90").unwrap(), FilterExpr::Data(_)));
    // The hub cannot answer it, so it includes the node and the client discovers by broadcast.
    let f = Filter { compound: vec!["metric.mem_used_pct>90 and country=uk".into()], ..Default::default() };
    assert!(f.needs_node_evaluation());
    let facts = json!({"country": "uk"});
    assert!(f.compile().unwrap().matches(&node("x", &facts, &[])));
    // A fact merely named like it is still a fact.
    assert!(matches!(parse_compound("metrics.x=1").unwrap(), FilterExpr::Fact { .. }));
}

#[test]
fn fact_and_data_terms_read_facts_the_others_do_not() {
    let reads = |f: Filter| f.compile().unwrap().reads_facts();
    let s = |e: &str| Filter { compound: vec![e.into()], ..Default::default() };
    assert!(reads(Filter { fact: vec!["country=uk".into()], ..Default::default() }));
    assert!(reads(s("apache and not (country=uk or /web/)")));
    assert!(reads(s(r#"fstat("/etc/motd").present=true"#)), "a data plugin may look facts up");
    assert!(reads(s("metric.load1>8")));
    assert!(!reads(s("apache and not (identity=/web/ or agent=process)")));
    assert!(!reads(Filter {
        identity: vec!["web-01".into()],
        class: vec!["apache".into()],
        agent: vec!["process".into()],
        ..Default::default()
    }));
    assert!(!reads(Filter::default()));
}

proptest! {
    #[test]
    fn parser_never_panics(s in ".{0,80}") {
        let _ = parse_compound(&s);
        let _ = parse_fact_term(&s);
    }

    /// What `reads_facts` promises a registry: a filter that does not read facts gives the same
    /// answer whatever the facts are.
    #[test]
    fn a_filter_that_reads_no_facts_does_not_depend_on_them(s in "[a-z0-9=!<>~/()\"' .|*]{0,60}") {
        if let Ok(e) = parse_compound(&s)
            && !e.reads_facts()
        {
            let (facts, classes) = (json!({"a": "1", "b": {"c": 2}}), vec!["a".to_string(), "web".to_string()]);
            let without = Value::Null;
            prop_assert_eq!(e.eval(&node("x", &facts, &classes), None), e.eval(&node("x", &without, &classes), None));
        }
    }

    #[test]
    fn parser_never_panics_on_filter_alphabet(s in "[a-z0-9=!<>~/()\"' .|*]{0,60}") {
        if let Ok(e) = parse_compound(&s) {
            let facts = json!({"a": "1"});
            let _ = e.matches(&node("x", &facts, &[]));
        }
    }
}
