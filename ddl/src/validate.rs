//! Validation of a request's arguments against a DDL. The same code runs in the client (refuse
//! before sending) and in the node (answer InvalidData/MissingData, never run the action).

use serde_json::{Map, Value};

use crate::model::{Ddl, Input, InputType};

pub(crate) const NAMED_VALIDATORS: &[&str] = &["ipv4address", "ipv6address", "shellsafe", "length", "typecheck"];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error("agent '{agent}' has no action '{action}' (it has: {known})")]
    UnknownAction { agent: String, action: String, known: String },
    #[error("input '{input}' is required")]
    Missing { input: String },
    #[error("input '{input}' {rule}")]
    Invalid { input: String, rule: String },
    #[error("input '{input}' is not declared by {agent}#{action}")]
    Undeclared { agent: String, action: String, input: String },
}

impl ValidationError {
    /// Whether this maps to MCollective's MissingData (otherwise InvalidData / UnknownAction).
    pub fn is_missing(&self) -> bool {
        matches!(self, ValidationError::Missing { .. })
    }
    pub fn is_unknown_action(&self) -> bool {
        matches!(self, ValidationError::UnknownAction { .. })
    }
}

/// Validates `args` for `action` and fills in declared defaults.
pub fn validate_request(ddl: &Ddl, action: &str, args: &mut Map<String, Value>) -> Result<(), ValidationError> {
    let Some(act) = ddl.action(action) else {
        return Err(ValidationError::UnknownAction {
            agent: ddl.metadata.name.clone(),
            action: action.to_string(),
            known: ddl.actions.keys().cloned().collect::<Vec<_>>().join(", "),
        });
    };
    if let Some(extra) = args.keys().find(|k| !act.input.contains_key(*k)) {
        return Err(ValidationError::Undeclared {
            agent: ddl.metadata.name.clone(),
            action: action.to_string(),
            input: extra.clone(),
        });
    }
    for (name, input) in &act.input {
        match args.get(name) {
            Some(v) => check_value(name, input, v)?,
            None => match &input.default {
                Some(d) => {
                    args.insert(name.clone(), d.clone());
                }
                None if input.optional => {}
                None => return Err(ValidationError::Missing { input: name.clone() }),
            },
        }
    }
    Ok(())
}

fn invalid(input: &str, rule: impl Into<String>) -> ValidationError {
    ValidationError::Invalid { input: input.to_string(), rule: rule.into() }
}

/// Checks one value against its input declaration.
pub(crate) fn check_value(name: &str, input: &Input, v: &Value) -> Result<(), ValidationError> {
    let type_ok = match input.kind {
        InputType::String => v.is_string(),
        InputType::Integer => v.is_i64() || v.is_u64(),
        InputType::Float => v.is_f64() || v.is_number(),
        InputType::Number => v.is_number(),
        InputType::Boolean => v.is_boolean(),
        InputType::List => v.is_string(),
        InputType::Hash => v.is_object(),
        InputType::Array => v.is_array(),
    };
    if !type_ok {
        return Err(invalid(name, format!("must be of type {} (got {})", input.kind, json_type(v))));
    }
    if input.kind == InputType::List {
        let s = v.as_str().unwrap_or_default();
        if !input.list.iter().any(|l| l == s) {
            return Err(invalid(name, format!("must be one of {} (got '{s}')", input.list.join(", "))));
        }
    }
    if let Some(s) = v.as_str() {
        let chars = s.chars().count();
        if input.maxlength > 0 && chars > input.maxlength {
            return Err(invalid(name, format!("is {chars} characters long, over its maxlength of {}", input.maxlength)));
        }
        if let Some(rule) = &input.validation {
            check_validator(name, rule, s, input)?;
        }
    }
    Ok(())
}

fn check_validator(name: &str, rule: &str, s: &str, input: &Input) -> Result<(), ValidationError> {
    match rule {
        "ipv4address" => s
            .parse::<std::net::Ipv4Addr>()
            .map(|_| ())
            .map_err(|_| invalid(name, format!("must be an IPv4 address (validator ipv4address, got '{s}')"))),
        "ipv6address" => s
            .parse::<std::net::Ipv6Addr>()
            .map(|_| ())
            .map_err(|_| invalid(name, format!("must be an IPv6 address (validator ipv6address, got '{s}')"))),
        "shellsafe" => match s.chars().find(|c| matches!(c, '`' | '$' | ';' | '|' | '&' | '>' | '<' | '\n' | '\r')) {
            Some(c) => Err(invalid(name, format!("must be shell safe (validator shellsafe; '{}' is not allowed)", c.escape_default()))),
            None => Ok(()),
        },
        "length" => {
            if input.maxlength > 0 && s.chars().count() > input.maxlength {
                Err(invalid(name, format!("is longer than {} (validator length)", input.maxlength)))
            } else {
                Ok(())
            }
        }
        "typecheck" => Ok(()), // the type was already checked above
        regex => {
            let re = regex::Regex::new(regex).map_err(|e| invalid(name, format!("has a bad validation regex in the DDL: {e}")))?;
            if re.is_match(s) {
                Ok(())
            } else {
                Err(invalid(name, format!("does not match the validation /{regex}/ (got '{s}')")))
            }
        }
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "hash",
    }
}

