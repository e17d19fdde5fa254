//! Import of Choria's JSON agent DDLs (schema `https://choria.io/schemas/mcorpc/ddl/v1/agent.json`)
//! into fleet's model, so agents already described for Choria need no rewriting.
//!
//! How Choria's shape maps onto fleet's:
//! - `actions` is an array of `{"action": NAME, ...}`; fleet keys actions by name, so a name may
//!   appear only once.
//! - `type` is matched without regard to case (Choria writes both `Hash` and `hash`).
//! - `null` means "not given" for every optional key (Choria's own DDLs write `"default": null`),
//!   and `"validation": ""` means no validation.
//! - An action without `display` displays `failed` replies only, as under Choria (fleet's TOML
//!   default is `always`).
//! - `aggregate` items are `{"function": F, "args": [OUTPUT, {"format": "..."}]}`. `summary`,
//!   `average` and fleet's `sum` map directly; `boolean_summary` becomes `summary` (its
//!   `{"true": ..., "false": ...}` labels are accepted but not used: replies show true/false).
//!   Any other function (a plugin aggregate such as `nagios_states` or `process_summary`, or
//!   Choria's `chart`) is kept as a [`PluginAggregate`]: the DDL loads with a warning
//!   ([`Ddl::warnings`]), the aggregate shows as not available and the action runs, as Choria
//!   skips aggregates it does not know.
//! - A `validation` naming a validator fleet does not implement (a plugin validator) loads with a
//!   warning; that input is validated by its type only. A misspelt built-in validator is an error.
//! - Regexes are Go's RE2 dialect, where a `{` that does not start a repetition is a literal (Choria's
//!   own `choria_provision` DDL validates with `^{.+}$`); such braces are escaped for Rust's `regex`.
//! - Defaults are checked for their type only (see [`crate::model::Ddl`]'s `check`).
//!
//! Keys Choria defines that fleet accepts, checks for type, and ignores:
//! - `$schema` (a string): fleet knows which schema it reads.
//! - `metadata.provider` (a string): which Choria agent provider runs the agent (`golang`,
//!   `external`, ...); fleet's node decides how its agents run.
//! - `metadata.service` (a boolean): Choria's service agents answer through a load-balanced queue
//!   group; fleet has no service agents, so such an agent is addressed like any other.
//!
//! fleet's own `destructive` (a boolean) is accepted on an action as an extension. Any other key is
//! an error naming it, as is a value of the wrong type.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::locate::{self, FieldPath, Seg, fpath};
use crate::model::{
    Action, Aggregate, AggregateFunction, Ddl, DdlError, Dialect, Display, Input, InputType, Metadata, Output, PluginAggregate,
};
use crate::validate;

/// A conversion failure: where, and what.
struct Fail {
    path: FieldPath,
    message: String,
}

fn fail<T>(path: FieldPath, message: impl Into<String>) -> Result<T, Fail> {
    Err(Fail { path, message: message.into() })
}

pub(crate) fn import(text: &str, file: &str) -> Result<Ddl, DdlError> {
    let value: Value = serde_json::from_str(text).map_err(|e| syntax_error(file, &e))?;
    let located = |f: Fail| DdlError::at(file, locate::json_line(text, &f.path), &f.path, &f.message);
    let mut positions = BTreeMap::new();
    let ddl = convert(&value, &mut positions).map_err(located)?;
    ddl.check(Dialect::Choria).map_err(|p| located(Fail { path: json_path(&p.path, &positions), message: p.message }))?;
    Ok(ddl)
}

fn syntax_error(file: &str, e: &serde_json::Error) -> DdlError {
    let full = e.to_string();
    // serde_json appends " at line L column C"; the line goes in its own place.
    let what = full.rsplit_once(" at line ").map(|(what, _)| what).unwrap_or(&full);
    DdlError { file: file.to_string(), line: e.line(), message: format!("invalid JSON at column {}: {what}", e.column()) }
}

/// Turns a path by action name (as [`Ddl::check`] reports it) into the path in the JSON document.
fn json_path(logical: &FieldPath, positions: &BTreeMap<String, usize>) -> FieldPath {
    let segs = &logical.0;
    let (Some(Seg::Key(actions)), Some(Seg::Key(name))) = (segs.first(), segs.get(1)) else { return logical.clone() };
    let Some(i) = positions.get(name).filter(|_| actions == "actions") else { return logical.clone() };
    let mut out = fpath!["actions", *i];
    match &segs[2..] {
        [] => out.0.push(Seg::from("action")),
        [Seg::Key(agg), Seg::Index(j), Seg::Key(field), ..] if agg == "aggregate" => {
            out.0.extend([Seg::from("aggregate"), Seg::Index(*j), Seg::from("args")]);
            if field == "format" {
                out.0.extend([Seg::Index(1), Seg::from("format")]);
            } else {
                out.0.push(Seg::Index(0));
            }
        }
        rest => out.0.extend(rest.iter().cloned()),
    }
    out
}

