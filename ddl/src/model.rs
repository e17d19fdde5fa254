//! The DDL model and its TOML parser.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

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

/// A DDL that failed to load: names the file, the line and the field when known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct DdlError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl Ddl {
    /// Parses a TOML DDL. `file` is only used in error messages.
    pub fn from_toml(text: &str, file: &str) -> Result<Ddl, DdlError> {
        let ddl: Ddl = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1).unwrap_or(0);
            DdlError { file: file.to_string(), line, message: e.message().trim().to_string() }
        })?;
        ddl.check().map_err(|(field, message)| DdlError {
            file: file.to_string(),
            line: find_line(text, &field),
            message: format!("{field}: {message}"),
        })?;
        Ok(ddl)
    }

    pub fn from_file(path: &Path) -> Result<Ddl, DdlError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| DdlError { file: file.clone(), line: 0, message: e.to_string() })?;
        Ddl::from_toml(&text, &file)
    }

    /// Checks what serde cannot: names, regexes, defaults of the right type, list values.
    fn check(&self) -> Result<(), (String, String)> {
        let ident = regex::Regex::new(r"^[a-z][a-z0-9_]*$").expect("static regex");
        if !ident.is_match(&self.metadata.name) {
            return Err(("metadata.name".into(), format!("'{}' is not a valid agent name (a-z, 0-9, _)", self.metadata.name)));
        }
        if self.metadata.timeout == 0 {
            return Err(("metadata.timeout".into(), "must be at least 1 second".into()));
        }
        if self.actions.is_empty() {
            return Err(("actions".into(), "an agent needs at least one action".into()));
        }
        for (aname, action) in &self.actions {
            if !ident.is_match(aname) {
                return Err((format!("actions.{aname}"), "not a valid action name (a-z, 0-9, _)".into()));
            }
            for (iname, input) in &action.input {
                let field = format!("actions.{aname}.input.{iname}");
                if let Some(v) = &input.validation {
                    if !crate::validate::NAMED_VALIDATORS.contains(&v.as_str()) {
                        regex::Regex::new(v).map_err(|e| (format!("{field}.validation"), format!("bad regex: {e}")))?;
                    }
                }
                if input.kind == InputType::List && input.list.is_empty() {
                    return Err((format!("{field}.list"), "a list input needs its list of values".into()));
                }
                if let Some(d) = &input.default {
                    crate::validate::check_value(iname, input, d).map_err(|e| (format!("{field}.default"), e.to_string()))?;
                }
            }
            for agg in &action.aggregate {
                if !action.output.contains_key(&agg.output) {
                    return Err((
                        format!("actions.{aname}.aggregate"),
                        format!("aggregate reads output '{}' which the action does not declare", agg.output),
                    ));
                }
            }
        }
        Ok(())
    }

    pub fn action(&self, name: &str) -> Option<&Action> {
        self.actions.get(name)
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

/// Best-effort line of the TOML table or key that holds `field` (a dotted path).
fn find_line(text: &str, field: &str) -> usize {
    let parts: Vec<&str> = field.split('.').collect();
    for take in (1..=parts.len()).rev() {
        let header = format!("[{}]", parts[..take].join("."));
        let key = parts[take - 1];
        for (i, l) in text.lines().enumerate() {
            let t = l.trim();
            if t == header || t == format!("[{header}]") || (take == parts.len() && t.starts_with(&format!("{key} ")) || t.starts_with(&format!("{key}="))) {
                return i + 1;
            }
        }
    }
    0
}
