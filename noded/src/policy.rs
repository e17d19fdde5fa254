//! Authorization: MCollective actionpolicy files, one per agent (`policies/<agent>.policy`),
//! deciding whether a proven caller may run an action on this node. First match wins.
//!
//! # Syntax
//! ```text
//! # comment lines and blank lines are ignored
//! policy default deny
//! allow   alice           *               *               *
//! allow   bob carol       status list     *               *
//! allow   dave            *               customer=acme   acme::devserver
//! deny    *               kill            environment=production and not /maintenance/
//! ```
//! A rule is `allow|deny <callers> <actions> <facts> <classes>`. `*` alone is a wildcard in every
//! field. Callers and actions are space-separated lists of exact names. Facts are space-separated
//! terms `key=value` (or `key=/regex/`, `key!=v`, `key>=3`, ... as in `-F` filters), all of which
//! must hold. Classes are space-separated class names or `/regex/`, all of which the node must
//! have. A facts or classes field that is a compound expression (a token `and`, `or` or `not`, or
//! a token starting with `!` or `(`, or ending with `)`) is parsed as a `-S` filter expression;
//! when both fields are given, both must hold.
//!
//! # How fields are split
//! - A line containing a tab is split on tabs, as MCollective writes policies: exactly 5 fields,
//!   or 4 when the fourth is a compound expression (MCollective's compound form; classes is then
//!   `*`). Runs of tabs count as one separator, and spaces around a field are ignored, so lists
//!   can hold spaces.
//! - A line without tabs is split on whitespace: `allow|deny`, one caller, one action, and the
//!   rest. If the rest is a compound expression it is the facts field and classes is `*` — except
//!   that a leading `* ` makes the compound the classes field, and a trailing ` *` is dropped.
//!   Otherwise the rest must be exactly two tokens, facts then classes. Lists and several fact
//!   terms need tabs (or `a=1 and b=2`).
//!
//! Unlike MCollective, a line that cannot be parsed is an error, never skipped: a policy file with
//! an error denies everything for its agent (see [`PolicySet`]). A file without a
//! `policy default` line defaults to deny.

use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use fleet_protocol::NodeView;
use fleet_protocol::filter::{FilterError, FilterExpr, parse_compound, parse_fact_term};

/// Extension of a policy file.
pub const POLICY_EXT: &str = "policy";
/// A policy file larger than this is refused (and so denies everything).
const MAX_POLICY_FILE: u64 = 1024 * 1024;

/// A policy file error: the file, the 1-based line, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct PolicyError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// The outcome of a policy check, and the line (or default) that decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// `policies/process.policy:3: allow alice * * *`, `default deny (policies/process.policy)`, ...
    pub rule: String,
}

impl Decision {
    fn deny(rule: String) -> Decision {
        Decision { allowed: false, rule }
    }
}

/// Exact names, or anything.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Names {
    Any,
    List(Vec<String>),
}

impl Names {
    fn contains(&self, name: &str) -> bool {
        match self {
            Names::Any => true,
            Names::List(list) => list.iter().any(|n| n == name),
        }
    }
}

#[derive(Debug, Clone)]
struct Rule {
    line: usize,
    /// The line as written, whitespace runs collapsed, for decisions and logs.
    text: String,
    allow: bool,
    callers: Names,
    actions: Names,
    /// `None` is `*`.
    facts: Option<FilterExpr>,
    classes: Option<FilterExpr>,
}

impl Rule {
    fn matches(&self, caller: &str, action: &str, node: &NodeView<'_>) -> bool {
        self.callers.contains(caller)
            && self.actions.contains(action)
            && self.facts.as_ref().is_none_or(|e| e.matches(node))
            && self.classes.as_ref().is_none_or(|e| e.matches(node))
    }
}

/// One agent's parsed policy.
#[derive(Debug, Clone)]
pub struct Policy {
    file: String,
    default_allow: bool,
    rules: Vec<Rule>,
}

