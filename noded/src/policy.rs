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
//! field. Actions are space-separated lists of exact names. Callers are space-separated caller
//! ids, `/regex/`es matched against the caller id, or names of groups from the groups file (see
//! below). Facts are space-separated
//! terms `key=value` (or `key=/regex/`, `key!=v`, `key>=3`, ... as in `-F` filters), all of which
//! must hold. Classes are space-separated class names or `/regex/`, all of which the node must
//! have. A facts or classes field that is a compound expression (a token `and`, `or` or `not`, or
//! a token starting with `!` or `(`, or ending with `)`) is parsed as a `-S` filter expression;
//! when both fields are given, both must hold.
//!
//! # Data functions
//! The facts field (alone or in a compound expression) may use MCollective's data functions,
//! evaluated on the node by its data plugins (`crate::data`): `puppet().enabled=false`,
//! `fstat("/etc/hosts").size>10`, `process("nginx").exists=true`, `fact("os.family")=Debian`... A
//! data function that fails on the node (unknown plugin, missing field) is false, so its rule does
//! not match; other rules are unaffected.
//!
//! # Caller groups
//! `<policy_dir>/groups` (e.g. `/etc/fleet/policies/groups`), as the MCollective/Choria
//! action-policy plugin's groups file: one group per line, `NAME MEMBER MEMBER ...`, members being
//! caller ids or `/regex/`es; `#` comments and blank lines are ignored. A name in a rule's callers
//! field matches the caller itself or, when a group has that name, any of its members. The file is
//! re-read when it changes; a groups file that fails to parse denies every request (as a broken
//! policy does), naming the file, line and column.
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
//! an error denies everything for its agent (see [`PolicySet`]), and the error (in the node's log
//! and in `fleet policy check`) names the file, the line, the column and what was expected. A file
//! without a `policy default` line defaults to deny.

use std::collections::HashMap;

use fleet_protocol::NodeView;
use fleet_protocol::filter::{DataSource, FilterError, FilterExpr, parse_compound};
use regex::Regex;

/// Extension of a policy file.
pub const POLICY_EXT: &str = "policy";
/// The caller groups file, in the policy directory.
pub const GROUPS_FILE: &str = "groups";
/// A policy file larger than this is refused (and so denies everything).
const MAX_POLICY_FILE: u64 = 1024 * 1024;

/// A policy file error: the file, the 1-based line and column, and what is wrong (what was expected).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct PolicyError {
    pub file: String,
    pub line: usize,
    pub column: usize,
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

/// A caller id, a group name, or a `/regex/`.
#[derive(Debug, Clone)]
enum CallerPattern {
    Name(String),
    Regex(Regex),
}

/// Who a rule is for.
#[derive(Debug, Clone)]
enum Callers {
    Any,
    List(Vec<CallerPattern>),
}

impl Callers {
    fn contains(&self, caller: &str, groups: &Groups) -> bool {
        match self {
            Callers::Any => true,
            Callers::List(list) => list.iter().any(|p| match p {
                CallerPattern::Name(n) => n == caller || groups.has_member(n, caller),
                CallerPattern::Regex(r) => r.is_match(caller),
            }),
        }
    }
}

/// The caller groups (`<policy_dir>/groups`): group name -> members.
#[derive(Debug, Clone, Default)]
pub struct Groups {
    groups: HashMap<String, Vec<CallerPattern>>,
}

impl Groups {
    /// Parses a groups file: `NAME MEMBER MEMBER ...` per line; members are caller ids or `/regex/`.
    pub fn parse(text: &str, file: &str) -> Result<Groups, PolicyError> {
        let mut groups: HashMap<String, Vec<CallerPattern>> = HashMap::new();
        for (i, raw) in text.lines().enumerate() {
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let mut words = trimmed.split_whitespace();
            let name = words.next().unwrap_or_default();
            let err = |word: &str, message: String| PolicyError { file: file.into(), line: i + 1, column: column_of(raw, word), message };
            if name.starts_with('/') || name == "*" {
                return Err(err(name, format!("expected a group name (then its members), found '{name}'")));
            }
            let members = groups.entry(name.to_string()).or_default();
            for w in words {
                members.push(parse_caller(w).map_err(|m| err(w, m))?);
            }
        }
        Ok(Groups { groups })
    }

