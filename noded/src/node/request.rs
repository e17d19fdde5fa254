//! How a node answers one request, in the order of its steps: verify the signature over the raw
//! bytes, then check the caller, the collective, the ttl, the request's age and whether it was
//! seen before, match the filter, validate against the DDL, authorize, run, audit and reply.
//! Every refusal is audited with its reason and answered when the caller wants a reply; a request
//! meant for other nodes is neither.

use std::sync::Arc;
use std::time::{Duration, Instant};

use fleet_protocol::codec::Limits;
use fleet_protocol::{Message, NodeView, Reply, ReplyMode, Request, Status};
use serde_json::Value;
use tracing::{debug, info, warn};

use super::{NodeState, Stats};
use crate::agents::{Agent, AgentSet, RequestMeta};
use crate::audit::{AuditDecision, AuditRecord, args_digest};

/// Why a request goes no further.
enum Stop {
    /// Meant for other nodes (another collective, other targets, a filter this node fails):
    /// no reply and no audit line.
    NotForThisNode,
    /// Refused: audited, and answered when the caller wants a reply.
    Refused { status: Status, message: String, decision: AuditDecision, reason: String },
    /// Refused and audited, but not answered.
    Unanswered { decision: AuditDecision, reason: String },
}

impl Stop {
    /// Refused before authorization; the reply and the audit line give the same reason.
    fn rejected(status: Status, why: String) -> Stop {
        Stop::Refused { status, message: why.clone(), decision: AuditDecision::Rejected, reason: why }
    }
}

/// What the node is while it decides on one request: an agent reload or a facts change meanwhile
/// does not change the answer halfway.
struct Snapshot {
    facts: Arc<Value>,
    classes: Arc<Vec<String>>,
    agents: AgentSet,
    agent_names: Vec<String>,
}

impl Snapshot {
    fn view<'a>(&'a self, identity: &'a str) -> NodeView<'a> {
        NodeView { identity, facts: &self.facts, classes: &self.classes, agents: self.agent_names.iter().map(String::as_str).collect() }
    }
}

impl NodeState {
    /// Handles one request envelope as it came off the wire: the signature is checked over the raw
    /// bytes before the body is decoded. `None` means no reply is sent (rejected before decoding,
    /// filtered out, or fire-and-forget).
    pub async fn handle_envelope(self: &Arc<Self>, env: fleet_protocol::Envelope, limits: &Limits) -> Option<Reply> {
        let started = Instant::now();
        let _settle = self.settle.guard();
        Stats::bump(&self.stats.total);
        let claimed = env.signer.clone().unwrap_or_else(|| "-".into());
        let caller = match env.verify(&self.security.callers()) {
            Ok(c) => c,
            Err(e) => {
                Stats::bump(&self.stats.unvalidated);
                warn!(signer = %claimed, error = %e, "request rejected before decoding");
                self.audit(None, &claimed, AuditDecision::Rejected, e.to_string(), started);
                return None;
            }
        };
        let req = match env.open(limits) {
            Ok(Message::Request(r)) => *r,
            Ok(other) => {
                self.audit(None, &caller, AuditDecision::Rejected, format!("not a request: {:?}", other.kind()), started);
                return None;
            }
            Err(e) => {
                Stats::bump(&self.stats.unvalidated);
                self.audit(None, &caller, AuditDecision::Rejected, format!("malformed request: {e}"), started);
                return None;
            }
        };
        self.handle_request(req, caller, started).await
    }

    /// Handles a request whose signature was verified and whose signer is `caller`.
    pub async fn handle_request(self: &Arc<Self>, mut req: Request, caller: String, started: Instant) -> Option<Reply> {
        match self.admit(&mut req, &caller) {
            Ok((agent, rule)) => self.run(agent, req, &caller, rule, started).await,
            Err(Stop::NotForThisNode) => None,
            Err(Stop::Unanswered { decision, reason }) => {
                self.audit(Some(&req), &caller, decision, reason, started);
                None
            }
            Err(Stop::Refused { status, message, decision, reason }) => {
                self.audit(Some(&req), &caller, decision, reason, started);
                (req.reply == ReplyMode::Normal).then(|| self.reply(&req, status, message, Value::Null, started))
            }
        }
    }

