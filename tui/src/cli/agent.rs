//! `fleet agent new NAME --lang python|shell`: an external agent and its DDL, ready for a node's
//! agents directory.

use std::path::Path;

use anyhow::Result;
use fleet_client::agent_template::{self, Lang};

pub fn new(name: &str, lang: &str, dir: &Path, force: bool) -> Result<i32> {
    let lang: Lang = lang.parse().map_err(fleet_client::ClientError::input)?;
    for path in agent_template::write_agent(dir, name, lang, force)? {
        println!("wrote {}", path.display());
    }
    println!(
        "next: copy both into a node's agents_dir and run `fleet rpc rpcutil reload_agents`, then `fleet rpc {name} run message=hello`"
    );
    Ok(0)
}