    fn has_member(&self, group: &str, caller: &str) -> bool {
        self.groups.get(group).is_some_and(|members| {
            members.iter().any(|m| match m {
                CallerPattern::Name(n) => n == caller,
                CallerPattern::Regex(r) => r.is_match(caller),
            })
        })
    }

    pub fn len(&self) -> usize {
        self.groups.len()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }
}

fn parse_caller(word: &str) -> Result<CallerPattern, String> {
    if word.len() >= 2 && word.starts_with('/') && word.ends_with('/') {
        let re = &word[1..word.len() - 1];
        return regex::RegexBuilder::new(re).size_limit(1 << 20).build().map(CallerPattern::Regex).map_err(|e| {
            format!(
                "caller '{word}': bad regex /{re}/: {}",
                e.to_string().lines().last().unwrap_or_default().trim().trim_start_matches("error: ")
            )
        });
    }
    if word.starts_with('/') {
        return Err(format!("caller '{word}': expected a closing '/' to end the regex"));
    }
    Ok(CallerPattern::Name(word.to_string()))
}

/// The 1-based column (in characters) where `part` starts in `line`, when `part` is a slice of it.
fn column_of(line: &str, part: &str) -> usize {
    let start = line.as_ptr() as usize;
    let at = part.as_ptr() as usize;
    if at < start || at > start + line.len() {
        return 1;
    }
    line[..at - start].chars().count() + 1
}

#[derive(Debug, Clone)]
struct Rule {
    line: usize,
    /// The line as written, whitespace runs collapsed, for decisions and logs.
    text: String,
    allow: bool,
    callers: Callers,
    actions: Names,
    /// `None` is `*`.
    facts: Option<FilterExpr>,
    classes: Option<FilterExpr>,
}

