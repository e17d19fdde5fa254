use super::*;
use serde_json::{Value, json};
use std::path::Path;
use std::time::SystemTime;

struct Node {
    name: &'static str,
    facts: Value,
    classes: Vec<String>,
}

impl Node {
    fn new(name: &'static str, facts: Value, classes: &[&str]) -> Node {
        Node { name, facts, classes: classes.iter().map(|c| c.to_string()).collect() }
    }
    fn view(&self) -> NodeView<'_> {
        NodeView { identity: self.name, facts: &self.facts, classes: &self.classes, agents: vec!["process"] }
    }
}

/// Nodes whose facts and classes differ in exactly the ways the seed's policy cares about.
fn nodes() -> Vec<Node> {
    vec![
        // Both the fact and the class of the uid=600 line.
        Node::new("acme-dev", json!({"customer": "acme", "environment": "development"}), &["acme::devserver", "apache"]),
        // The fact but not the class.
        Node::new("acme-prod", json!({"customer": "acme", "environment": "production"}), &["acme::prodserver"]),
        // The class but not the fact.
        Node::new("globex-dev", json!({"customer": "globex", "environment": "development"}), &["acme::devserver"]),
        // Neither: no customer fact at all, no classes.
        Node::new("bare", json!({"environment": "production"}), &[]),
    ]
}

/// The seed's example policy (uid=500 → alice, uid=502 → bob, uid=600 → carol).
const SEED_TABS: &str = "\
# the seed's example, translated to fleet callers
policy default deny
allow\talice\t*\t*\t*
allow\tbob\tstatus\t*\t*
allow\tcarol\t*\tcustomer=acme\tacme::devserver
";

const SEED_SPACES: &str = "\
policy default deny
allow alice * * *
allow   bob   status   *   *
allow carol * customer=acme acme::devserver
";

#[test]
fn seed_policy_matrix_every_cell() {
    let callers = ["alice", "bob", "carol", "mallory"];
    let actions = ["status", "list", "kill"];
    // expected[caller][action][node]; nodes in the order of nodes().
    let expected: [[[bool; 4]; 3]; 4] = [
        // alice: everything everywhere
        [[true, true, true, true], [true, true, true, true], [true, true, true, true]],
        // bob: status everywhere, nothing else
        [[true, true, true, true], [false, false, false, false], [false, false, false, false]],
        // carol: every action, only where customer=acme AND class acme::devserver
        [[true, false, false, false], [true, false, false, false], [true, false, false, false]],
        // mallory: no rule, default deny
        [[false; 4], [false; 4], [false; 4]],
    ];
    let expected_rule = |c: usize, line_tabs: usize| match c {
        0 => Some(line_tabs),
        1 => Some(line_tabs + 1),
        2 => Some(line_tabs + 2),
        _ => None,
    };
    let nodes = nodes();
    for (text, first_rule_line) in [(SEED_TABS, 3), (SEED_SPACES, 2)] {
        let policy = Policy::parse(text, "policies/process.policy").unwrap();
        assert_eq!(policy.len(), 3);
        for (ci, caller) in callers.iter().enumerate() {
            for (ai, action) in actions.iter().enumerate() {
                for (ni, node) in nodes.iter().enumerate() {
                    let d = policy.decide(caller, action, &node.view());
                    let want = expected[ci][ai][ni];
                    assert_eq!(d.allowed, want, "{caller} {action} on {}: {}", node.name, d.rule);
                    if want {
                        let line = expected_rule(ci, first_rule_line).unwrap();
                        assert!(d.rule.starts_with(&format!("policies/process.policy:{line}: allow {caller} ")), "{}", d.rule);
                    } else {
                        assert_eq!(d.rule, "default deny (policies/process.policy)");
                    }
                }
            }
        }
    }
}

#[test]
fn decision_names_the_line_as_written() {
    let p = Policy::parse(SEED_TABS, "policies/process.policy").unwrap();
    let n = &nodes()[0];
    assert_eq!(p.decide("alice", "kill", &n.view()).rule, "policies/process.policy:3: allow alice * * *");
    assert_eq!(p.decide("carol", "kill", &n.view()).rule, "policies/process.policy:5: allow carol * customer=acme acme::devserver");
    // A caller id may look like MCollective's, it is just a name.
    let p = Policy::parse("policy default deny\nallow uid=500 * * *\n", "policies/process.policy").unwrap();
    let d = p.decide("uid=500", "status", &n.view());
    assert_eq!(d, Decision { allowed: true, rule: "policies/process.policy:2: allow uid=500 * * *".into() });
}