/// What a wrong value was, for error messages.
fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) if s.chars().count() > 40 => format!("string \"{}...\"", s.chars().take(40).collect::<String>()),
        Value::String(s) => format!("string \"{s}\""),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

/// A JSON object being converted, with its path for error messages.
struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: FieldPath,
}

impl<'a> Obj<'a> {
    fn new(v: &'a Value, path: FieldPath, what: &str) -> Result<Obj<'a>, Fail> {
        match v {
            Value::Object(map) => Ok(Obj { map, path }),
            other => fail(path, format!("expected {what} (an object), got {}", describe(other))),
        }
    }

    /// Every key must be one of `known`.
    fn keys(&self, known: &[&str]) -> Result<(), Fail> {
        match self.map.keys().find(|k| !known.contains(&k.as_str())) {
            Some(k) => fail(self.path.child(k.as_str()), format!("unknown key '{k}' (expected one of {})", known.join(", "))),
            None => Ok(()),
        }
    }

    /// The value of `key`; None when absent or null.
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn required(&self, key: &str) -> Result<&'a Value, Fail> {
        match self.get(key) {
            Some(v) => Ok(v),
            None => fail(self.path.clone(), format!("missing required key '{key}'")),
        }
    }

    fn string(&self, key: &str) -> Result<Option<String>, Fail> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => fail(self.path.child(key), format!("expected a string, got {}", describe(other))),
        }
    }

    fn required_string(&self, key: &str) -> Result<String, Fail> {
        self.required(key)?;
        Ok(self.string(key)?.unwrap_or_default())
    }

    fn boolean(&self, key: &str) -> Result<Option<bool>, Fail> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => fail(self.path.child(key), format!("expected true or false, got {}", describe(other))),
        }
    }

    fn count(&self, key: &str) -> Result<Option<u64>, Fail> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => match v.as_u64() {
                Some(n) => Ok(Some(n)),
                None => fail(self.path.child(key), format!("expected a whole number of at least 0, got {}", describe(v))),
            },
        }
    }
}

fn convert(root: &Value, positions: &mut BTreeMap<String, usize>) -> Result<Ddl, Fail> {
    let doc = Obj::new(root, FieldPath::default(), "a Choria agent DDL")?;
    doc.keys(&["$schema", "metadata", "actions"])?;
    doc.string("$schema")?;

    let md = Obj::new(doc.required("metadata")?, fpath!["metadata"], "the agent's metadata")?;
    md.keys(&["name", "description", "author", "license", "version", "url", "timeout", "provider", "service"])?;
    md.string("provider")?;
    md.boolean("service")?;
    let metadata = Metadata {
        name: md.required_string("name")?,
        description: md.required_string("description")?,
        author: md.string("author")?.unwrap_or_default(),
        license: md.string("license")?.unwrap_or_default(),
        version: md.required_string("version")?,
        url: md.string("url")?.unwrap_or_default(),
        timeout: md.count("timeout")?.unwrap_or(10),
    };

    let actions = match doc.required("actions")? {
        Value::Array(list) => list,
        other => {
            return fail(
                fpath!["actions"],
                format!("expected an array of actions like [{{\"action\": \"NAME\", ...}}], got {}", describe(other)),
            );
        }
    };
    let mut by_name = BTreeMap::new();
    for (i, value) in actions.iter().enumerate() {
        let (name, action) = convert_action(value, fpath!["actions", i])?;
        if let Some(first) = positions.insert(name.clone(), i) {
            return fail(fpath!["actions", i, "action"], format!("duplicate action '{name}' (first declared as actions[{first}])"));
        }
        by_name.insert(name, action);
    }
    Ok(Ddl { metadata, actions: by_name })
}

