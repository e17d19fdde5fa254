//! The DDL model, its TOML parser and the checks every DDL must pass whatever its format.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::locate::{self, FieldPath, fpath};
use crate::validate::{self, ValidationError};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ddl {
    pub metadata: Metadata,
    #[serde(default)]
    pub actions: BTreeMap<String, Action>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    pub name: String,
    pub description: String,
    #[serde(default)]
    pub author: String,
    #[serde(default)]
    pub license: String,
    pub version: String,
    #[serde(default)]
    pub url: String,
    /// Seconds an action may run before the node aborts it.
    #[serde(default = "default_timeout")]
    pub timeout: u64,
}

fn default_timeout() -> u64 {
    10
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Display {
    Ok,
    Failed,
    #[default]
    Always,
    Flatten,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Action {
    pub description: String,
    #[serde(default)]
    pub display: Display,
    /// Destructive actions ask for confirmation in the console and CLI.
    #[serde(default)]
    pub destructive: bool,
    #[serde(default)]
    pub input: BTreeMap<String, Input>,
    #[serde(default)]
    pub output: BTreeMap<String, Output>,
    #[serde(default)]
    pub aggregate: Vec<Aggregate>,
    /// Aggregates by plugin functions fleet does not implement (`nagios_states`, `process_summary`,
    /// Choria's `chart`, ...): kept so the DDL exports unchanged, shown as not available, never
    /// computed. The action runs as usual; only its summary is missing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plugin_aggregate: Vec<PluginAggregate>,
}

/// An aggregate function fleet does not implement, as the DDL declares it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginAggregate {
    pub function: String,
    /// The output the aggregate reads.
    pub output: String,
    /// The function's options (Choria's second `args` item, e.g. `{"format": "..."}`).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub options: serde_json::Map<String, Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputType {
    String,
    Integer,
    Float,
    Number,
    Boolean,
    List,
    Hash,
    Array,
}

impl std::fmt::Display for InputType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            InputType::String => "string",
            InputType::Integer => "integer",
            InputType::Float => "float",
            InputType::Number => "number",
            InputType::Boolean => "boolean",
            InputType::List => "list",
            InputType::Hash => "hash",
            InputType::Array => "array",
        };
        f.write_str(s)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Input {
    pub prompt: String,
    pub description: String,
    #[serde(rename = "type")]
    pub kind: InputType,
    #[serde(default)]
    pub optional: bool,
    #[serde(default)]
    pub default: Option<Value>,
    /// A regex, or one of the named validators: ipv4address, ipv6address, shellsafe, length, typecheck.
    #[serde(default)]
    pub validation: Option<String>,
    /// Maximum length of a string input; 0 means no limit.
    #[serde(default)]
    pub maxlength: usize,
    /// The allowed values of a `list` input.
    #[serde(default)]
    pub list: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Output {
    pub description: String,
    pub display_as: String,
    #[serde(default)]
    pub default: Option<Value>,
    #[serde(default, rename = "type")]
    pub kind: Option<InputType>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AggregateFunction {
    Summary,
    Sum,
    Average,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Aggregate {
    pub function: AggregateFunction,
    /// The output the aggregate reads.
    pub output: String,
    #[serde(default)]
    pub format: Option<String>,
}

/// A DDL that failed to load: names the file, the line and the field when known. A line of 0
/// means the error is about the whole file (it is shown as `FILE: MESSAGE`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.shown())]
pub struct DdlError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl DdlError {
    fn shown(&self) -> String {
        if self.line == 0 { format!("{}: {}", self.file, self.message) } else { format!("{}:{}: {}", self.file, self.line, self.message) }
    }
}

/// What fleet says about a legacy MCollective Ruby DDL (`NAME.ddl`).
pub const RUBY_DDL_HELP: &str = "this is a legacy MCollective Ruby DDL, which fleet does not execute. \
fleet reads its own TOML DDL (NAME.toml) and Choria's JSON DDL (NAME.json). To get the JSON: \
`choria plugin generate ddl NAME.json NAME.ddl` converts this file (Choria ships the JSON beside the \
.ddl of every agent it packages); with MCollective alone, `mco plugin doc agent/NAME` lists the same \
metadata, inputs and outputs to write into a TOML DDL, of which `fleet ddl new NAME` writes a skeleton";

/// Which DDL dialect is being checked: fleet's own TOML, or an imported Choria JSON DDL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Fleet,
    Choria,
}

/// What [`Ddl::check`] found wrong, and where (a path by action name, not by position).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub path: FieldPath,
    pub message: String,
}

impl DdlError {
    /// `path: message`, or just the message when it is about the whole document.
    pub(crate) fn at(file: &str, line: usize, path: &FieldPath, message: &str) -> DdlError {
        let message = if path.0.is_empty() { message.to_string() } else { format!("{path}: {message}") };
        DdlError { file: file.to_string(), line, message }
    }
}

impl Ddl {
    /// Parses a TOML DDL. `file` is only used in error messages.
    pub fn from_toml(text: &str, file: &str) -> Result<Ddl, DdlError> {
        let ddl: Ddl = toml::from_str(text).map_err(|e| toml_error(text, file, &e))?;
        ddl.check(Dialect::Fleet).map_err(|p| DdlError::at(file, locate::toml_line(text, &p.path), &p.path, &p.message))?;
        Ok(ddl)
    }

    /// Imports a Choria JSON agent DDL (schema `https://choria.io/schemas/mcorpc/ddl/v1/agent.json`).
    /// Choria's own keys that fleet has no use for (`$schema`, `metadata.provider`,
    /// `metadata.service`) are accepted and ignored; any other unknown key, and any value of the wrong
    /// type, is an error naming the line and the field. An action without `display` shows failed
    /// replies only, as under Choria. The full mapping is documented in `ddl/src/choria.rs`.
    /// `file` is only used in error messages.
    pub fn from_json(text: &str, file: &str) -> Result<Ddl, DdlError> {
        crate::choria::import(text, file)
    }

    /// Loads a DDL file, choosing the format by its extension: `.toml` (fleet) or `.json` (Choria).
    pub fn from_path(path: &Path) -> Result<Ddl, DdlError> {
        let file = path.display().to_string();
        let fail = |message: String| DdlError { file: file.clone(), line: 0, message };
        let ext = path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase());
        let parse: fn(&str, &str) -> Result<Ddl, DdlError> = match ext.as_deref() {
            Some("toml") => Ddl::from_toml,
            Some("json") => Ddl::from_json,
            Some("ddl") => return Err(fail(RUBY_DDL_HELP.to_string())),
            Some(other) => return Err(fail(format!("unsupported DDL file extension '.{other}' (expected .toml or .json)"))),
            None => return Err(fail("a DDL file needs the extension .toml or .json".to_string())),
        };
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        parse(&text, &file)
    }

    /// Loads a DDL file; the same as [`Ddl::from_path`].
    pub fn from_file(path: &Path) -> Result<Ddl, DdlError> {
        Ddl::from_path(path)
    }

    /// Checks what the parsers cannot: names, regexes, list values, defaults of the right type, and
    /// aggregates that read declared outputs. A Choria DDL's defaults are checked for their type only:
    /// Choria never validates defaults, and its own DDLs declare `""` for inputs validated by `.+`.
    pub(crate) fn check(&self, dialect: Dialect) -> Result<(), Problem> {
        let problem = |path: FieldPath, message: String| Err(Problem { path, message });
        if !is_name(&self.metadata.name) {
            return problem(
                fpath!["metadata", "name"],
                format!("'{}' is not a valid agent name (lowercase a-z, 0-9 and _, starting with a letter)", self.metadata.name),
            );
        }
        if self.metadata.timeout == 0 {
            return problem(fpath!["metadata", "timeout"], "must be at least 1 second".into());
        }
        if self.actions.is_empty() {
            return problem(fpath!["actions"], "an agent needs at least one action".into());
        }
        for (aname, action) in &self.actions {
            let at = fpath!["actions", aname.as_str()];
            if !is_name(aname) {
                return problem(at, format!("'{aname}' is not a valid action name (lowercase a-z, 0-9 and _, starting with a letter)"));
            }
            for (iname, input) in &action.input {
                let field = at.child("input").child(iname.as_str());
                if let Some(v) = &input.validation {
                    if validate::NAMED_VALIDATORS.contains(&v.as_str()) {
                        // a named validator
                    } else if validate::is_validator_name(v) {
                        // A plugin validator (loads with a warning, validates by type), unless it
                        // is a misspelt built-in one, which would silently weaken the check.
                        if let Some(near) = validate::near_validator(v) {
                            return problem(
                                field.child("validation"),
                                format!(
                                    "unknown named validator '{v}': did you mean '{near}'? (known: {}; other names are plugin validators)",
                                    validate::NAMED_VALIDATORS.join(", ")
                                ),
                            );
                        }
                    } else if let Err(e) = regex::Regex::new(v) {
                        return problem(field.child("validation"), format!("bad regex '{v}': {}", regex_error(&e)));
                    }
                }
                if input.kind == InputType::List && input.list.is_empty() {
                    return problem(field.child("list"), "a list input needs its list of values".into());
                }
                if input.kind != InputType::List && !input.list.is_empty() {
                    return problem(field.child("list"), format!("only a list input takes list values (this input is a {})", input.kind));
                }
                if let Some(d) = &input.default {
                    let checked = match dialect {
                        Dialect::Fleet => validate::check_value(iname, input, d),
                        Dialect::Choria => validate::check_type(iname, input, d),
                    };
                    if let Err(e) = checked {
                        let rule = match e {
                            ValidationError::Invalid { rule, .. } => rule,
                            other => other.to_string(),
                        };
                        return problem(field.child("default"), format!("the default {rule}"));
                    }
                }
            }
            for (j, agg) in action.aggregate.iter().enumerate() {
                if !action.output.contains_key(&agg.output) {
                    let declared: Vec<&str> = action.output.keys().map(String::as_str).collect();
                    let declared = if declared.is_empty() { "none".to_string() } else { declared.join(", ") };
                    return problem(
                        at.child("aggregate").child(j).child("output"),
                        format!("reads output '{}' which the action does not declare (outputs: {declared})", agg.output),
                    );
                }
            }
        }
        Ok(())
    }

    pub fn action(&self, name: &str) -> Option<&Action> {
        self.actions.get(name)
    }

    /// What loads but does not work fully in fleet, one line each: plugin aggregates (not
    /// computed) and plugin validators (inputs checked by type only). A node logs these when it
    /// loads the agent, `fleet ddl check` and `fleet ddl doc` print them.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (aname, action) in &self.actions {
            for agg in &action.plugin_aggregate {
                out.push(format!(
                    "{}#{aname}: aggregate function '{}' (of output '{}') is a plugin fleet does not implement: not available, the action runs without it",
                    self.metadata.name, agg.function, agg.output
                ));
            }
            for (iname, input) in &action.input {
                if let Some(v) = input.validation.as_deref().filter(|v| validate::is_plugin_validator(v)) {
                    out.push(format!(
                        "{}#{aname}: input '{iname}' names the validator '{v}', a plugin fleet does not implement: validated by its type ({}) only",
                        self.metadata.name, input.kind
                    ));
                }
            }
        }
        out
    }

    /// A stable digest of the DDL, so consoles can tell versions apart (FNV-1a of the canonical JSON).
    pub fn digest(&self) -> String {
        let text = serde_json::to_string(self).unwrap_or_default();
        let mut h: u64 = 0xcbf29ce484222325;
        for b in text.bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
        format!("{h:016x}")
    }
}