impl Policy {
    /// Parses policy text; `file` names it in errors and decisions.
    pub fn parse(text: &str, file: &str) -> Result<Policy, PolicyError> {
        let mut default: Option<(bool, usize)> = None;
        let mut rules = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let err = |message: String| PolicyError { file: file.to_string(), line, message };
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let first = trimmed.split_whitespace().next().unwrap_or_default();
            if first == "policy" {
                let words: Vec<&str> = trimmed.split_whitespace().collect();
                let allow = match words.as_slice() {
                    ["policy", "default", "allow"] => true,
                    ["policy", "default", "deny"] => false,
                    _ => {
                        return Err(err(format!("expected 'policy default allow' or 'policy default deny', found '{trimmed}'")));
                    }
                };
                if let Some((_, earlier)) = default {
                    return Err(err(format!("a second 'policy default' line (the first is on line {earlier})")));
                }
                default = Some((allow, line));
                continue;
            }
            rules.push(parse_rule(trimmed, line).map_err(err)?);
        }
        Ok(Policy { file: file.to_string(), default_allow: default.is_some_and(|(allow, _)| allow), rules })
    }

    /// The first rule that matches decides; without one, the policy's default does.
    pub fn decide(&self, caller: &str, action: &str, node: &NodeView<'_>) -> Decision {
        match self.rules.iter().find(|r| r.matches(caller, action, node)) {
            Some(r) => Decision { allowed: r.allow, rule: format!("{}:{}: {}", self.file, r.line, r.text) },
            None => Decision { allowed: self.default_allow, rule: format!("default {} ({})", allow_word(self.default_allow), self.file) },
        }
    }

    pub fn default_allow(&self) -> bool {
        self.default_allow
    }

    pub fn file(&self) -> &str {
        &self.file
    }

    /// Number of allow/deny rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

fn allow_word(allow: bool) -> &'static str {
    if allow { "allow" } else { "deny" }
}

/// `(first token, rest)` of `s` split at its first whitespace.
fn split_token(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    match s.find(char::is_whitespace) {
        Some(i) => (&s[..i], s[i..].trim_start()),
        None => (s, ""),
    }
}

fn parse_rule(line_text: &str, line: usize) -> Result<Rule, String> {
    let (verb, _) = split_token(line_text);
    let allow = match verb {
        "allow" => true,
        "deny" => false,
        other => return Err(format!("expected 'allow', 'deny' or 'policy default ...', found '{other}'")),
    };
    let (callers, actions, facts, classes) = if line_text.contains('\t') { split_tabbed(line_text)? } else { split_spaced(line_text)? };
    Ok(Rule {
        line,
        text: line_text.split_whitespace().collect::<Vec<_>>().join(" "),
        allow,
        callers: parse_names(callers, "callers")?,
        actions: parse_names(actions, "actions")?,
        facts: parse_facts(facts)?,
        classes: parse_classes(classes)?,
    })
}

type Fields<'a> = (&'a str, &'a str, &'a str, &'a str);

fn split_tabbed(line_text: &str) -> Result<Fields<'_>, String> {
    let fields: Vec<&str> = line_text.split('\t').map(str::trim).filter(|f| !f.is_empty()).collect();
    if fields[0].contains(char::is_whitespace) {
        return Err(format!("this line separates fields with tabs, so '{}' needs a tab after '{}'", fields[0], split_token(fields[0]).0));
    }
    match fields.as_slice() {
        [_, callers, actions, facts, classes] => Ok((callers, actions, facts, classes)),
        [_, callers, actions, facts] if is_compound(facts) => Ok((callers, actions, facts, "*")),
        _ => Err(format!("expected 5 tab-separated fields (allow|deny, callers, actions, facts, classes), found {}", fields.len())),
    }
}

fn split_spaced(line_text: &str) -> Result<Fields<'_>, String> {
    let (_, rest) = split_token(line_text);
    let (callers, rest) = split_token(rest);
    let (actions, rest) = split_token(rest);
    let rest = rest.trim();
    if callers.is_empty() || actions.is_empty() || rest.is_empty() {
        return Err("expected 'allow|deny <callers> <actions> <facts> <classes>' (use * for any)".into());
    }
    if is_compound(rest) {
        let (head, tail) = split_token(rest);
        if head == "*" && !tail.is_empty() {
            return Ok((callers, actions, "*", tail));
        }
        if let Some(body) = rest.strip_suffix('*').filter(|b| b.ends_with(char::is_whitespace)) {
            return Ok((callers, actions, body.trim_end(), "*"));
        }
        return Ok((callers, actions, rest, "*"));
    }
    let tokens: Vec<&str> = rest.split_whitespace().collect();
    match tokens.as_slice() {
        [facts, classes] => Ok((callers, actions, facts, classes)),
        [_] => Err("expected a classes field after the facts field (use * for any)".into()),
        _ => Err(format!(
            "too many fields in '{rest}': separate the fields with tabs when a list has several entries, \
             or write several facts as a compound expression (a=1 and b=2)"
        )),
    }
}