fn convert_action(value: &Value, at: FieldPath) -> Result<(String, Action), Fail> {
    let obj = Obj::new(value, at.clone(), "an action")?;
    obj.keys(&["action", "description", "display", "destructive", "input", "output", "aggregate"])?;
    let name = obj.required_string("action")?;
    let description = obj.required_string("description")?;
    let display = match obj.string("display")?.as_deref() {
        None => Display::Failed,
        Some("ok") => Display::Ok,
        Some("failed") => Display::Failed,
        Some("always") => Display::Always,
        Some("flatten") => Display::Flatten,
        Some(other) => {
            return fail(at.child("display"), format!("unknown display '{other}' (expected one of ok, failed, always, flatten)"));
        }
    };

    let mut input = BTreeMap::new();
    if let Some(v) = obj.get("input") {
        let inputs = Obj::new(v, at.child("input"), "a map of input names to inputs")?;
        for (iname, v) in inputs.map {
            input.insert(iname.clone(), convert_input(v, at.child("input").child(iname.as_str()))?);
        }
    }
    let mut output = BTreeMap::new();
    if let Some(v) = obj.get("output") {
        let outputs = Obj::new(v, at.child("output"), "a map of output names to outputs")?;
        for (oname, v) in outputs.map {
            output.insert(oname.clone(), convert_output(v, at.child("output").child(oname.as_str()))?);
        }
    }
    let mut aggregate = Vec::new();
    let mut plugin_aggregate = Vec::new();
    match obj.get("aggregate") {
        None => {}
        Some(Value::Array(items)) => {
            for (j, v) in items.iter().enumerate() {
                match convert_aggregate(v, at.child("aggregate").child(j))? {
                    Converted::Known(a) => aggregate.push(a),
                    Converted::Plugin(p) => plugin_aggregate.push(p),
                }
            }
        }
        Some(other) => return fail(at.child("aggregate"), format!("expected an array of aggregates, got {}", describe(other))),
    }

    let action = Action {
        description,
        display,
        destructive: obj.boolean("destructive")?.unwrap_or(false),
        input,
        output,
        aggregate,
        plugin_aggregate,
    };
    Ok((name, action))
}

fn parse_type(obj: &Obj, key: &str) -> Result<Option<InputType>, Fail> {
    let Some(name) = obj.string(key)? else { return Ok(None) };
    let kind = match name.to_ascii_lowercase().as_str() {
        "string" => InputType::String,
        "integer" => InputType::Integer,
        "float" => InputType::Float,
        "number" => InputType::Number,
        "boolean" => InputType::Boolean,
        "list" => InputType::List,
        "hash" => InputType::Hash,
        "array" => InputType::Array,
        _ => {
            return fail(
                obj.path.child(key),
                format!("unknown type '{name}' (expected one of string, integer, float, number, boolean, list, hash, array)"),
            );
        }
    };
    Ok(Some(kind))
}

fn convert_input(value: &Value, at: FieldPath) -> Result<Input, Fail> {
    let obj = Obj::new(value, at.clone(), "an input")?;
    obj.keys(&["prompt", "description", "type", "optional", "default", "validation", "maxlength", "list"])?;
    obj.required("type")?;
    let kind = parse_type(&obj, "type")?.expect("required above");
    let validation = obj
        .string("validation")?
        .filter(|v| !v.is_empty())
        .map(|v| if validate::is_validator_name(&v) { v } else { go_regex_for_rust(&v) });
    let list = match obj.get("list") {
        None => Vec::new(),
        Some(Value::Array(items)) => {
            let mut list = Vec::new();
            for (j, item) in items.iter().enumerate() {
                match item {
                    Value::String(s) => list.push(s.clone()),
                    other => return fail(at.child("list").child(j), format!("expected a string, got {}", describe(other))),
                }
            }
            list
        }
        Some(other) => return fail(at.child("list"), format!("expected an array of strings, got {}", describe(other))),
    };
    Ok(Input {
        prompt: obj.required_string("prompt")?,
        description: obj.required_string("description")?,
        kind,
        optional: obj.boolean("optional")?.unwrap_or(false),
        default: obj.get("default").cloned(),
        validation,
        maxlength: obj.count("maxlength")?.unwrap_or(0) as usize,
        list,
    })
}

fn convert_output(value: &Value, at: FieldPath) -> Result<Output, Fail> {
    let obj = Obj::new(value, at, "an output")?;
    obj.keys(&["description", "display_as", "default", "type"])?;
    Ok(Output {
        description: obj.required_string("description")?,
        display_as: obj.required_string("display_as")?,
        default: obj.get("default").cloned(),
        kind: parse_type(&obj, "type")?,
    })
}