/// An agent or action name: what a subject, a CLI argument and a file name can all carry.
fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase()) && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// The last line of a regex error (`regex` spreads its message over several lines with a caret).
pub(crate) fn regex_error(e: &regex::Error) -> String {
    let text = e.to_string();
    let last = text.lines().last().unwrap_or_default().trim();
    last.strip_prefix("error: ").unwrap_or(last).to_string()
}

/// A TOML error that names the line and, when the text is valid TOML, the field it is about.
fn toml_error(text: &str, file: &str, e: &toml::de::Error) -> DdlError {
    let offset = e.span().map(|s| s.start);
    let line = offset.map(|o| locate::line_at(text, o)).unwrap_or(0);
    if toml::de::DeTable::parse(text).is_err() {
        return DdlError { file: file.to_string(), line, message: format!("invalid TOML: {}", e.message().trim()) };
    }
    let path = offset.map(|o| locate::toml_path_at(text, o)).unwrap_or_default();
    DdlError::at(file, line, &path, &admin_words(e.message().trim()))
}

/// serde's messages in the words the JSON importer uses, without Rust's type names: the same
/// mistake reads the same in a TOML and a JSON DDL. Messages of other shapes pass unchanged.
fn admin_words(message: &str) -> String {
    let unquote = |list: &str| list.replace('`', "");
    let re = |pattern: &str| regex::Regex::new(pattern).expect("static regex");
    if let Some(c) = re(r"^unknown field `([^`]*)`, expected (.*)$").captures(message) {
        return format!("unknown key '{}' (expected {})", &c[1], unquote(&c[2]));
    }
    if let Some(c) = re(r"^missing field `([^`]*)`$").captures(message) {
        return format!("missing required key '{}'", &c[1]);
    }
    if let Some(c) = re(r"^unknown variant `([^`]*)`, expected (.*)$").captures(message) {
        return format!("unknown value '{}' (expected {})", &c[1], unquote(&c[2]));
    }
    if let Some(c) = re(r"^invalid (?:type|value): (.*), expected (.*)$").captures(message) {
        let expected = match &c[2] {
            "u64" | "usize" | "u32" | "u16" | "u8" => "a whole number of at least 0",
            "a boolean" => "true or false",
            "a sequence" => "an array",
            "a map" => "a table",
            e if e.starts_with("struct ") => "a table",
            e => e,
        };
        return format!("expected {expected}, got {}", unquote(&c[1]));
    }
    message.to_string()
}
