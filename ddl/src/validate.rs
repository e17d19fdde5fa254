//! Validation of a request's arguments against a DDL. The same code runs in the client (refuse
//! before sending) and in the node (answer InvalidData/MissingData, never run the action).

use serde_json::{Map, Value};

use crate::model::{Ddl, Input, InputType};

/// Validators known by name rather than written as a regex. The first six are MCollective's and
/// Choria's own; the rest are the validator plugins that Choria's public agents (service, package,
/// puppet) name in their DDLs, so those DDLs import unchanged and validate as they do under Choria.
pub(crate) const NAMED_VALIDATORS: &[&str] = &[
    "ipv4address",
    "ipv6address",
    "ipaddress",
    "shellsafe",
    "length",
    "typecheck",
    "service_name",
    "package_name",
    "puppet_variable",
    "puppet_tags",
    "puppet_server_address",
];

/// The plugin validators, as (name, what a value must be, regex).
const PLUGIN_VALIDATORS: &[(&str, &str, &str)] = &[
    ("service_name", "a service name", r"^[A-Za-z0-9.\-_:@]+$"),
    ("package_name", "a package name", r"^[A-Za-z0-9.\-_]+$"),
    ("puppet_variable", "a Puppet variable name", r"^(?:[A-Za-z]|[A-Za-z0-9_]{2,})$"),
    (
        "puppet_tags",
        "a comma separated list of Puppet tags",
        r"^(?:[A-Za-z]|[A-Za-z0-9_]{2,})(?:::(?:[A-Za-z]|[A-Za-z0-9_]{2,}))*(?:,(?:[A-Za-z]|[A-Za-z0-9_]{2,})(?:::(?:[A-Za-z]|[A-Za-z0-9_]{2,}))*)*$",
    ),
    (
        "puppet_server_address",
        "a Puppet server as HOST or HOST:PORT",
        r"^(?:(?:[A-Za-z]|[A-Za-z][A-Za-z0-9\-]*[A-Za-z0-9])\.)*(?:[A-Za-z]|[A-Za-z][A-Za-z0-9\-]*[A-Za-z0-9])(?::[0-9]+)?$",
    ),
];

/// Whether a `validation` is written as a validator name rather than a regex. Such a name must be
/// one of [`NAMED_VALIDATORS`]: a misspelt `shelsafe` would otherwise be a regex that rejects
/// nearly everything.
pub(crate) fn is_validator_name(validation: &str) -> bool {
    let mut chars = validation.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase()) && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Whether `validation` names a validator fleet does not implement (a plugin validator): such an
/// input is validated by its type only.
pub fn is_plugin_validator(validation: &str) -> bool {
    is_validator_name(validation) && !NAMED_VALIDATORS.contains(&validation)
}