/// An aggregate fleet computes, or a plugin one it keeps but does not.
enum Converted {
    Known(Aggregate),
    Plugin(PluginAggregate),
}

fn convert_aggregate(value: &Value, at: FieldPath) -> Result<Converted, Fail> {
    let obj = Obj::new(value, at.clone(), "an aggregate")?;
    obj.keys(&["function", "args"])?;
    let name = obj.required_string("function")?;
    let function = match name.as_str() {
        "summary" | "boolean_summary" => Some(AggregateFunction::Summary),
        "average" => Some(AggregateFunction::Average),
        "sum" => Some(AggregateFunction::Sum),
        other if !is_function_name(other) => {
            return fail(at.child("function"), format!("'{other}' is not an aggregate function name (lowercase a-z, 0-9 and _)"));
        }
        _ => None,
    };
    let args_at = at.child("args");
    let args = match obj.required("args")? {
        Value::Array(args) => args,
        other => return fail(args_at, format!("expected an array like [\"OUTPUT\", {{\"format\": \"...\"}}], got {}", describe(other))),
    };
    let output = match args.first() {
        Some(Value::String(s)) => s.clone(),
        Some(other) => return fail(args_at.child(0), format!("expected the name of an output, got {}", describe(other))),
        None => return fail(args_at, "needs the name of the output to aggregate"),
    };
    let Some(function) = function else {
        let options = match args.get(1) {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(o)) => o.clone(),
            Some(other) => return fail(args_at.child(1), format!("expected the aggregate's options (an object), got {}", describe(other))),
        };
        if args.len() > 2 {
            return fail(args_at.child(2), "unexpected argument (an aggregate takes an output name and an optional object of options)");
        }
        return Ok(Converted::Plugin(PluginAggregate { function: name, output, options }));
    };
    let format = match args.get(1) {
        None | Some(Value::Null) => None,
        Some(v) => {
            let options = Obj::new(v, args_at.child(1), "the aggregate's options")?;
            if name == "boolean_summary" {
                options.keys(&["format", "true", "false"])?;
                options.string("true")?;
                options.string("false")?;
            } else {
                options.keys(&["format"])?;
            }
            options.string("format")?
        }
    };
    if args.len() > 2 {
        return fail(args_at.child(2), "unexpected argument (an aggregate takes an output name and an optional object of options)");
    }
    Ok(Converted::Known(Aggregate { function, output, format }))
}

fn is_function_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase()) && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Rewrites a Go (RE2) regex for Rust's `regex`: Go reads a `{` that does not start a counted
/// repetition as a literal brace, Rust refuses it.
fn go_regex_for_rust(re: &str) -> String {
    let chars: Vec<char> = re.chars().collect();
    let mut out = String::with_capacity(re.len());
    let mut in_class = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => {
                out.push(c);
                if let Some(next) = chars.get(i + 1) {
                    out.push(*next);
                    i += 1;
                }
            }
            '[' if !in_class => {
                in_class = true;
                out.push(c);
                // A ']' right after '[' or '[^' is a literal member, not the end of the class.
                if chars.get(i + 1) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                if chars.get(i + 1) == Some(&']') {
                    out.push(']');
                    i += 1;
                }
            }
            ']' if in_class => {
                in_class = false;
                out.push(c);
            }
            '{' if !in_class && !starts_repetition(&chars[i..]) => out.push_str("\\{"),
            _ => out.push(c),
        }
        i += 1;
    }
    out
}