impl Rule {
    fn matches(&self, caller: &str, action: &str, node: &NodeView<'_>, groups: &Groups, data: &dyn DataSource) -> bool {
        self.callers.contains(caller, groups)
            && self.actions.contains(action)
            && self.facts.as_ref().is_none_or(|e| e.matches_with(node, data))
            && self.classes.as_ref().is_none_or(|e| e.matches_with(node, data))
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
            let err = |(column, message): (usize, String)| PolicyError { file: file.to_string(), line, column, message };
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
                        let col = column_of(raw, trimmed);
                        return Err(err((col, format!("expected 'policy default allow' or 'policy default deny', found '{trimmed}'"))));
                    }
                };
                if let Some((_, earlier)) = default {
                    let col = column_of(raw, trimmed);
                    return Err(err((col, format!("a second 'policy default' line (the first is on line {earlier})"))));
                }
                default = Some((allow, line));
                continue;
            }
            rules.push(parse_rule(raw, trimmed, line).map_err(err)?);
        }
        Ok(Policy { file: file.to_string(), default_allow: default.is_some_and(|(allow, _)| allow), rules })
    }

    /// The first rule that matches decides; without one, the policy's default does. Data
    /// functions are answered by this node's data plugins; no caller groups.
    pub fn decide(&self, caller: &str, action: &str, node: &NodeView<'_>) -> Decision {
        self.decide_with(caller, action, node, &Groups::default(), &*crate::data::NodeData::current())
    }

    /// [`decide`](Self::decide) with caller groups and the data plugins to use.
    pub fn decide_with(&self, caller: &str, action: &str, node: &NodeView<'_>, groups: &Groups, data: &dyn DataSource) -> Decision {
        match self.rules.iter().find(|r| r.matches(caller, action, node, groups, data)) {
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

/// A rule's problem: the column it starts at and what is wrong.
type Problem = (usize, String);

fn parse_rule(raw: &str, line_text: &str, line: usize) -> Result<Rule, Problem> {
    let (verb, _) = split_token(line_text);
    let col = |part: &str| column_of(raw, part);
    let allow = match verb {
        "allow" => true,
        "deny" => false,
        other => return Err((col(verb), format!("expected 'allow', 'deny' or 'policy default ...', found '{other}'"))),
    };
    let (callers, actions, facts, classes) = if line_text.contains('\t') {
        split_tabbed(line_text).map_err(|m| (col(line_text), m))?
    } else {
        split_spaced(line_text).map_err(|(part, m)| (part.map_or(col(line_text), col), m))?
    };
    let at = |part: &str, (offset, m): (usize, String)| (col(part) + offset, m);
    Ok(Rule {
        line,
        text: line_text.split_whitespace().collect::<Vec<_>>().join(" "),
        allow,
        callers: parse_callers(callers).map_err(|p| at(callers, p))?,
        actions: parse_names(actions, "actions").map_err(|m| (col(actions), m))?,
        facts: parse_facts(facts).map_err(|p| at(facts, p))?,
        classes: parse_classes(classes).map_err(|p| at(classes, p))?,
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

fn split_spaced(line_text: &str) -> Result<Fields<'_>, (Option<&str>, String)> {
    let (_, rest) = split_token(line_text);
    let (callers, rest) = split_token(rest);
    let (actions, rest) = split_token(rest);
    let rest = rest.trim();
    if callers.is_empty() || actions.is_empty() || rest.is_empty() {
        return Err((None, "expected 'allow|deny <callers> <actions> <facts> <classes>' (use * for any)".into()));
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
        [only] => Err((Some(only), "expected a classes field after the facts field (use * for any)".into())),
        _ => Err((
            Some(rest),
            format!(
                "too many fields in '{rest}': separate the fields with tabs when a list has several entries, \
                 or write several facts as a compound expression (a=1 and b=2)"
            ),
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

/// Callers: `*`, or caller ids, group names and `/regex/`es. Errors give the column within the field.
fn parse_callers(field: &str) -> Result<Callers, Problem> {
    if field == "*" {
        return Ok(Callers::Any);
    }
    let mut list = Vec::new();
    for word in field.split_whitespace() {
        let offset = column_of(field, word) - 1;
        if word == "*" {
            return Err((offset, "callers: '*' must stand alone, it already means any".into()));
        }
        list.push(parse_caller(word).map_err(|m| (offset, m))?);
    }
    Ok(Callers::List(list))
}

fn filter_error(what: &str, field: &str, e: FilterError) -> Problem {
    (e.column.saturating_sub(1), format!("{what} '{field}': {}", e.message))
}

fn parse_facts(field: &str) -> Result<Option<FilterExpr>, Problem> {
    if field == "*" {
        return Ok(None);
    }
    if is_compound(field) {
        return parse_compound(field).map(Some).map_err(|e| filter_error("facts", field, e));
    }
    let mut terms = Vec::new();
    for t in field.split_whitespace() {
        let offset = column_of(field, t) - 1;
        let shift = |(c, m): Problem| (c + offset, m);
        match parse_compound(t) {
            Ok(e @ (FilterExpr::Fact { .. } | FilterExpr::Data(_))) => terms.push(e),
            Ok(_) => {
                return Err(shift((
                    0,
                    format!(
                        "fact '{t}': expected KEY=VALUE (or KEY OP VALUE with == != < <= > >=), or a data function such as fstat(\"/etc/motd\").present=true"
                    ),
                )));
            }
            Err(e) => return Err(shift(filter_error("fact", t, e))),
        }
    }
    Ok(Some(FilterExpr::And(terms)))
}

fn parse_classes(field: &str) -> Result<Option<FilterExpr>, Problem> {
    if field == "*" {
        return Ok(None);
    }
    if is_compound(field) {
        return parse_compound(field).map(Some).map_err(|e| filter_error("classes", field, e));
    }
    let mut classes = Vec::new();
    for t in field.split_whitespace() {
        let offset = column_of(field, t) - 1;
        match parse_compound(t) {
            Ok(e @ FilterExpr::Class(_)) => classes.push(e),
            Ok(_) => return Err((offset, format!("class '{t}': expected a class name or /regex/ (facts go in the facts field)"))),
            Err(e) => {
                let (c, m) = filter_error("class", t, e);
                return Err((c + offset, m));
            }
        }
    }
    Ok(Some(FilterExpr::And(classes)))
}

mod set;
pub use set::PolicySet;

#[cfg(test)]
mod tests;