/// The built-in validator `name` is most likely a misspelling of (at most two edits away).
pub(crate) fn near_validator(name: &str) -> Option<&'static str> {
    NAMED_VALIDATORS.iter().copied().filter(|k| edit_distance(k, name) <= 2).min_by_key(|k| edit_distance(k, name))
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push((prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

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
        return Err(ValidationError::Undeclared { agent: ddl.metadata.name.clone(), action: action.to_string(), input: extra.clone() });
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
    check_type(name, input, v)?;
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

/// Checks only that a value has the input's declared type.
pub(crate) fn check_type(name: &str, input: &Input, v: &Value) -> Result<(), ValidationError> {
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
    Ok(())
}

fn check_validator(name: &str, rule: &str, s: &str, input: &Input) -> Result<(), ValidationError> {
    if let Some((_, what, pattern)) = PLUGIN_VALIDATORS.iter().find(|(n, _, _)| *n == rule) {
        let re = regex::Regex::new(pattern).expect("static validator regex");
        return if re.is_match(s) { Ok(()) } else { Err(invalid(name, format!("must be {what} (validator {rule}, got '{s}')"))) };
    }
    match rule {
        "ipv4address" => s
            .parse::<std::net::Ipv4Addr>()
            .map(|_| ())
            .map_err(|_| invalid(name, format!("must be an IPv4 address (validator ipv4address, got '{s}')"))),
        "ipv6address" => s
            .parse::<std::net::Ipv6Addr>()
            .map(|_| ())
            .map_err(|_| invalid(name, format!("must be an IPv6 address (validator ipv6address, got '{s}')"))),
        "ipaddress" => s
            .parse::<std::net::IpAddr>()
            .map(|_| ())
            .map_err(|_| invalid(name, format!("must be an IPv4 or IPv6 address (validator ipaddress, got '{s}')"))),
        // MCollective and Choria refuse ` $ ; | && > <. A single & (run in the background) and line
        // breaks (a second command) are just as dangerous in a shell, so they are refused too.
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
        "typecheck" => Ok(()), // the type was already checked by check_type
        // A misspelt built-in validator (a DDL built in code; loading refuses it) must not pass.
        unknown if near_validator(unknown).is_some() => Err(invalid(name, format!("names the unknown validator '{unknown}' in the DDL"))),
        // A plugin validator fleet does not implement: the type was checked, as documented.
        plugin if is_validator_name(plugin) => Ok(()),
        regex => {
            let re = regex::Regex::new(regex).map_err(|e| invalid(name, format!("has a bad validation regex in the DDL: {e}")))?;
            if re.is_match(s) { Ok(()) } else { Err(invalid(name, format!("does not match the validation /{regex}/ (got '{s}')"))) }
        }
    }
}

/// The DDL type name of a JSON value (`string`, `integer`, `float`, `boolean`, `array`, `hash`, `null`).
pub fn json_type(v: &Value) -> &'static str {
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
            if input.kind == InputType::Number
                && let Ok(i) = raw.trim().parse::<i64>()
            {
                return Ok(Value::from(i));
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

    fn string_input(validation: &str, maxlength: usize) -> Input {
        Input {
            prompt: "P".into(),
            description: "D".into(),
            kind: InputType::String,
            optional: false,
            default: None,
            validation: Some(validation.into()),
            maxlength,
            list: vec![],
        }
    }

    /// Checks `value` against `validation`: Ok, or the rule that refused it.
    fn check(validation: &str, value: &str) -> Result<(), String> {
        check_value("v", &string_input(validation, 0), &json!(value)).map_err(|e| e.to_string())
    }

    #[test]
    fn ipv4address() {
        for ok in ["192.168.1.1", "0.0.0.0", "255.255.255.255"] {
            assert_eq!(check("ipv4address", ok), Ok(()), "{ok}");
        }
        for bad in ["256.1.1.1", "1.2.3", "1.2.3.4.5", "01.2.3.4", " 1.2.3.4", "::1", "host", ""] {
            assert!(check("ipv4address", bad).is_err(), "{bad}");
        }
        assert_eq!(check("ipv4address", "1.2.3"), Err("input 'v' must be an IPv4 address (validator ipv4address, got '1.2.3')".into()));
    }

    #[test]
    fn ipv6address() {
        for ok in ["::1", "::", "fe80::1", "2001:db8::8a2e:370:7334", "::ffff:192.0.2.1"] {
            assert_eq!(check("ipv6address", ok), Ok(()), "{ok}");
        }
        for bad in ["1.2.3.4", "[::1]", "fe80::1%eth0", "gggg::1", "1:2:3:4:5:6:7:8:9", ""] {
            assert!(check("ipv6address", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ipaddress_takes_either_family() {
        assert_eq!(check("ipaddress", "10.0.0.1"), Ok(()));
        assert_eq!(check("ipaddress", "2001:db8::1"), Ok(()));
        assert_eq!(check("ipaddress", "db01"), Err("input 'v' must be an IPv4 or IPv6 address (validator ipaddress, got 'db01')".into()));
    }

    #[test]
    fn shellsafe() {
        for ok in ["nginx", "openssl-1.1.1k", "a b c", "--flag=value", "path/to/file.txt", "100%", "(x)", "'quoted'"] {
            assert_eq!(check("shellsafe", ok), Ok(()), "{ok}");
        }
        for (bad, shown) in [
            ("a`id`", "`"),
            ("$(id)", "$"),
            ("a;b", ";"),
            ("a|b", "|"),
            ("a&&b", "&"),
            ("a&", "&"),
            ("a>b", ">"),
            ("a<b", "<"),
            ("a\nb", "\\n"),
            ("a\rb", "\\r"),
        ] {
            assert_eq!(
                check("shellsafe", bad),
                Err(format!("input 'v' must be shell safe (validator shellsafe; '{shown}' is not allowed)")),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn length_applies_maxlength() {
        let input = string_input("length", 3);
        assert_eq!(check_validator("v", "length", "abc", &input), Ok(()));
        assert_eq!(
            check_validator("v", "length", "abcd", &input).unwrap_err().to_string(),
            "input 'v' is longer than 3 (validator length)"
        );
        assert_eq!(check_validator("v", "length", &"x".repeat(10_000), &string_input("length", 0)), Ok(()), "0 is no limit");
        // Through check_value the maxlength check comes first and counts characters, not bytes.
        assert_eq!(check_value("v", &input, &json!("äöü")), Ok(()));
        assert_eq!(
            check_value("v", &input, &json!("abcd")).unwrap_err().to_string(),
            "input 'v' is 4 characters long, over its maxlength of 3"
        );
    }

    #[test]
    fn typecheck_leaves_the_type_to_the_declaration() {
        assert_eq!(check("typecheck", "anything at all; even this"), Ok(()));
        let input = string_input("typecheck", 0);
        assert_eq!(check_value("v", &input, &json!(5)).unwrap_err().to_string(), "input 'v' must be of type string (got integer)");
    }

    #[test]
    fn plugin_validators() {
        assert_eq!(check("service_name", "systemd-journald.service"), Ok(()));
        assert_eq!(check("service_name", "getty@tty1"), Ok(()));
        assert_eq!(check("service_name", "a b"), Err("input 'v' must be a service name (validator service_name, got 'a b')".into()));
        assert_eq!(check("package_name", "python3.11-dev"), Ok(()));
        assert!(check("package_name", "nginx;reboot").is_err());
        assert!(check("package_name", "").is_err());
        assert_eq!(check("puppet_variable", "production"), Ok(()));
        assert_eq!(check("puppet_variable", "x"), Ok(()));
        assert!(check("puppet_variable", "1").is_err(), "a one-character name must be a letter");
        assert!(check("puppet_variable", "prod-1").is_err());
        assert_eq!(check("puppet_tags", "apache"), Ok(()));
        assert_eq!(check("puppet_tags", "apache::mod,ntp,x"), Ok(()));
        assert!(check("puppet_tags", "apache,").is_err());
        assert!(check("puppet_tags", "a b").is_err());
        assert_eq!(check("puppet_server_address", "puppet"), Ok(()));
        assert_eq!(check("puppet_server_address", "puppet.example.com:8140"), Ok(()));
        assert!(check("puppet_server_address", "puppet.example.com:port").is_err());
        assert!(check("puppet_server_address", "-bad.example.com").is_err());
        assert!(check("puppet_server_address", ":8140").is_err());
    }

    #[test]
    fn regexes_match_anywhere_unless_anchored() {
        assert_eq!(check("o+b", "foobar"), Ok(()));
        assert_eq!(check("^o+b", "foobar"), Err("input 'v' does not match the validation /^o+b/ (got 'foobar')".into()));
    }

    #[test]
    fn an_unknown_validator_refuses_rather_than_matching_as_a_regex() {
        // Loading refuses such a DDL; a DDL built in code still must not treat the name as a regex.
        assert_eq!(check("shelsafe", "shelsafe"), Err("input 'v' names the unknown validator 'shelsafe' in the DDL".into()));
        // A plugin validator (far from every built-in name) checks the type only.
        assert_eq!(check("nrpe_command", "anything; at all"), Ok(()));
    }

    #[test]
    fn builtin_ddls_load() {
        for (name, text) in crate::builtin::all() {
            let d = Ddl::from_toml(text, name).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(d.metadata.name, name);
        }
    }
}