/// MCollective's test, widened to `not` and `)`: a field holding `and`/`or`/`not`, or a token
/// starting with `!` or `(` or ending with `)`, is a compound expression. A `/regex/` value ends
/// with `/`, so parentheses inside a regex do not count.
fn is_compound(field: &str) -> bool {
    field
        .split_whitespace()
        .any(|t| matches!(t.to_ascii_lowercase().as_str(), "and" | "or" | "not") || t.starts_with(['!', '(']) || t.ends_with(')'))
}

fn parse_names(field: &str, what: &str) -> Result<Names, String> {
    if field == "*" {
        return Ok(Names::Any);
    }
    let list: Vec<String> = field.split_whitespace().map(str::to_string).collect();
    if list.iter().any(|n| n == "*") {
        return Err(format!("{what}: '*' must stand alone, it already means any"));
    }
    Ok(Names::List(list))
}

fn filter_error(what: &str, field: &str, e: FilterError) -> String {
    format!("{what} '{field}': {} (column {})", e.message, e.column)
}

fn parse_facts(field: &str) -> Result<Option<FilterExpr>, String> {
    if field == "*" {
        return Ok(None);
    }
    if is_compound(field) {
        return parse_compound(field).map(Some).map_err(|e| filter_error("facts", field, e));
    }
    let terms =
        field.split_whitespace().map(|t| parse_fact_term(t).map_err(|e| filter_error("fact", t, e))).collect::<Result<Vec<_>, _>>()?;
    Ok(Some(FilterExpr::And(terms)))
}

fn parse_classes(field: &str) -> Result<Option<FilterExpr>, String> {
    if field == "*" {
        return Ok(None);
    }
    if is_compound(field) {
        return parse_compound(field).map(Some).map_err(|e| filter_error("classes", field, e));
    }
    let classes = field
        .split_whitespace()
        .map(|t| match parse_compound(t) {
            Ok(e @ FilterExpr::Class(_)) => Ok(e),
            Ok(_) => Err(format!("class '{t}': expected a class name or /regex/ (facts go in the facts field)")),
            Err(e) => Err(filter_error("class", t, e)),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(FilterExpr::And(classes)))
}

// ---------------------------------------------------------------------------------------------
// The policy directory

/// What identifies one version of a file: a rewrite in place changes mtime (and usually the
/// length), an atomic replace changes the inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
    device: u64,
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Stamp {
        Stamp { modified: meta.modified().ok(), len: meta.len(), inode: meta.ino(), device: meta.dev() }
    }
}

#[derive(Debug)]
enum Loaded {
    /// No policy file: the node default applies.
    Missing,
    Parsed(Policy),
    /// Unreadable or invalid: everything is denied, and this says why.
    Broken(String),
}

#[derive(Debug, Clone)]
struct Cached {
    stamp: Option<Stamp>,
    loaded: Arc<Loaded>,
}

/// The node's policies: `<dir>/<agent>.policy`, read on first use, cached, and re-read when the
/// file changes (checked with one `stat` per decision). A missing file gives the node default
/// (deny unless configured otherwise); a file that cannot be read or parsed denies everything
/// for its agent, logged once per version of the file.
#[derive(Debug)]
pub struct PolicySet {
    dir: PathBuf,
    default_allow: bool,
    cache: Mutex<HashMap<String, Cached>>,
}

