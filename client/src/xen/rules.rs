//! The balancer policy's `[rules]`: expressions in fleet's own filter language (the `-S` grammar
//! of [`fleet_protocol::filter`], parsed and evaluated by it) over what is known of a dom0 or a
//! domU, so an admin can say which domUs may move (`movable = "not name=/^db-/"`), which dom0s may
//! receive them (`receive = "datacenter=fra1 and free_mem_mib>=4096"`), and which receiving
//! dom0s come first (`prefer = ["rack=r12", "datacenter=fra1"]`). Every verdict comes back as text
//! naming the rule and the values it read, for the plan's trace.
//!
//! A dom0 is seen as its node's facts and classes plus its metrics (`name`, `load`, `load_5`,
//! `load_15`, `domus`, `free_mem_mib`, `total_mem_mib`, `nr_cpus`; a metric wins over a fact of
//! the same name) and, while a domU is being placed, that domU as `domu.*`. A domU is seen as
//! `name`, `mem_mib`, `vcpus`, `state`, `cpu_time`, `cpu_eaten` and its current dom0 as `dom0.*`.

use fleet_protocol::NodeView;
use fleet_protocol::filter::{FilterExpr, fact_text, lookup_fact, parse_compound};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One rule: the text as written and its parsed expression.
#[derive(Debug, Clone)]
pub struct Rule {
    pub text: String,
    expr: FilterExpr,
}

impl PartialEq for Rule {
    fn eq(&self, other: &Rule) -> bool {
        self.text == other.text
    }
}

impl Rule {
    /// Parses `text` as a compound filter; `key` (`rules.receive`) names it in errors. Data
    /// functions (`fstat(...)`) are refused: only a node can answer them, and these rules are
    /// evaluated by the client.
    pub fn parse(key: &str, text: &str) -> Result<Rule, String> {
        let expr = parse_compound(text).map_err(|e| format!("{key}: {e}"))?;
        if let Some(term) = expr.data_terms().first() {
            return Err(format!("{key}: {term} is a data function, answered only on nodes; a balancer rule cannot use it"));
        }
        Ok(Rule { text: text.to_string(), expr })
    }

    /// Whether `subject` meets the rule.
    pub fn holds(&self, subject: &Subject) -> bool {
        self.expr.eval(&subject.view(), None) == Some(true)
    }

    /// The values the rule reads from `subject`, `key=value, ...` (`(none)` when unknown), so a
    /// verdict says why.
    pub fn read(&self, subject: &Subject) -> String {
        let mut keys = Vec::new();
        keys_of(&self.expr, &mut keys);
        let shown: Vec<String> = keys
            .iter()
            .map(|k| {
                let v = if k == "identity" { Some(subject.name.clone()) } else { lookup_fact(&subject.facts, k).and_then(fact_text) };
                format!("{k}={}", v.unwrap_or_else(|| "(none)".into()))
            })
            .collect();
        shown.join(", ")
    }
}

/// The fact keys an expression reads, each once, in the order written.
fn keys_of(e: &FilterExpr, out: &mut Vec<String>) {
    let mut add = |k: &str| {
        if !out.iter().any(|o| o == k) {
            out.push(k.to_string());
        }
    };
    match e {
        FilterExpr::And(list) | FilterExpr::Or(list) => list.iter().for_each(|x| keys_of(x, out)),
        FilterExpr::Not(x) => keys_of(x, out),
        FilterExpr::Fact { key, .. } => add(key),
        FilterExpr::Identity(_) => add("identity"),
        FilterExpr::Class(_) | FilterExpr::Agent(_) | FilterExpr::Data(_) => {}
    }
}

/// What a rule is evaluated against: a dom0 or a domU, by name, with its facts as one JSON
/// object (dotted keys reach into nested ones) and, for a dom0, its node's classes.
#[derive(Debug, Clone, Default)]
pub struct Subject {
    pub name: String,
    pub facts: Value,
    pub classes: Vec<String>,
}

