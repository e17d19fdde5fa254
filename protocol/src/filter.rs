//! The discovery filter language. A [`Filter`] carries the user's filter flags as text (`-I`, `-F`,
//! `-C`, `-A`, `-S`); [`Filter::compile`] parses them into one [`FilterExpr`] that is evaluated
//! against a [`NodeView`] on the hub (registry) and again on every node (the authority).
//!
//! Grammar of a compound (`-S`) expression:
//! ```text
//! expr  := and ("or" and)*
//! and   := unary ("and" unary)*
//! unary := ("not" | "!") unary | "(" expr ")" | term
//! term  := KEY OP VALUE        fact comparison; OP is = == != =~ < <= > >=
//!        | identity=VALUE | class=VALUE | agent=VALUE | fact=KEY...
//!        | PLUGIN(ARG).FIELD OP VALUE   a data function, as in MCollective (`fstat("/etc/motd").present=true`)
//!        | VALUE               a bare word or /regex/ is a class, as in MCollective
//! VALUE := word | "quoted" | /regex/
//! ARG   := "quoted" | word | /regex/ | nothing (`puppet().enabled=false`)
//! ```
//! `=` with a `/regex/` value matches the regex; `< <= > >=` compare numerically when both sides
//! are numbers and as strings otherwise. Several `-I` are or-ed; all other flags are and-ed.
//!
//! # Data functions
//! A data term (`fstat("/etc/hosts").size>10`, `process("nginx").exists=true`, `puppet().enabled=false`)
//! asks a data plugin that runs on the node. The function name must be written right before its
//! `(`, and the `.FIELD` right after its `)`. Only a node can answer such a term, so evaluation is
//! three-valued ([`FilterExpr::eval`]): without a [`DataSource`] a data term is *unknown*, `and`,
//! `or` and `not` follow Kleene's logic, and [`FilterExpr::matches`] includes a node whose answer
//! is unknown. That is what the hub's registry does (it narrows the candidates, the nodes decide);
//! a node evaluates with its data plugins ([`FilterExpr::matches_with`], or the source installed
//! with [`install_data_source`]) and a term that fails (an unknown plugin, a missing field) is false.
//! [`Filter::needs_node_evaluation`] tells a client that registry discovery cannot answer a filter.
//!
//! `metric.NAME OP VALUE` (`metric.load1>8`) reads as the data term `metric().NAME OP VALUE`: the
//! node answers it from its latest metrics sample.

use std::fmt;
use std::sync::{Arc, RwLock};

use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Filter flags as the user typed them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter {
    #[serde(default)]
    pub identity: Vec<String>,
    #[serde(default)]
    pub fact: Vec<String>,
    #[serde(default)]
    pub class: Vec<String>,
    #[serde(default)]
    pub agent: Vec<String>,
    #[serde(default)]
    pub compound: Vec<String>,
}

impl Filter {
    pub fn is_empty(&self) -> bool {
        self.identity.is_empty() && self.fact.is_empty() && self.class.is_empty() && self.agent.is_empty() && self.compound.is_empty()
    }

    /// Parses every part; the first error names the flag and the column.
    pub fn compile(&self) -> Result<FilterExpr, FilterError> {
        let mut all = Vec::new();
        let ids: Result<Vec<_>, _> = self.identity.iter().map(|s| Ok(FilterExpr::Identity(Matcher::parse_value(s, "-I")?))).collect();
        let ids = ids?;
        if !ids.is_empty() {
            all.push(FilterExpr::Or(ids));
        }
        for s in &self.fact {
            all.push(parse_fact_term(s).map_err(|e| e.with_flag("-F"))?);
        }
        for s in &self.class {
            all.push(FilterExpr::Class(Matcher::parse_value(s, "-C")?));
        }
        for s in &self.agent {
            all.push(FilterExpr::Agent(Matcher::parse_value(s, "-A")?));
        }
        for s in &self.compound {
            all.push(parse_compound(s).map_err(|e| e.with_flag("-S"))?);
        }
        Ok(FilterExpr::And(all))
    }

    /// Whether the filter holds a data function (`fstat(...)`, `process(...)`, ...): only the nodes
    /// can evaluate those, so discovery from the hub's registry would over-count; a client should
    /// discover by broadcast instead (and say so). An invalid filter gives `false` (compiling it
    /// reports the error).
    pub fn needs_node_evaluation(&self) -> bool {
        self.compile().is_ok_and(|e| e.has_data_terms())
    }

    /// One line for logs and the console's top bar.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        for (flag, list) in [("-I", &self.identity), ("-F", &self.fact), ("-C", &self.class), ("-A", &self.agent)] {
            for v in list.iter() {
                parts.push(format!("{flag} {v}"));
            }
        }
        for v in &self.compound {
            parts.push(format!("-S \"{v}\""));
        }
        if parts.is_empty() { "(all nodes)".to_string() } else { parts.join(" ") }
    }
}

/// A parse error with the 1-based column it points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError {
    pub flag: Option<&'static str>,
    pub input: String,
    pub column: usize,
    pub message: String,
}