#[test]
fn first_match_wins_deny_before_allow() {
    let n = &nodes()[0];
    let p = Policy::parse("policy default allow\ndeny bob kill * *\nallow bob * * *\n", "p").unwrap();
    assert_eq!(p.decide("bob", "kill", &n.view()), Decision { allowed: false, rule: "p:2: deny bob kill * *".into() });
    assert_eq!(p.decide("bob", "status", &n.view()), Decision { allowed: true, rule: "p:3: allow bob * * *".into() });
    assert_eq!(p.decide("eve", "kill", &n.view()), Decision { allowed: true, rule: "default allow (p)".into() });

    // The other order: the allow shadows the deny.
    let p = Policy::parse("policy default deny\nallow bob * * *\ndeny bob kill * *\n", "p").unwrap();
    assert_eq!(p.decide("bob", "kill", &n.view()).rule, "p:2: allow bob * * *");
    assert!(p.decide("bob", "kill", &n.view()).allowed);

    // A deny that only applies on some nodes.
    let p = Policy::parse("deny\t*\tkill\tenvironment=production\t*\nallow\t*\t*\t*\t*\n", "p").unwrap();
    let nodes = nodes();
    let kill: Vec<bool> = nodes.iter().map(|n| p.decide("anyone", "kill", &n.view()).allowed).collect();
    assert_eq!(kill, [true, false, true, false]);
}

#[test]
fn lists_and_wildcards() {
    let text = "policy default deny\n\
                    allow\talice bob\tstatus list\t*\t*\n\
                    allow\t*\tping\t*\t*\n\
                    allow\tops\t*\tcustomer=acme environment=production\t*\n\
                    allow\tweb\t*\t*\tapache /^acme::dev/\n";
    let p = Policy::parse(text, "p").unwrap();
    let nodes = nodes();
    let (dev, prod, globex, bare) = (&nodes[0], &nodes[1], &nodes[2], &nodes[3]);
    for caller in ["alice", "bob"] {
        assert!(p.decide(caller, "status", &bare.view()).allowed);
        assert!(p.decide(caller, "list", &bare.view()).allowed);
        assert!(!p.decide(caller, "kill", &bare.view()).allowed);
    }
    assert!(!p.decide("carol", "status", &bare.view()).allowed);
    // `*` callers.
    for caller in ["alice", "zed", "uid=0"] {
        assert!(p.decide(caller, "ping", &bare.view()).allowed);
    }
    // Several facts are and-ed.
    assert!(p.decide("ops", "kill", &prod.view()).allowed);
    assert!(!p.decide("ops", "kill", &dev.view()).allowed, "environment differs");
    assert!(!p.decide("ops", "kill", &bare.view()).allowed, "customer missing");
    // Several classes are and-ed; regex classes.
    assert!(p.decide("web", "kill", &dev.view()).allowed);
    assert!(!p.decide("web", "kill", &globex.view()).allowed, "no apache class");
    assert!(!p.decide("web", "kill", &prod.view()).allowed);
}

#[test]
fn fact_regex_and_operators() {
    let p = Policy::parse("allow\ta\t*\tcustomer=/^ac/\t*\nallow\tb\t*\tcustomer!=acme\t/dev/\nallow\tc\t*\tenvironment=~^prod\t*\n", "p")
        .unwrap();
    let nodes = nodes();
    let row = |caller: &str| nodes.iter().map(|n| p.decide(caller, "x", &n.view()).allowed).collect::<Vec<_>>();
    assert_eq!(row("a"), [true, true, false, false]);
    // `!=` holds when the fact is missing, as in filters; the class must still match.
    assert_eq!(row("b"), [false, false, true, false]);
    assert_eq!(row("c"), [false, true, false, true]);
}