    /// Every check a request must pass, in order. Returns the agent to run and the policy rule
    /// that allowed it. `req.args` gets the DDL's defaults.
    fn admit(&self, req: &mut Request, caller: &str) -> Result<(Arc<dyn Agent>, String), Stop> {
        self.check_caller(req, caller)?;
        self.check_collective(req)?;
        self.check_ttl(req, caller)?;
        let now = fleet_protocol::now_ms();
        self.check_age(req, caller, now)?;
        self.check_replay(req, caller, now)?;
        let snapshot = self.snapshot();
        self.check_filter(req, &snapshot)?;
        let agent = self.validate(req, caller, &snapshot)?;
        let rule = self.authorize(req, caller, &snapshot)?;
        Ok((agent, rule))
    }

    /// The caller field must name the key that signed the request.
    fn check_caller(&self, req: &Request, caller: &str) -> Result<(), Stop> {
        if req.caller == caller {
            return Ok(());
        }
        Err(Stop::rejected(Status::Denied, format!("caller field '{}' does not match the signing key '{caller}'", req.caller)))
    }

    fn check_collective(&self, req: &Request) -> Result<(), Stop> {
        if self.config.collectives.contains(&req.collective) {
            return Ok(());
        }
        Stats::bump(&self.stats.filtered);
        Err(Stop::NotForThisNode)
    }

    /// A ttl over `max_ttl` is refused: the replay cache must remember an id for its whole ttl,
    /// and a request valid for days would outlive any cache.
    fn check_ttl(&self, req: &Request, caller: &str) -> Result<(), Stop> {
        let max = self.config.max_ttl;
        if req.ttl <= max {
            return Ok(());
        }
        let why = format!("ttl of {} s is over this node's max_ttl of {max} s", req.ttl);
        warn!(request = %req.id, caller = %caller, "{why}");
        Err(Stop::rejected(Status::Denied, why))
    }

    /// Refuses requests past their ttl, sent before this process started, or from the future.
    ///
    /// Why "before this process started": the replay cache lives in memory, so a restart empties
    /// it, and a request captured before the restart may still be within its ttl. Any request
    /// whose `msgtime` is earlier than this node's start (less the allowed clock skew) could have
    /// been seen by the previous process, so it is refused rather than risk running it twice.
    /// The cost: a request sent in the seconds before a node (re)starts is refused by that node
    /// with a message saying so, and the caller retries; a caller whose clock runs behind by more
    /// than the skew sees this only in its first moments after a node's start. Keeping the cache
    /// on disk instead would cost a write per request on every node.
    fn check_age(&self, req: &Request, caller: &str, now: u64) -> Result<(), Stop> {
        let skew = self.security.max_skew_ms;
        let age_ms = now.saturating_sub(req.msgtime);
        let refusal = if age_ms > u64::from(req.ttl) * 1000 {
            Stats::bump(&self.stats.ttlexpired);
            let why = format!("request expired: sent {:.1} s ago with a ttl of {} s", age_ms as f64 / 1000.0, req.ttl);
            Stop::rejected(Status::Aborted, why)
        } else if req.msgtime.saturating_add(skew) < self.started_ms {
            let why = format!(
                "request sent before this node started ({:.1} s before; replays across a restart are refused)",
                self.started_ms.saturating_sub(req.msgtime) as f64 / 1000.0
            );
            Stop::rejected(Status::Denied, why)
        } else if req.msgtime > now + skew {
            let ahead = (req.msgtime - now) as f64 / 1000.0;
            Stop::rejected(Status::Denied, format!("request from the future: msgtime is {ahead:.1} s ahead of this node's clock"))
        } else {
            return Ok(());
        };
        if let Stop::Refused { message, .. } = &refusal {
            warn!(request = %req.id, caller = %caller, "{message}");
        }
        Err(refusal)
    }

    /// The same request id is acted on once within its ttl.
    fn check_replay(&self, req: &Request, caller: &str, now: u64) -> Result<(), Stop> {
        let expires = req.msgtime + u64::from(req.ttl) * 1000 + self.security.max_skew_ms;
        if self.security.replay.first_time(&req.id, expires, now) {
            return Ok(());
        }
        let why = "replayed request: this request id was already received".to_string();
        warn!(request = %req.id, caller = %caller, "{why}");
        // Attached to several hubs, a node gets each request once per hub a console sent it
        // through. The first copy's reply leaves through every hub; a refusal of a later copy would
        // only race it, and a hub forwards one reply per node and request.
        if self.config.hubs.len() > 1 {
            return Err(Stop::Unanswered { decision: AuditDecision::Rejected, reason: why });
        }
        Err(Stop::rejected(Status::Denied, why))
    }