/// Whether the text starts with `{n}`, `{n,}` or `{n,m}`.
fn starts_repetition(s: &[char]) -> bool {
    let mut i = 1;
    let digits = |i: &mut usize| {
        let start = *i;
        while s.get(*i).is_some_and(char::is_ascii_digit) {
            *i += 1;
        }
        *i > start
    };
    if !digits(&mut i) {
        return false;
    }
    if s.get(i) == Some(&',') {
        i += 1;
        digits(&mut i);
    }
    s.get(i) == Some(&'}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_braces_become_literal() {
        assert_eq!(go_regex_for_rust("^{.+}$"), r"^\{.+}$");
        assert_eq!(go_regex_for_rust("a{,3}"), r"a\{,3}");
        assert_eq!(go_regex_for_rust("^[a-z]{2,4}$"), "^[a-z]{2,4}$");
        assert_eq!(go_regex_for_rust("^x{3}y{1,}$"), "^x{3}y{1,}$");
        assert_eq!(go_regex_for_rust(r"^\{[{]$"), r"^\{[{]$");
        assert_eq!(go_regex_for_rust("[]{]"), "[]{]");
        for re in ["^{.+}$", "a{,3}", "{", "x{y}"] {
            regex::Regex::new(&go_regex_for_rust(re)).unwrap_or_else(|e| panic!("{re}: {e}"));
        }
        let re = regex::Regex::new(&go_regex_for_rust("^{.+}$")).unwrap();
        assert!(re.is_match(r#"{"a":1}"#));
        assert!(!re.is_match("a"));
    }

    #[test]
    fn check_paths_become_json_paths() {
        let positions: BTreeMap<String, usize> = [("list".to_string(), 0), ("kill".to_string(), 1)].into();
        let p = |l: FieldPath| json_path(&l, &positions).to_string();
        assert_eq!(p(fpath!["actions", "kill"]), "actions[1].action");
        assert_eq!(p(fpath!["actions", "kill", "input", "signal", "list"]), "actions[1].input.signal.list");
        assert_eq!(p(fpath!["actions", "list", "aggregate", 2, "output"]), "actions[0].aggregate[2].args[0]");
        assert_eq!(p(fpath!["actions", "list", "aggregate", 0, "format"]), "actions[0].aggregate[0].args[1].format");
        assert_eq!(p(fpath!["metadata", "timeout"]), "metadata.timeout");
    }

    const MINIMAL: &str = r#"{
  "$schema": "https://choria.io/schemas/mcorpc/ddl/v1/agent.json",
  "metadata": {"name": "demo", "description": "Demo", "author": "a", "license": "Apache-2.0",
               "version": "1.0.0", "url": "https://example.invalid", "timeout": 5,
               "provider": "external", "service": false},
  "actions": [
    {
      "action": "status",
      "description": "Status",
      "input": {
        "service": {"prompt": "Service", "description": "The service", "type": "String", "default": null,
                    "optional": false, "validation": "service_name", "maxlength": 90},
        "mode": {"prompt": "Mode", "description": "Mode", "type": "list", "optional": true, "list": ["a", "b"]},
        "extra": {"prompt": "Extra", "description": "Extra", "type": "Hash", "optional": true, "validation": ""}
      },
      "output": {
        "status": {"description": "Status", "display_as": "Status", "default": "unknown"},
        "up": {"description": "Up", "display_as": "Up", "type": "boolean", "default": null}
      },
      "aggregate": [
        {"function": "summary", "args": ["status", {"format": "%s: %d"}]},
        {"function": "boolean_summary", "args": ["up", {"true": "running", "false": "stopped"}]}
      ]
    }
  ]
}"#;

    #[test]
    fn choria_shape_maps_onto_the_model() {
        let d = Ddl::from_json(MINIMAL, "demo.json").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(d.metadata.timeout, 5);
        let act = &d.actions["status"];
        assert_eq!(act.display, Display::Failed, "Choria's default display");
        assert!(!act.destructive);
        let service = &act.input["service"];
        assert_eq!(service.kind, InputType::String);
        assert_eq!(service.default, None, "null is no default");
        assert_eq!(service.validation.as_deref(), Some("service_name"));
        assert_eq!(service.maxlength, 90);
        assert_eq!(act.input["mode"].list, ["a", "b"]);
        assert_eq!(act.input["extra"].kind, InputType::Hash);
        assert_eq!(act.input["extra"].validation, None, "empty validation is none");
        assert_eq!(act.output["status"].default, Some(Value::String("unknown".into())));
        assert_eq!(act.output["up"].kind, Some(InputType::Boolean));
        assert_eq!(
            act.aggregate,
            [
                Aggregate { function: AggregateFunction::Summary, output: "status".into(), format: Some("%s: %d".into()) },
                Aggregate { function: AggregateFunction::Summary, output: "up".into(), format: None },
            ]
        );
    }

    #[test]
    fn imported_validators_apply_to_requests() {
        let d = Ddl::from_json(MINIMAL, "demo.json").unwrap();
        let mut args = Map::new();
        args.insert("service".into(), Value::String("nginx".into()));
        crate::validate_request(&d, "status", &mut args).unwrap();
        args.insert("service".into(), Value::String("nginx; reboot".into()));
        let e = crate::validate_request(&d, "status", &mut args).unwrap_err();
        assert_eq!(e.to_string(), "input 'service' must be a service name (validator service_name, got 'nginx; reboot')");
    }
}