#[test]
fn compound_fact_expressions() {
    let nodes = nodes();
    let row = |p: &Policy, caller: &str| nodes.iter().map(|n| p.decide(caller, "x", &n.view()).allowed).collect::<Vec<_>>();

    // MCollective's tabbed compound form: 4 fields.
    let p = Policy::parse("allow\tops\t*\t(customer=acme or customer=globex) and environment=development\n", "p").unwrap();
    assert_eq!(row(&p, "ops"), [true, false, true, false]);

    // The same without tabs: the whole rest is one expression.
    let p = Policy::parse("allow ops * (customer=acme or customer=globex) and environment=development\n", "p").unwrap();
    assert_eq!(row(&p, "ops"), [true, false, true, false]);

    // Compound facts with a trailing `*` classes field.
    let p = Policy::parse("allow ops * (customer=acme and not environment=production) *\n", "p").unwrap();
    assert_eq!(row(&p, "ops"), [true, false, false, false]);

    // `*` facts then a compound classes field.
    let p = Policy::parse("allow ops * * apache or acme::prodserver\n", "p").unwrap();
    assert_eq!(row(&p, "ops"), [true, true, false, false]);

    // Tabs: compound facts and compound classes, both must hold.
    let p = Policy::parse("allow\tops\t*\tcustomer=acme or customer=globex\tnot apache\n", "p").unwrap();
    assert_eq!(row(&p, "ops"), [false, true, true, false]);

    // `!` and class terms inside the facts expression.
    let p = Policy::parse("deny\t*\t*\t!customer=acme\n", "p").unwrap();
    assert_eq!(nodes.iter().map(|n| p.decide("x", "y", &n.view()).rule.contains(":1:")).collect::<Vec<_>>(), [false, false, true, true]);

    // Parentheses inside a regex value are not a compound expression.
    let p = Policy::parse("allow\tops\t*\tenvironment=/^(production|staging)$/\t*\n", "p").unwrap();
    assert_eq!(row(&p, "ops"), [false, true, false, true]);
}

#[test]
fn default_lines() {
    let n = &nodes()[0];
    let p = Policy::parse("# nothing but a comment\n\n", "p").unwrap();
    assert!(!p.default_allow());
    assert_eq!(p.decide("a", "b", &n.view()), Decision { allowed: false, rule: "default deny (p)".into() });
    let p = Policy::parse("allow alice * * *\npolicy   default\tallow\n", "p").unwrap();
    assert!(p.decide("bob", "b", &n.view()).allowed);
    assert!(p.decide("alice", "b", &n.view()).rule.starts_with("p:1:"));
    let p = Policy::parse("\r\npolicy default deny\r\nallow alice * * *\r\n", "p").unwrap();
    assert!(p.decide("alice", "b", &n.view()).allowed, "CRLF line endings");
}

#[test]
fn parse_errors_name_file_line_and_problem() {
    let err = |text: &str| Policy::parse(text, "policies/process.policy").unwrap_err().to_string();
    assert_eq!(
        err("policy default deny\npolicy default allow\n"),
        "policies/process.policy:2:1: a second 'policy default' line (the first is on line 1)"
    );
    assert_eq!(
        err("policy default maybe\n"),
        "policies/process.policy:1:1: expected 'policy default allow' or 'policy default deny', found 'policy default maybe'"
    );
    assert_eq!(
        err("# ok\nalow alice * * *\n"),
        "policies/process.policy:2:1: expected 'allow', 'deny' or 'policy default ...', found 'alow'"
    );
    assert_eq!(
        err("allow alice *\n"),
        "policies/process.policy:1:1: expected 'allow|deny <callers> <actions> <facts> <classes>' (use * for any)"
    );
    assert_eq!(
        err("allow alice * customer=acme\n"),
        "policies/process.policy:1:15: expected a classes field after the facts field (use * for any)"
    );
    assert!(err("allow alice * a=1 b=2 web\n").starts_with("policies/process.policy:1:15: too many fields in 'a=1 b=2 web'"));
    assert_eq!(
        err("allow\talice\t*\t*\n"),
        "policies/process.policy:1:1: expected 5 tab-separated fields (allow|deny, callers, actions, facts, classes), found 4"
    );
    assert_eq!(
        err("allow\talice\t*\t*\t*\t*\n"),
        "policies/process.policy:1:1: expected 5 tab-separated fields (allow|deny, callers, actions, facts, classes), found 6"
    );
    assert_eq!(
        err("allow alice\t*\t*\t*\n"),
        "policies/process.policy:1:1: this line separates fields with tabs, so 'allow alice' needs a tab after 'allow'"
    );
    assert_eq!(err("allow\talice *\t*\t*\t*\n"), "policies/process.policy:1:13: callers: '*' must stand alone, it already means any");
    assert_eq!(
        err("allow alice * customer *\n"),
        "policies/process.policy:1:15: fact 'customer': expected KEY=VALUE (or KEY OP VALUE with == != < <= > >=), or a data function such as fstat(\"/etc/motd\").present=true"
    );
    assert_eq!(
        err("allow alice * * customer=acme\n"),
        "policies/process.policy:1:17: class 'customer=acme': expected a class name or /regex/ (facts go in the facts field)"
    );
    assert_eq!(
        err("\n\nallow alice * customer=/ac(/ *\n"),
        "policies/process.policy:3:25: fact 'customer=/ac(/': bad regex /ac(/: unclosed group"
    );
    assert_eq!(
        err("allow alice * (customer=acme or *\n"),
        "policies/process.policy:1:32: facts '(customer=acme or': expected a filter term"
    );
    // A compound followed by a classes token needs tabs to be told apart.
    assert!(err("allow alice * (a=1 or a=2) web\n").contains("missing 'and'/'or'"));
}