    fn snapshot(&self) -> Snapshot {
        let agents = self.agents();
        Snapshot { facts: self.facts(), classes: self.classes(), agent_names: agents.names(), agents }
    }

    /// Whether the request is meant for this node: its targets and its filter, evaluated here
    /// whatever the hub decided.
    fn check_filter(&self, req: &Request, snapshot: &Snapshot) -> Result<(), Stop> {
        let expr = req.filter.compile().map_err(|e| {
            Stats::bump(&self.stats.unvalidated);
            let reason = format!("bad filter: {}", e.message);
            Stop::Refused { status: Status::InvalidData, message: e.to_string(), decision: AuditDecision::Rejected, reason }
        })?;
        let targeted = req.targets.is_empty() || req.targets.contains(&self.identity);
        if !targeted || !expr.matches(&snapshot.view(&self.identity)) {
            Stats::bump(&self.stats.filtered);
            debug!(request = %req.id, "filtered out");
            return Err(Stop::NotForThisNode);
        }
        Stats::bump(&self.stats.passed);
        Ok(())
    }

    /// The agent exists here and the action and arguments are what its DDL declares.
    fn validate(&self, req: &mut Request, caller: &str, snapshot: &Snapshot) -> Result<Arc<dyn Agent>, Stop> {
        let Some(agent) = snapshot.agents.get(&req.agent).cloned() else {
            Stats::bump(&self.stats.unvalidated);
            let why = format!("unknown agent '{}' (this node has: {})", req.agent, snapshot.agent_names.join(", "));
            return Err(Stop::rejected(Status::UnknownAction, why));
        };
        if let Err(e) = fleet_ddl::validate_request(agent.ddl(), &req.action, &mut req.args) {
            Stats::bump(&self.stats.unvalidated);
            let status = validation_status(&e);
            info!(request = %req.id, caller = %caller, agent = %req.agent, action = %req.action, error = %e, "request refused by DDL");
            return Err(Stop::rejected(status, e.to_string()));
        }
        Stats::bump(&self.stats.validated);
        Ok(agent)
    }

    /// The agent's action policy. Returns the rule that allowed the request.
    fn authorize(&self, req: &Request, caller: &str, snapshot: &Snapshot) -> Result<String, Stop> {
        let decision = self.security.policies.decide(&req.agent, caller, &req.action, &snapshot.view(&self.identity));
        if decision.allowed {
            return Ok(decision.rule);
        }
        info!(request = %req.id, caller = %caller, agent = %req.agent, action = %req.action, rule = %decision.rule, "denied");
        Err(Stop::Refused {
            status: Status::Denied,
            message: format!("denied by {}", decision.rule),
            decision: AuditDecision::Denied,
            reason: decision.rule,
        })
    }

    /// Runs the action within its DDL timeout, audits it as allowed, and builds the reply.
    async fn run(self: &Arc<Self>, agent: Arc<dyn Agent>, req: Request, caller: &str, rule: String, started: Instant) -> Option<Reply> {
        let timeout = Duration::from_secs(agent.ddl().metadata.timeout);
        info!(request = %req.id, caller = %caller, agent = %req.agent, action = %req.action, "running action");
        // The request keeps its arguments for the audit line written after the action.
        let fut = agent.call(self.clone(), RequestMeta::of(&req), &req.action, req.args.clone());
        let outcome = tokio::time::timeout(timeout, fut).await;
        self.audit(Some(&req), caller, AuditDecision::Allowed, rule, started);
        if req.reply != ReplyMode::Normal {
            return None;
        }
        let (status, message, data) = match outcome {
            Ok(Ok(data)) => (Status::Ok, "OK".to_string(), data),
            Ok(Err(e)) => (e.status, e.message, e.data),
            Err(_) => (Status::Aborted, format!("timed out after {} s", timeout.as_secs()), Value::Null),
        };
        Some(self.reply(&req, status, message, data, started))
    }

    fn reply(&self, req: &Request, status: Status, status_msg: String, data: Value, started: Instant) -> Reply {
        Reply {
            request_id: req.id.clone(),
            sender: self.identity.clone(),
            status,
            status_msg,
            data,
            elapsed_us: started.elapsed().as_micros() as u64,
        }
    }