impl Subject {
    fn view(&self) -> NodeView<'_> {
        NodeView { identity: &self.name, facts: &self.facts, classes: &self.classes, agents: Vec::new() }
    }

    /// The subject with `other` under `key` (`domu`, `dom0`), for rules that look at both sides.
    pub fn with(&self, key: &str, other: &Subject) -> Subject {
        let mut facts = self.facts.clone();
        if let Value::Object(map) = &mut facts {
            map.insert(key.to_string(), other.facts.clone());
        }
        Subject { facts, ..self.clone() }
    }
}

/// The `[rules]` table of a balancer policy. `receive` and `movable` take one expression or a
/// list (every one must hold); `prefer` is a list, the first that a dom0 meets giving its rank.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RulesText", into = "RulesText")]
pub struct Rules {
    pub receive: Vec<Rule>,
    pub movable: Vec<Rule>,
    pub prefer: Vec<Rule>,
}

/// `[rules]` as written in TOML.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RulesText {
    receive: OneOrMany,
    movable: OneOrMany,
    prefer: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn list(self) -> Vec<String> {
        match self {
            OneOrMany::None => Vec::new(),
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

impl TryFrom<RulesText> for Rules {
    type Error = String;
    fn try_from(t: RulesText) -> Result<Rules, String> {
        let parse = |key: &str, list: Vec<String>| -> Result<Vec<Rule>, String> {
            list.iter().enumerate().map(|(i, text)| Rule::parse(&format!("rules.{key}[{i}]"), text)).collect()
        };
        Ok(Rules {
            receive: parse("receive", t.receive.list())?,
            movable: parse("movable", t.movable.list())?,
            prefer: parse("prefer", t.prefer)?,
        })
    }
}

impl From<Rules> for RulesText {
    fn from(r: Rules) -> RulesText {
        let texts = |rules: &[Rule]| rules.iter().map(|r| r.text.clone()).collect::<Vec<_>>();
        RulesText { receive: OneOrMany::Many(texts(&r.receive)), movable: OneOrMany::Many(texts(&r.movable)), prefer: texts(&r.prefer) }
    }
}

impl Rules {
    pub fn is_empty(&self) -> bool {
        self.receive.is_empty() && self.movable.is_empty() && self.prefer.is_empty()
    }

    /// `None` when every `movable` rule holds for `domu`, else why not.
    pub fn refuses_to_move(&self, domu: &Subject) -> Option<String> {
        self.movable.iter().find(|r| !r.holds(domu)).map(|r| format!("rule movable \"{}\" is false ({})", r.text, r.read(domu)))
    }

    /// `None` when every `receive` rule holds for `dom0` taking `domu`, else why not.
    pub fn refuses_to_receive(&self, dom0: &Subject, domu: &Subject) -> Option<String> {
        let seen = dom0.with("domu", domu);
        self.receive
            .iter()
            .find(|r| !r.holds(&seen))
            .map(|r| format!("rule receive \"{}\" is false for {} ({})", r.text, domu.name, r.read(&seen)))
    }

    /// The rank of `dom0` as a receiver of `domu`: the index of the first `prefer` rule it meets,
    /// `prefer.len()` when none.
    pub fn rank(&self, dom0: &Subject, domu: &Subject) -> usize {
        let seen = dom0.with("domu", domu);
        self.prefer.iter().position(|r| r.holds(&seen)).unwrap_or(self.prefer.len())
    }

    /// The trace of a move `rules` allowed: which rule let the domU go, which let the dom0 take
    /// it, and which preference picked it. Empty without rules.
    pub fn trace(&self, domu: &Subject, dom0: &Subject) -> Vec<String> {
        let mut lines = Vec::new();
        for r in &self.movable {
            lines.push(format!("rule movable \"{}\" holds for {} ({})", r.text, domu.name, r.read(domu)));
        }
        let seen = dom0.with("domu", domu);
        for r in &self.receive {
            lines.push(format!("rule receive \"{}\" holds for {} taking {} ({})", r.text, dom0.name, domu.name, r.read(&seen)));
        }
        if !self.prefer.is_empty() {
            let rank = self.rank(dom0, domu);
            lines.push(match self.prefer.get(rank) {
                Some(r) => format!("rule prefer #{} \"{}\" picked {} ({})", rank + 1, r.text, dom0.name, r.read(&seen)),
                None => format!(
                    "rule prefer: {} meets none of the {} preference(s); no preferred dom0 could take {}",
                    dom0.name,
                    self.prefer.len(),
                    domu.name
                ),
            });
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn subject(name: &str, facts: Value) -> Subject {
        Subject { name: name.into(), facts, classes: vec!["xen_prod".into()] }
    }

    fn rules(toml_text: &str) -> Result<Rules, String> {
        #[derive(Deserialize)]
        struct Top {
            rules: Rules,
        }
        toml::from_str::<Top>(toml_text).map(|t| t.rules).map_err(|e| e.message().to_string())
    }

    #[test]
    fn rules_are_filter_expressions_over_facts_metrics_and_the_other_side() {
        let r = rules("[rules]\nreceive = \"datacenter=fra1 and free_mem_mib>=4096\"\nmovable = [\"not name=/^db-/\", \"mem_mib<8192\"]\n")
            .unwrap();
        let web = subject("web1", json!({"name": "web1", "mem_mib": 2048}));
        let db = subject("db-main", json!({"name": "db-main", "mem_mib": 2048}));
        assert_eq!(r.refuses_to_move(&web), None);
        assert_eq!(r.refuses_to_move(&db).unwrap(), "rule movable \"not name=/^db-/\" is false (name=db-main)");
        let fra = subject("xen-02", json!({"datacenter": "fra1", "free_mem_mib": 8192}));
        let ams = subject("xen-03", json!({"datacenter": "ams1", "free_mem_mib": 8192}));
        assert_eq!(r.refuses_to_receive(&fra, &web), None);
        assert_eq!(
            r.refuses_to_receive(&ams, &web).unwrap(),
            "rule receive \"datacenter=fra1 and free_mem_mib>=4096\" is false for web1 (datacenter=ams1, free_mem_mib=8192)"
        );
        // Unknown metrics read as (none) and do not hold.
        let blind = subject("xen-04", json!({"datacenter": "fra1"}));
        assert!(r.refuses_to_receive(&blind, &web).unwrap().ends_with("(datacenter=fra1, free_mem_mib=(none))"));
        // A rule may look at the domU being placed, and at classes.
        let r = rules("[rules]\nreceive = \"xen_prod and (datacenter=fra1 or domu.mem_mib<4096)\"\n").unwrap();
        assert_eq!(r.refuses_to_receive(&ams, &web), None);
    }

    #[test]
    fn the_first_preference_met_gives_the_rank() {
        let r = rules("[rules]\nprefer = [\"rack=r12\", \"datacenter=fra1\"]\n").unwrap();
        let web = subject("web1", json!({"name": "web1"}));
        let r12 = subject("xen-05", json!({"rack": "r12", "datacenter": "ams1"}));
        let fra = subject("xen-02", json!({"rack": "r1", "datacenter": "fra1"}));
        let other = subject("xen-09", json!({}));
        assert_eq!((r.rank(&r12, &web), r.rank(&fra, &web), r.rank(&other, &web)), (0, 1, 2));
        assert_eq!(r.trace(&web, &fra), ["rule prefer #2 \"datacenter=fra1\" picked xen-02 (datacenter=fra1)"]);
    }

    #[test]
    fn bad_rules_are_refused_with_the_key_and_the_column() {
        let e = rules("[rules]\nreceive = \"datacenter=fra1 and\"\n").unwrap_err();
        assert!(e.starts_with("rules.receive[0]: invalid filter at column"), "{e}");
        let e = rules("[rules]\nmovable = 'fstat(\"/etc/x\").present=true'\n").unwrap_err();
        assert!(e.contains("rules.movable[0]: fstat(\"/etc/x\").present is a data function"), "{e}");
        let e = rules("[rules]\nreceiver = \"a=b\"\n").unwrap_err();
        assert!(e.contains("unknown field `receiver`"), "{e}");
    }
}
