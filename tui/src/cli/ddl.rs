//! `fleet ddl doc AGENT` and `fleet ddl check FILE`.

use std::path::Path;

use anyhow::Result;

pub fn doc(agent: &str, markdown: bool) -> Result<i32> {
    let ddl = fleet_client::ddl::find(agent)?;
    let page = if markdown { fleet_ddl::doc::render_markdown(&ddl) } else { fleet_ddl::doc::render_text(&ddl) };
    print!("{page}");
    Ok(0)
}

pub fn check(file: &Path) -> Result<i32> {
    match fleet_ddl::Ddl::from_path(file) {
        Ok(ddl) => {
            println!("{}: ok: agent {} {} with {} action(s)", file.display(), ddl.metadata.name, ddl.metadata.version, ddl.actions.len());
            Ok(0)
        }
        Err(e) => {
            eprintln!("{e}");
            Ok(1)
        }
    }
}