    fn audit(&self, req: Option<&Request>, caller: &str, decision: AuditDecision, reason: impl Into<String>, started: Instant) {
        let (id, agent, action, digest) = match req {
            Some(r) => (r.id.clone(), r.agent.clone(), r.action.clone(), args_digest(&r.args)),
            None => ("-".into(), "-".into(), "-".into(), "-".into()),
        };
        self.security.audit.log(AuditRecord {
            request_id: id,
            caller: caller.to_string(),
            agent,
            action,
            args_digest: digest,
            decision,
            reason: reason.into(),
            duration: started.elapsed(),
        });
    }
}

/// The reply status for a request its agent's DDL refuses.
pub(crate) fn validation_status(e: &fleet_ddl::ValidationError) -> Status {
    if e.is_unknown_action() {
        Status::UnknownAction
    } else if e.is_missing() {
        Status::MissingData
    } else {
        Status::InvalidData
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Audit;
    use crate::config::NodeConfig;
    use crate::security::Security;
    use fleet_protocol::keys::{KeyPair, Keyring};

    /// A node with no hubs, trusting nobody (the caller is taken as verified), allowing every
    /// action, and a clock skew of 5 s.
    fn node(config: NodeConfig) -> Arc<NodeState> {
        let key = Arc::new(KeyPair::generate());
        let security = Security::in_memory(key, None, Keyring::default(), std::path::Path::new("/nonexistent"), true, Audit::disabled());
        NodeState::new("n1".into(), config, serde_json::json!({}), Vec::new(), AgentSet::builtin(), security)
    }

    fn ping(msgtime: u64, ttl: u32) -> Request {
        Request {
            id: fleet_protocol::new_request_id(),
            collective: "fleet".into(),
            caller: "alice".into(),
            agent: "rpcutil".into(),
            action: "ping".into(),
            args: Default::default(),
            filter: Default::default(),
            targets: Vec::new(),
            msgtime,
            ttl,
            reply: ReplyMode::Normal,
            timeout_ms: 1000,
            fanout: Default::default(),
        }
    }

    fn answer(node: &Arc<NodeState>, req: Request) -> Reply {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(node.handle_request(req, "alice".into(), Instant::now())).expect("a reply")
    }

    #[test]
    fn a_ttl_over_max_ttl_is_refused() {
        let n = node(NodeConfig { max_ttl: 100, ..NodeConfig::default() });
        let r = answer(&n, ping(fleet_protocol::now_ms(), 101));
        assert_eq!((r.status, r.status_msg.as_str()), (Status::Denied, "ttl of 101 s is over this node's max_ttl of 100 s"));
        assert_eq!(answer(&n, ping(fleet_protocol::now_ms(), 100)).status, Status::Ok);
    }

    #[test]
    fn requests_sent_before_the_node_started_are_refused_beyond_the_skew() {
        let n = node(NodeConfig::default());
        let r = answer(&n, ping(n.started_ms - 10_000, 60));
        assert_eq!(r.status, Status::Denied, "{r:?}");
        assert!(r.status_msg.starts_with("request sent before this node started (10.0 s before"), "{r:?}");
        // Within the allowed skew of the start it is accepted.
        assert_eq!(answer(&n, ping(n.started_ms - 4_000, 60)).status, Status::Ok);
        // Past its ttl, expiry is what the caller is told.
        let r = answer(&n, ping(n.started_ms - 120_000, 60));
        assert_eq!(r.status, Status::Aborted, "{r:?}");
        assert!(r.status_msg.starts_with("request expired"), "{r:?}");
    }

    #[test]
    fn replays_and_requests_from_the_future_are_refused() {
        let n = node(NodeConfig::default());
        let req = ping(fleet_protocol::now_ms(), 60);
        assert_eq!(answer(&n, req.clone()).status, Status::Ok);
        let r = answer(&n, req);
        assert_eq!((r.status, r.status_msg.as_str()), (Status::Denied, "replayed request: this request id was already received"));
        let r = answer(&n, ping(fleet_protocol::now_ms() + 60_000, 60));
        assert!(r.status == Status::Denied && r.status_msg.starts_with("request from the future"), "{r:?}");
        assert_eq!(n.stats.snapshot().validated, 1);
    }
}
