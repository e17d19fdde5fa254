//! `fleet ddl doc NAME|FILE`, `fleet ddl check FILE`, `fleet ddl export NAME|FILE --json` and
//! `fleet ddl new NAME`.

use std::path::Path;

use anyhow::Result;
use fleet_ddl::Ddl;

/// A DDL named by file (a path, or a name ending in .toml/.json/.ddl) or by agent name.
fn load(agent: &str) -> Result<Ddl> {
    let path = Path::new(agent);
    let looks_like_file = agent.contains('/') || [".toml", ".json", ".ddl"].iter().any(|e| agent.ends_with(e)) || path.is_file();
    if looks_like_file {
        return Ok(Ddl::from_path(path)?);
    }
    Ok(fleet_client::ddl::find(agent)?)
}

/// What loads but does not fully work in fleet, on stderr, so pages and JSON stay clean.
fn warn(ddl: &Ddl) {
    for w in ddl.warnings() {
        eprintln!("warning: {w}");
    }
}

pub fn doc(agent: &str, markdown: bool) -> Result<i32> {
    let ddl = load(agent)?;
    warn(&ddl);
    let page = if markdown { fleet_ddl::doc::render_markdown(&ddl) } else { fleet_ddl::doc::render_text(&ddl) };
    print!("{page}");
    Ok(0)
}

pub fn check(file: &Path) -> Result<i32> {
    match Ddl::from_path(file) {
        Ok(ddl) => {
            warn(&ddl);
            println!("{}: ok: agent {} {} with {} action(s)", file.display(), ddl.metadata.name, ddl.metadata.version, ddl.actions.len());
            Ok(0)
        }
        Err(e) => {
            eprintln!("{e}");
            Ok(1)
        }
    }
}

pub fn export(agent: &str) -> Result<i32> {
    let ddl = load(agent)?;
    warn(&ddl);
    print!("{}", ddl.to_choria_json_string());
    Ok(0)
}

pub fn new(name: &str, dir: &Path, force: bool) -> Result<i32> {
    let path = fleet_client::agent_template::write_ddl(dir, name, force)?;
    println!("wrote {}", path.display());
    Ok(0)
}
