//! Any bytes as the body of a Request envelope: what a node decodes once a signature checked, and
//! then validates (filter, DDL) before policy. Nothing may panic.

#![no_main]

use std::sync::OnceLock;

use fleet_ddl::Ddl;
use fleet_protocol::codec::Limits;
use fleet_protocol::{Envelope, Kind, Message, NodeView, PROTOCOL_VERSION};
use libfuzzer_sys::fuzz_target;

fn builtin_ddls() -> &'static Vec<Ddl> {
    static DDLS: OnceLock<Vec<Ddl>> = OnceLock::new();
    DDLS.get_or_init(|| {
        fleet_ddl::builtin::all()
            .into_iter()
            .map(|(name, text)| Ddl::from_toml(text, name).expect("built-in DDLs parse"))
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let env = Envelope { version: PROTOCOL_VERSION, kind: Kind::Request, body: data.to_vec(), signer: None, signature: None };
    let Ok(Message::Request(mut req)) = env.open(&limits) else { return };
    if let Ok(expr) = req.filter.compile() {
        let facts = serde_json::json!({"customer": "acme", "os": {"family": "debian"}, "n": 3});
        let classes = vec!["acme::devserver".to_string()];
        let view = NodeView { identity: "node-1", facts: &facts, classes: &classes, agents: vec!["rpcutil", "echo", "process"] };
        let _ = expr.matches(&view);
    }
    if let Some(ddl) = builtin_ddls().iter().find(|d| d.metadata.name == req.agent) {
        let _ = fleet_ddl::validate_request(ddl, &req.action, &mut req.args);
    }
});