impl PolicySet {
    /// Nothing is read yet; each agent's file is read when first needed.
    pub fn load(dir: impl Into<PathBuf>, default_allow: bool) -> PolicySet {
        PolicySet { dir: dir.into(), default_allow, cache: Mutex::new(HashMap::new()) }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn default_allow(&self) -> bool {
        self.default_allow
    }

    /// Where `agent`'s policy lives.
    pub fn path_for(&self, agent: &str) -> PathBuf {
        self.dir.join(format!("{agent}.{POLICY_EXT}"))
    }

    /// Decides whether `caller` may run `agent`'s `action` on `node`.
    pub fn decide(&self, agent: &str, caller: &str, action: &str, node: &NodeView<'_>) -> Decision {
        if !valid_agent_name(agent) {
            return Decision::deny(format!("invalid agent name '{}'", agent.escape_debug()));
        }
        let path = self.path_for(agent);
        match &*self.current(agent, &path) {
            Loaded::Missing => Decision {
                allowed: self.default_allow,
                rule: format!("default {} (no {}; node default)", allow_word(self.default_allow), path.display()),
            },
            Loaded::Parsed(policy) => policy.decide(caller, action, node),
            Loaded::Broken(why) => Decision::deny(why.clone()),
        }
    }

    /// The cached policy if the file is unchanged, else a fresh read. The lock is never held
    /// across file access.
    fn current(&self, agent: &str, path: &Path) -> Arc<Loaded> {
        let cached = self.cache.lock().expect("policy cache lock").get(agent).cloned();
        let stamp = match std::fs::metadata(path) {
            Ok(meta) => Some(Stamp::of(&meta)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                // Not cached: the cause (a permission, a dying disk) may clear up by itself.
                let why = format!("policy file cannot be read: {}: {e}", path.display());
                tracing::error!(agent, file = %path.display(), error = %e, "policy file cannot be read; denying every request to this agent");
                return Arc::new(Loaded::Broken(why));
            }
        };
        if let Some(c) = cached.filter(|c| c.stamp == stamp) {
            return c.loaded;
        }
        let (stamp, loaded) = match stamp {
            None => (None, Loaded::Missing),
            Some(_) => read_policy(path),
        };
        match &loaded {
            Loaded::Missing => {
                tracing::info!(agent, file = %path.display(), default = allow_word(self.default_allow), "no policy file; node default applies")
            }
            Loaded::Parsed(p) => {
                tracing::info!(agent, file = %path.display(), rules = p.len(), default = allow_word(p.default_allow()), "policy loaded")
            }
            Loaded::Broken(why) => {
                tracing::error!(agent, file = %path.display(), error = %why, "denying every request to this agent")
            }
        }
        let loaded = Arc::new(loaded);
        self.cache.lock().expect("policy cache lock").insert(agent.to_string(), Cached { stamp, loaded: loaded.clone() });
        loaded
    }
}

/// Reads and parses one policy file; the stamp is taken from the open file, so it belongs to the
/// bytes read.
fn read_policy(path: &Path) -> (Option<Stamp>, Loaded) {
    let shown = path.display().to_string();
    let unreadable = |e: &dyn fmt::Display| Loaded::Broken(format!("policy file cannot be read: {shown}: {e}"));
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (None, Loaded::Missing),
        Err(e) => return (None, unreadable(&e)),
    };
    let stamp = match file.metadata() {
        Ok(m) if m.is_file() => Stamp::of(&m),
        Ok(_) => return (None, unreadable(&"not a regular file")),
        Err(e) => return (None, unreadable(&e)),
    };
    let mut text = String::new();
    if let Err(e) = file.take(MAX_POLICY_FILE + 1).read_to_string(&mut text) {
        return (Some(stamp), unreadable(&e));
    }
    if text.len() as u64 > MAX_POLICY_FILE {
        return (Some(stamp), unreadable(&format!("larger than {MAX_POLICY_FILE} bytes")));
    }
    let loaded = match Policy::parse(&text, &shown) {
        Ok(p) => Loaded::Parsed(p),
        Err(e) => Loaded::Broken(format!("policy file failed to parse: {e}")),
    };
    (Some(stamp), loaded)
}

/// Agent names become file names: letters, digits, `_`, `-`, `.`, not starting with `.`.
fn valid_agent_name(agent: &str) -> bool {
    !agent.is_empty()
        && agent.len() <= 128
        && !agent.starts_with('.')
        && agent.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

#[cfg(test)]
mod tests;