impl FilterError {
    fn new(input: &str, column: usize, message: impl Into<String>) -> Self {
        FilterError { flag: None, input: input.to_string(), column, message: message.into() }
    }
    fn with_flag(mut self, flag: &'static str) -> Self {
        self.flag.get_or_insert(flag);
        self
    }
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let flag = self.flag.map(|f| format!("{f} ")).unwrap_or_default();
        writeln!(f, "invalid filter {flag}at column {}: {}", self.column, self.message)?;
        writeln!(f, "  {}", self.input)?;
        write!(f, "  {}^", " ".repeat(self.column.saturating_sub(1)))
    }
}

impl std::error::Error for FilterError {}

/// Exact text or a regex.
#[derive(Debug, Clone)]
pub enum Matcher {
    Exact(String),
    Regex(Regex),
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Matcher::Exact(a), Matcher::Exact(b)) => a == b,
            (Matcher::Regex(a), Matcher::Regex(b)) => a.as_str() == b.as_str(),
            _ => false,
        }
    }
}

impl Matcher {
    fn parse_value(s: &str, flag: &'static str) -> Result<Matcher, FilterError> {
        let t = s.trim();
        if t.is_empty() {
            return Err(FilterError::new(s, 1, "empty value").with_flag(flag));
        }
        if t.len() >= 2 && t.starts_with('/') && t.ends_with('/') {
            compile_regex(&t[1..t.len() - 1], s, 2).map(Matcher::Regex).map_err(|e| e.with_flag(flag))
        } else if t.starts_with('/') {
            Err(FilterError::new(s, s.len() + 1, "regex is missing its closing '/'").with_flag(flag))
        } else {
            Ok(Matcher::Exact(t.to_string()))
        }
    }

    pub fn matches(&self, s: &str) -> bool {
        match self {
            Matcher::Exact(e) => e == s,
            Matcher::Regex(r) => r.is_match(s),
        }
    }
}

fn compile_regex(pattern: &str, input: &str, column: usize) -> Result<Regex, FilterError> {
    regex::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| FilterError::new(input, column, format!("bad regex /{pattern}/: {}", first_line(&e.to_string()))))
}

fn first_line(s: &str) -> String {
    s.lines().last().unwrap_or(s).trim().trim_start_matches("error: ").to_string()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
pub enum FilterExpr {
    And(Vec<FilterExpr>),
    Or(Vec<FilterExpr>),
    Not(Box<FilterExpr>),
    Identity(Matcher),
    Class(Matcher),
    Agent(Matcher),
    Fact {
        key: String,
        op: Op,
        value: FactValue,
    },
    /// A data function: `PLUGIN(ARG).FIELD OP VALUE`, answered by the node's data plugins.
    Data(DataTerm),
}

/// `fstat("/etc/motd").present=true`: which plugin, with what argument, which of its fields, and
/// the comparison (the same operators and values as a fact term).
#[derive(Debug, Clone, PartialEq)]
pub struct DataTerm {
    pub plugin: String,
    pub arg: Option<String>,
    pub field: String,
    pub op: Op,
    pub value: FactValue,
}

impl fmt::Display for DataTerm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let arg = self.arg.as_deref().map(|a| format!("{a:?}")).unwrap_or_default();
        write!(f, "{}({arg}).{}", self.plugin, self.field)
    }
}

/// The data plugins of a node: `query("fstat", Some("/etc/motd"), node)` gives the plugin's fields
/// for that argument (`present`, `size`, ...), or why it cannot (unknown plugin, bad argument).
pub trait DataSource: Send + Sync {
    fn query(&self, plugin: &str, arg: Option<&str>, node: &NodeView<'_>) -> Result<Map<String, Value>, String>;
}

static INSTALLED: RwLock<Option<Arc<dyn DataSource>>> = RwLock::new(None);

/// Installs the data plugins [`FilterExpr::matches`] uses in this process: a node daemon installs
/// its own when it starts, a hub installs none (data terms are then unknown, so included).
pub fn install_data_source(source: Arc<dyn DataSource>) {
    *INSTALLED.write().unwrap_or_else(|e| e.into_inner()) = Some(source);
}

/// The data plugins installed in this process, if any.
pub fn installed_data_source() -> Option<Arc<dyn DataSource>> {
    INSTALLED.read().unwrap_or_else(|e| e.into_inner()).clone()
}

#[derive(Debug, Clone, PartialEq)]
pub enum FactValue {
    Text(String),
    Regex(Matcher),
}

/// What a filter is evaluated against.
#[derive(Debug, Clone)]
pub struct NodeView<'a> {
    pub identity: &'a str,
    pub facts: &'a Value,
    pub classes: &'a [String],
    pub agents: Vec<&'a str>,
}

/// Looks up a dotted path (`os.family`) in nested facts; a literal key containing dots wins.
pub fn lookup_fact<'a>(facts: &'a Value, path: &str) -> Option<&'a Value> {
    let obj = facts.as_object()?;
    if let Some(v) = obj.get(path) {
        return Some(v);
    }
    let (head, rest) = path.split_once('.')?;
    lookup_fact(obj.get(head)?, rest)
}

/// A fact value as text, the way filters and the CLI show it.
pub fn fact_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => Some(String::new()),
        _ => None,
    }
}

