//! Snapshots of the process agent's help page, as `fleet ddl doc process` prints it and as Markdown.

use fleet_ddl::{Ddl, builtin, doc};

fn process() -> Ddl {
    Ddl::from_toml(builtin::PROCESS, "ddl/agents/process.toml").unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn process_help_text() {
    insta::assert_snapshot!("process_text", doc::render_text(&process()));
}

#[test]
fn process_help_markdown() {
    insta::assert_snapshot!("process_markdown", doc::render_markdown(&process()));
}