// -----------------------------------------------------------------------------------------
// PolicySet

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

#[test]
fn missing_file_gives_the_node_default() {
    let dir = tempfile::tempdir().unwrap();
    let n = &nodes()[0];
    let set = PolicySet::load(dir.path(), false);
    let d = set.decide("process", "alice", "status", &n.view());
    assert!(!d.allowed);
    assert_eq!(d.rule, format!("default deny (no {}; node default)", dir.path().join("process.policy").display()));
    let set = PolicySet::load(dir.path(), true);
    assert!(set.decide("process", "alice", "status", &n.view()).allowed);
    // A missing directory is the same as a missing file.
    let set = PolicySet::load(dir.path().join("nope"), false);
    assert!(!set.decide("process", "alice", "status", &n.view()).allowed);
}

#[test]
fn broken_file_denies_everything_even_with_default_allow() {
    let dir = tempfile::tempdir().unwrap();
    let n = &nodes()[0];
    write(&dir.path().join("process.policy"), "policy default allow\nallow alice * * *\nallow bob\n");
    let set = PolicySet::load(dir.path(), true);
    for caller in ["alice", "bob", "carol"] {
        let d = set.decide("process", caller, "status", &n.view());
        assert!(!d.allowed, "{caller}");
        assert_eq!(
            d.rule,
            format!(
                "policy file failed to parse: {}:3:1: expected 'allow|deny <callers> <actions> <facts> <classes>' (use * for any)",
                dir.path().join("process.policy").display()
            )
        );
    }
    // Other agents are not affected.
    assert!(set.decide("rpcutil", "carol", "ping", &n.view()).allowed);
}

#[test]
fn unreadable_policy_denies() {
    let dir = tempfile::tempdir().unwrap();
    let n = &nodes()[0];
    std::fs::create_dir(dir.path().join("process.policy")).unwrap();
    let set = PolicySet::load(dir.path(), true);
    let d = set.decide("process", "alice", "status", &n.view());
    assert!(!d.allowed);
    assert!(d.rule.starts_with("policy file cannot be read:"), "{}", d.rule);
}

#[test]
fn changed_file_is_read_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("process.policy");
    let n = &nodes()[0];
    let set = PolicySet::load(dir.path(), false);
    assert!(!set.decide("process", "alice", "kill", &n.view()).allowed);

    write(&path, "allow alice * * *\n");
    assert!(set.decide("process", "alice", "kill", &n.view()).allowed, "a new file is noticed");

    // Same length, rewritten in place; pin a different mtime so the test does not depend on
    // the filesystem's timestamp resolution.
    write(&path, "deny  alice * * *\n");
    let f = std::fs::File::options().write(true).open(&path).unwrap();
    f.set_modified(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000)).unwrap();
    drop(f);
    let d = set.decide("process", "alice", "kill", &n.view());
    assert!(!d.allowed);
    assert!(d.rule.ends_with(":1: deny alice * * *"), "{}", d.rule);

    // Broken, then fixed again.
    write(&path, "allow alice\n");
    assert!(set.decide("process", "alice", "kill", &n.view()).rule.starts_with("policy file failed to parse"));
    write(&path, "policy default allow\n");
    assert!(set.decide("process", "alice", "kill", &n.view()).allowed);

    std::fs::remove_file(&path).unwrap();
    assert!(set.decide("process", "alice", "kill", &n.view()).rule.contains("node default"), "removal is noticed");
}

#[test]
fn agent_names_cannot_escape_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let n = &nodes()[0];
    let set = PolicySet::load(dir.path().join("policies"), true);
    for agent in ["../etc/passwd", "a/b", "", ".hidden", "a\0b", "sp ace"] {
        let d = set.decide(agent, "alice", "x", &n.view());
        assert!(!d.allowed && d.rule.starts_with("invalid agent name"), "{agent:?}: {}", d.rule);
    }
}

// -----------------------------------------------------------------------------------------
// Compatibility with the MCollective/Choria action-policy plugin

