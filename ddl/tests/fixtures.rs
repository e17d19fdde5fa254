//! Every DDL fixture (after bottom's `tests/invalid_configs`): each valid one loads, each invalid one
//! fails with exactly the error stored next to it in `NAME.err`, written `NAME:LINE: MESSAGE`.
//! After a deliberate change of messages, `FLEET_BLESS=1 cargo test -p fleet-ddl --test fixtures`
//! rewrites the `.err` files; read the diff before keeping it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use fleet_ddl::{Ddl, builtin, doc};

/// The `.toml` and `.json` files of `tests/fixtures/<kind>`, sorted. Cargo runs integration tests
/// in the package's directory, so the relative path is also what errors name.
fn fixtures(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new("tests/fixtures").join(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("toml" | "json")))
        .collect();
    files.sort();
    files
}

fn file_name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn valid_fixtures_load() {
    let files = fixtures("valid");
    let json = files.iter().filter(|p| p.extension().is_some_and(|e| e == "json")).count();
    assert!(json >= 2, "want at least two Choria JSON DDLs, have {json}");
    for path in &files {
        let ddl = Ddl::from_path(path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ddl.metadata.name, path.file_stem().unwrap().to_string_lossy(), "{}", path.display());
        // Every valid DDL renders; the pages are not asserted here, only that nothing is lost.
        let page = doc::render_text(&ddl);
        let md = doc::render_markdown(&ddl);
        for (name, action) in &ddl.actions {
            assert!(page.contains(&format!("   {name} action")), "{}: {name}", path.display());
            assert!(md.contains(&format!("### {name}\n")), "{}: {name}", path.display());
            for input in action.input.keys().chain(action.output.keys()) {
                assert!(page.contains(&format!("           {input}:\n")), "{}: {name}.{input}", path.display());
            }
        }
    }
}

#[test]
fn invalid_fixtures_fail_with_their_exact_error() {
    let bless = std::env::var_os("FLEET_BLESS").is_some();
    let files = fixtures("invalid");
    assert!(files.len() >= 10, "want at least ten invalid fixtures, have {}", files.len());
    let mut first_with: BTreeMap<(String, String), String> = BTreeMap::new();
    let mut mismatches = Vec::new();
    for path in &files {
        let name = file_name(path);
        let err = match Ddl::from_path(path) {
            Ok(_) => panic!("{} loaded, but it is an invalid fixture", path.display()),
            Err(e) => e,
        };
        assert_eq!(err.file, path.display().to_string(), "the error names the file it was loaded from");
        assert!(err.line > 0, "{name}: the error names no line: {err}");
        let got = format!("{name}:{}: {}", err.line, err.message);
        let expected_path = path.with_file_name(format!("{name}.err"));
        if bless {
            std::fs::write(&expected_path, format!("{got}\n")).unwrap();
        } else {
            let expected = std::fs::read_to_string(&expected_path).unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
            if expected.trim_end() != got {
                mismatches.push(format!("{name}\n  expected: {}\n  got:      {got}", expected.trim_end()));
            }
        }
        // The same check reads the same in both formats; within a format each fixture has its own.
        let format = path.extension().unwrap().to_string_lossy().into_owned();
        if let Some(other) = first_with.insert((format, err.message.clone()), name.clone()) {
            panic!("{other} and {name} fail with the same message; each fixture must test its own error: {}", err.message);
        }
    }
    assert!(mismatches.is_empty(), "{} fixture(s) failed differently:\n{}", mismatches.len(), mismatches.join("\n"));
}

#[test]
fn every_expected_error_has_its_fixture() {
    for entry in std::fs::read_dir("tests/fixtures/invalid").unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "err") {
            assert!(path.with_extension("").exists(), "{} has no fixture", path.display());
        }
    }
}

#[test]
fn every_builtin_ddl_loads_under_its_name() {
    for (name, text) in builtin::all() {
        let ddl = Ddl::from_toml(text, &format!("ddl/agents/{name}.toml")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ddl.metadata.name, name);
        let on_disk = std::fs::read_to_string(format!("agents/{name}.toml")).unwrap();
        assert_eq!(on_disk, text, "builtin {name} is compiled from agents/{name}.toml");
    }
}

#[test]
fn every_agent_file_is_a_registered_builtin() {
    let registered: Vec<&str> = builtin::all().iter().map(|(name, _)| *name).collect();
    for entry in std::fs::read_dir("agents").unwrap() {
        let path = entry.unwrap().path();
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        assert!(registered.contains(&stem.as_str()), "{} is not registered in builtin::all()", path.display());
    }
}

#[test]
fn other_extensions_are_refused_by_name() {
    let e = Ddl::from_path(Path::new("tests/fixtures/agent.yaml")).unwrap_err();
    assert_eq!(e.to_string(), "tests/fixtures/agent.yaml: unsupported DDL file extension '.yaml' (expected .toml or .json)");
    let e = Ddl::from_path(Path::new("tests/fixtures/agent")).unwrap_err();
    assert_eq!(e.to_string(), "tests/fixtures/agent: a DDL file needs the extension .toml or .json");
}
