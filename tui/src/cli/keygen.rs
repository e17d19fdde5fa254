//! `fleet keygen NAME`: a caller key pair; the name is the caller id.

use std::path::PathBuf;

use anyhow::{Result, bail};

use crate::config::ClientConfig;

pub fn run(name: &str, dir: Option<PathBuf>) -> Result<i32> {
    let Some(dir) = dir.or_else(ClientConfig::keys_dir) else { bail!("no config directory: pass --dir") };
    let (private, public) = fleet_protocol::keys::KeyPair::generate().save(&dir, name)?;
    println!("wrote {} (private, mode 0600) and {}", private.display(), public.display());
    println!("copy {} into the callers directory of every node (and hub) as {name}.pub;", public.display());
    println!("the file name is the caller id their policies see: {name}");
    Ok(0)
}