#[test]
fn regex_callers_and_groups() {
    let groups = Groups::parse("# ops team\nsysadmin alice /^oncall-/\n\nauditors  carol\n", "policies/groups").unwrap();
    assert_eq!(groups.len(), 2);
    let p = Policy::parse(
        "policy default deny\nallow\t/^deploy-[0-9]+$/\tstatus\t*\t*\nallow\tsysadmin auditors\t*\t*\t*\ndeny\t/.*/\t*\t*\t*\n",
        "p",
    )
    .unwrap();
    let n = &nodes()[0];
    let data = crate::data::NodeData::default();
    let d = |caller: &str, action: &str| p.decide_with(caller, action, &n.view(), &groups, &data);
    assert!(d("deploy-12", "status").allowed);
    assert!(!d("deploy-12", "kill").allowed, "{}", d("deploy-12", "kill").rule);
    assert!(!d("deploy-x", "status").allowed);
    assert!(d("alice", "kill").allowed, "a member of sysadmin");
    assert!(d("oncall-bob", "kill").allowed, "a member by regex");
    assert!(d("carol", "kill").allowed, "a member of auditors");
    assert!(d("sysadmin", "kill").allowed, "the name itself is also a caller id");
    let mallory = d("mallory", "status");
    assert!(!mallory.allowed && mallory.rule == "p:4: deny /.*/ * * *", "{}", mallory.rule);
    // Without the groups, group names match only themselves.
    assert!(!p.decide_with("alice", "kill", &n.view(), &Groups::default(), &data).allowed);
    let e = Groups::parse("ok a b\nbad /x(/\n", "policies/groups").unwrap_err();
    assert_eq!(e.to_string(), "policies/groups:2:5: caller '/x(/': bad regex /x(/: unclosed group");
}

#[test]
fn data_functions_in_the_facts_field_are_evaluated_here() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("etc")).unwrap();
    std::fs::write(root.path().join("etc/hosts"), "127.0.0.1 localhost\n").unwrap();
    let data = crate::data::NodeData {
        config: crate::data::DataConfig { rootfs: root.path().into(), ..Default::default() },
        ..Default::default()
    };
    let text = "policy default deny\n\
        allow\talice\t*\tfstat(\"/etc/hosts\").size>10\t*\n\
        allow\tbob\t*\tfstat(\"/etc/motd\").present=true\t*\n\
        allow carol * (puppet().enabled=true and customer=acme) or environment=production\n\
        allow dave * process(\"no-such-process-xyz\").exists=false *\n\
        allow erin status * *\n";
    let p = Policy::parse(text, "p").unwrap_or_else(|e| panic!("{e}"));
    let nodes = nodes();
    let d = |caller: &str, node: &Node| p.decide_with(caller, "status", &node.view(), &Groups::default(), &data).allowed;
    assert!(d("alice", &nodes[0]));
    assert!(!d("bob", &nodes[0]), "no /etc/motd under this root");
    assert!(d("carol", &nodes[0]), "acme, and puppet is enabled (no lock file)");
    assert!(!d("carol", &nodes[2]), "globex in development");
    assert!(d("carol", &nodes[3]), "production");
    assert!(d("dave", &nodes[0]));
    assert!(d("erin", &nodes[0]), "rules without data functions are unaffected");
    std::fs::write(root.path().join("etc/hosts"), "x").unwrap();
    assert!(!d("alice", &nodes[0]), "size is read at decision time");
}

#[test]
fn a_broken_file_names_line_column_and_what_was_expected() {
    let e = Policy::parse("policy default deny\nallow\talice\t*\tfstat(\"/etc/hosts\").size\t*\n", "policies/echo.policy").unwrap_err();
    assert_eq!(
        e.to_string(),
        "policies/echo.policy:2:39: fact 'fstat(\"/etc/hosts\").size': expected an operator after fstat(...).size (e.g. fstat(\"/etc/motd\").present=true)"
    );
    assert_eq!((e.line, e.column), (2, 39), "where the operator was expected");
    let e = Policy::parse("allow /x(/ * * *\n", "p").unwrap_err();
    assert_eq!(e.to_string(), "p:1:7: caller '/x(/': bad regex /x(/: unclosed group");
}

#[test]
fn the_groups_file_lives_in_the_policy_dir_and_a_broken_one_denies() {
    let dir = tempfile::tempdir().unwrap();
    let n = &nodes()[0];
    write(&dir.path().join("process.policy"), "policy default deny\nallow ops * * *\n");
    let set = PolicySet::load(dir.path(), false);
    assert_eq!(set.groups_path(), dir.path().join("groups"));
    assert!(!set.decide("process", "alice", "status", &n.view()).allowed);
    write(&dir.path().join("groups"), "ops alice bob\n");
    assert!(set.decide("process", "alice", "status", &n.view()).allowed);
    write(&dir.path().join("groups"), "ops alice /b(/\n");
    let d = set.decide("process", "alice", "status", &n.view());
    assert!(!d.allowed);
    assert!(d.rule.starts_with("caller groups file failed to parse: ") && d.rule.contains("groups:1:11:"), "{}", d.rule);
}
