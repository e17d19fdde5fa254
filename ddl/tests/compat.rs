//! Drop-in compatibility with Choria and MCollective DDLs: plugin aggregates and plugin validators
//! load with a warning, are documented as such and do not stop the action; a Ruby DDL is refused
//! with directions; every built-in DDL survives the trip through Choria's JSON DDL.

use std::path::Path;

use fleet_ddl::{Ddl, builtin, doc, validate_request};
use serde_json::{Map, Value, json};

fn load(name: &str) -> Ddl {
    Ddl::from_path(&Path::new("tests/fixtures/valid").join(name)).unwrap_or_else(|e| panic!("{e}"))
}

fn args(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

#[test]
fn plugin_aggregates_load_warn_document_and_leave_the_action_alone() {
    let nrpe = load("nrpe.json");
    let act = &nrpe.actions["runcommand"];
    assert!(act.aggregate.is_empty(), "nothing fleet can compute");
    assert_eq!(act.plugin_aggregate.len(), 1);
    assert_eq!((act.plugin_aggregate[0].function.as_str(), act.plugin_aggregate[0].output.as_str()), ("nagios_states", "exitcode"));
    let warnings = nrpe.warnings();
    assert!(warnings.iter().any(|w| w.contains("'nagios_states'") && w.contains("not available")), "{warnings:?}");

    let procs = load("procs.json");
    let act = &procs.actions["list"];
    assert_eq!(act.aggregate.len(), 1, "sum is fleet's own");
    let plugins: Vec<&str> = act.plugin_aggregate.iter().map(|a| a.function.as_str()).collect();
    assert_eq!(plugins, ["process_summary", "chart"]);
    assert_eq!(act.plugin_aggregate[0].options["format"], "%s");
    // One warning per plugin aggregate and per plugin validator, and no more.
    assert_eq!(procs.warnings().len(), 3, "{:?}", procs.warnings());

    let page = doc::render_text(&procs);
    assert!(page.contains("process_summary of pslist: not available"), "{page}");
    assert!(page.contains("chart of count: not available"), "{page}");
    assert!(page.contains("sum of count"), "{page}");
    let md = doc::render_markdown(&procs);
    assert!(md.contains("| process_summary (not available: plugin aggregate) | `pslist` |"), "{md}");

    // The action still validates and (on the node) runs: validation does not look at aggregates.
    validate_request(&procs, "list", &mut args(json!({"pattern": "ssh"}))).unwrap();
}

#[test]
fn plugin_validators_check_the_type_only_and_built_ins_stay_strict() {
    let nrpe = load("nrpe.json");
    let w = nrpe.warnings();
    assert!(w.iter().any(|w| w.contains("input 'command'") && w.contains("'nrpe_command'") && w.contains("type (string) only")), "{w:?}");
    // Type only: any string, within maxlength.
    validate_request(&nrpe, "runcommand", &mut args(json!({"command": "check_load"}))).unwrap();
    validate_request(&nrpe, "runcommand", &mut args(json!({"command": "anything at all; really"}))).unwrap();
    let e = validate_request(&nrpe, "runcommand", &mut args(json!({"command": 5}))).unwrap_err();
    assert_eq!(e.to_string(), "input 'command' must be of type string (got integer)");
    let e = validate_request(&nrpe, "runcommand", &mut args(json!({"command": "x".repeat(51)}))).unwrap_err();
    assert!(e.to_string().contains("maxlength of 50"), "{e}");
    // The regex input beside it is still checked (Ruby's \A and \z work).
    let e = validate_request(&nrpe, "runcommand", &mut args(json!({"command": "c", "args": "a;b"}))).unwrap_err();
    assert!(e.to_string().contains("does not match the validation"), "{e}");

    let page = doc::render_text(&nrpe);
    let words = page.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(words.contains("Validation: nrpe_command (plugin validator, not available in fleet: checked as a string only)"), "{page}");

    // A built-in validator in the same kind of DDL stays strict.
    let procs = load("procs.json");
    let e = validate_request(&procs, "list", &mut args(json!({"pattern": "a;b"}))).unwrap_err();
    assert!(e.to_string().contains("shell safe"), "{e}");
    validate_request(&procs, "list", &mut args(json!({"user": "any thing"}))).unwrap();
}

#[test]
fn a_ruby_ddl_gets_directions_not_line_zero() {
    let e = Ddl::from_path(Path::new("tests/fixtures/compat/nrpe.ddl")).unwrap_err();
    let shown = e.to_string();
    assert!(shown.starts_with("tests/fixtures/compat/nrpe.ddl: this is a legacy MCollective Ruby DDL"), "{shown}");
    assert!(!shown.contains(":0"), "{shown}");
    for needle in ["TOML", "Choria's JSON DDL", "choria plugin generate ddl", "mco plugin doc", "fleet ddl new"] {
        assert!(shown.contains(needle), "{needle}: {shown}");
    }
}

#[test]
fn every_builtin_round_trips_through_choria_json() {
    for (name, text) in builtin::all() {
        let ddl = Ddl::from_toml(text, name).unwrap();
        let json = ddl.to_choria_json_string();
        let back = Ddl::from_json(&json, &format!("{name}.json")).unwrap_or_else(|e| panic!("{name}: {e}\n{json}"));
        assert_eq!(back, ddl, "{name}");
        assert_eq!(back.digest(), ddl.digest(), "{name}");
        let doc: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(doc["$schema"], "https://choria.io/schemas/mcorpc/ddl/v1/agent.json");
        assert!(doc["actions"].as_array().unwrap().iter().all(|a| a["display"].is_string()), "{name}");
    }
}

#[test]
fn every_valid_fixture_round_trips_through_choria_json() {
    for entry in std::fs::read_dir("tests/fixtures/valid").unwrap() {
        let path = entry.unwrap().path();
        let ddl = Ddl::from_path(&path).unwrap();
        let back = Ddl::from_json(&ddl.to_choria_json_string(), "x.json").unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(back, ddl, "{}", path.display());
    }
}