impl FilterExpr {
    /// Whether the node matches. Data terms are answered by the data source installed in this
    /// process ([`install_data_source`]); without one they are unknown and the node is included
    /// unless the rest of the filter excludes it (the hub's registry narrows, the node decides).
    pub fn matches(&self, node: &NodeView<'_>) -> bool {
        let source = if self.has_data_terms() { installed_data_source() } else { None };
        self.eval(node, source.as_deref()) != Some(false)
    }

    /// Whether the node matches, data terms answered by `data`: what a node decides for itself.
    pub fn matches_with(&self, node: &NodeView<'_>, data: &dyn DataSource) -> bool {
        self.eval(node, Some(data)) == Some(true)
    }

    /// Three-valued evaluation: `None` when the answer depends on a data term and there is no
    /// `data` to ask. With `data`, the answer is always known.
    pub fn eval(&self, node: &NodeView<'_>, data: Option<&dyn DataSource>) -> Option<bool> {
        match self {
            FilterExpr::And(list) => {
                let mut known = true;
                for e in list {
                    match e.eval(node, data) {
                        Some(false) => return Some(false),
                        None => known = false,
                        Some(true) => {}
                    }
                }
                known.then_some(true)
            }
            FilterExpr::Or(list) => {
                let mut known = true;
                for e in list {
                    match e.eval(node, data) {
                        Some(true) => return Some(true),
                        None => known = false,
                        Some(false) => {}
                    }
                }
                known.then_some(false)
            }
            FilterExpr::Not(e) => e.eval(node, data).map(|b| !b),
            FilterExpr::Identity(m) => Some(m.matches(node.identity)),
            FilterExpr::Class(m) => Some(node.classes.iter().any(|c| m.matches(c))),
            FilterExpr::Agent(m) => Some(node.agents.iter().any(|a| m.matches(a))),
            FilterExpr::Fact { key, op, value } => Some(value_matches(lookup_fact(node.facts, key), *op, value)),
            FilterExpr::Data(term) => {
                let data = data?;
                Some(match data.query(&term.plugin, term.arg.as_deref(), node) {
                    Ok(fields) => value_matches(lookup_fact(&Value::Object(fields), &term.field), term.op, &term.value),
                    Err(_) => false,
                })
            }
        }
    }

    /// Whether any term is a data function.
    pub fn has_data_terms(&self) -> bool {
        match self {
            FilterExpr::And(list) | FilterExpr::Or(list) => list.iter().any(FilterExpr::has_data_terms),
            FilterExpr::Not(e) => e.has_data_terms(),
            FilterExpr::Data(_) => true,
            _ => false,
        }
    }

    /// Whether evaluating this reads the node's facts: a fact term does, and so may a data term
    /// (a data plugin can look facts up). A registry that keeps facts packed unpacks them only
    /// for a filter that reads them.
    pub fn reads_facts(&self) -> bool {
        match self {
            FilterExpr::And(list) | FilterExpr::Or(list) => list.iter().any(FilterExpr::reads_facts),
            FilterExpr::Not(e) => e.reads_facts(),
            FilterExpr::Fact { .. } | FilterExpr::Data(_) => true,
            FilterExpr::Identity(_) | FilterExpr::Class(_) | FilterExpr::Agent(_) => false,
        }
    }

    /// Every data term, in the order written.
    pub fn data_terms(&self) -> Vec<&DataTerm> {
        match self {
            FilterExpr::And(list) | FilterExpr::Or(list) => list.iter().flat_map(FilterExpr::data_terms).collect(),
            FilterExpr::Not(e) => e.data_terms(),
            FilterExpr::Data(t) => vec![t],
            _ => Vec::new(),
        }
    }
}

/// A fact's (or a data field's) value compared: absent matches only `!=`, an array matches when
/// any of its items does.
fn value_matches(actual: Option<&Value>, op: Op, value: &FactValue) -> bool {
    match actual {
        None => op == Op::Ne,
        Some(Value::Array(items)) => items.iter().filter_map(fact_text).any(|t| compare(&t, op, value)),
        Some(v) => fact_text(v).is_some_and(|t| compare(&t, op, value)),
    }
}

fn compare(actual: &str, op: Op, expected: &FactValue) -> bool {
    match expected {
        FactValue::Regex(m) => match op {
            Op::Ne => !m.matches(actual),
            _ => m.matches(actual),
        },
        FactValue::Text(e) => {
            let ord = match (actual.parse::<f64>(), e.parse::<f64>()) {
                (Ok(a), Ok(b)) => a.partial_cmp(&b),
                _ => Some(actual.cmp(e.as_str())),
            };
            let Some(ord) = ord else { return false };
            use std::cmp::Ordering::*;
            match op {
                Op::Eq => ord == Equal,
                Op::Ne => ord != Equal,
                Op::Lt => ord == Less,
                Op::Le => ord != Greater,
                Op::Gt => ord == Greater,
                Op::Ge => ord != Less,
            }
        }
    }
}

mod parse;
pub use parse::{parse_compound, parse_fact_term};

#[cfg(test)]
mod tests;