/// Turns a command-line `k=v` value into the type the DDL declares for it.
pub fn coerce_cli_value(name: &str, input: &Input, raw: &str) -> Result<Value, ValidationError> {
    let bad = |what: &str| invalid(name, format!("must be {what} (got '{raw}')"));
    Ok(match input.kind {
        InputType::String | InputType::List => Value::String(raw.to_string()),
        InputType::Integer => Value::from(raw.trim().parse::<i64>().map_err(|_| bad("an integer"))?),
        InputType::Float | InputType::Number => {
            if let Ok(i) = raw.trim().parse::<i64>() {
                if input.kind == InputType::Number {
                    return Ok(Value::from(i));
                }
            }
            let f = raw.trim().parse::<f64>().map_err(|_| bad("a number"))?;
            serde_json::Number::from_f64(f).map(Value::Number).ok_or_else(|| bad("a finite number"))?
        }
        InputType::Boolean => match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "y" | "1" | "on" => Value::Bool(true),
            "false" | "no" | "n" | "0" | "off" => Value::Bool(false),
            _ => return Err(bad("true or false")),
        },
        InputType::Hash | InputType::Array => {
            let v: Value = serde_json::from_str(raw).map_err(|_| bad("JSON"))?;
            v
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const DDL: &str = r#"
[metadata]
name = "echo"
description = "Echo"
version = "1.0.0"
timeout = 5

[actions.echo]
description = "Echo a message"

[actions.echo.input.msg]
prompt = "Message"
description = "The message"
type = "string"
maxlength = 10
validation = '^[a-z ]+$'

[actions.echo.input.count]
prompt = "Count"
description = "How many"
type = "integer"
optional = true
default = 1

[actions.echo.output.msg]
description = "The message"
display_as = "Message"
"#;

    fn ddl() -> Ddl {
        Ddl::from_toml(DDL, "echo.toml").unwrap()
    }

    #[test]
    fn defaults_are_filled() {
        let mut args = Map::new();
        args.insert("msg".into(), json!("hello"));
        validate_request(&ddl(), "echo", &mut args).unwrap();
        assert_eq!(args["count"], json!(1));
    }

    #[test]
    fn each_rule_is_named() {
        let d = ddl();
        let mut a = Map::new();
        assert_eq!(validate_request(&d, "echo", &mut a).unwrap_err().to_string(), "input 'msg' is required");
        a.insert("msg".into(), json!(3));
        assert_eq!(validate_request(&d, "echo", &mut a).unwrap_err().to_string(), "input 'msg' must be of type string (got integer)");
        a.insert("msg".into(), json!("much too long"));
        assert!(validate_request(&d, "echo", &mut a).unwrap_err().to_string().contains("over its maxlength of 10"));
        a.insert("msg".into(), json!("BAD"));
        assert!(validate_request(&d, "echo", &mut a).unwrap_err().to_string().contains("does not match the validation"));
        let e = validate_request(&d, "nope", &mut a).unwrap_err();
        assert!(e.is_unknown_action());
        let mut a = Map::new();
        a.insert("msg".into(), json!("ok"));
        a.insert("zzz".into(), json!("x"));
        assert!(validate_request(&d, "echo", &mut a).unwrap_err().to_string().contains("not declared"));
    }

    #[test]
    fn cli_values_are_coerced() {
        let d = ddl();
        let input = &d.actions["echo"].input["count"];
        assert_eq!(coerce_cli_value("count", input, "42").unwrap(), json!(42));
        assert!(coerce_cli_value("count", input, "x").is_err());
    }

    #[test]
    fn bad_ddl_names_the_line_and_field() {
        let e = Ddl::from_toml("[metadata]\nname = \"x\"\ndescription = \"d\"\nversion = \"1\"\nbogus = 1\n", "x.toml").unwrap_err();
        assert_eq!(e.file, "x.toml");
        assert_eq!(e.line, 5, "{e}");
        assert!(e.message.contains("bogus"), "{e}");
    }

    #[test]
    fn builtin_ddls_load() {
        for (name, text) in crate::builtin::all() {
            let d = Ddl::from_toml(text, name).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(d.metadata.name, name);
        }
    }
}
