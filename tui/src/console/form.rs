//! A request form generated from a DDL action: strings and numbers are text fields checked as the
//! user types (type, validation, maxlength: the DDL crate's own checks, so the console refuses
//! exactly what the node would), lists are pickers, booleans are toggles. Required fields are
//! marked; prompts and descriptions are the help.

use std::collections::BTreeMap;
use std::sync::Arc;

use fleet_ddl::{Ddl, Input, InputType};
use serde_json::{Map, Value};

use super::action::TextEdit;
use super::widgets::input::TextInput;
use fleet_client::format::value_text;

#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    Text(TextInput),
    /// `None` is unset (optional booleans only): the DDL's default applies.
    Toggle(Option<bool>),
    /// An index into the input's list; `None` is unset.
    Pick(Option<usize>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: String,
    pub input: Input,
    pub value: FieldValue,
    /// The action with only this input, so one field can be checked by `validate_request`
    /// without the others.
    alone: Ddl,
}

/// Why a field's value cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldError {
    /// Required and empty.
    Missing,
    /// The rule it breaks, in the DDL crate's words without the `input 'x'` prefix.
    Invalid(String),
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FieldError::Missing => f.write_str("is required"),
            FieldError::Invalid(rule) => f.write_str(rule),
        }
    }
}

impl Field {
    fn new(ddl: &Ddl, action: &str, name: &str, input: &Input) -> Field {
        let value = match input.kind {
            InputType::Boolean => {
                Toggle(input.default.as_ref().and_then(Value::as_bool).or(if input.optional { None } else { Some(false) }))
            }
            InputType::List => Pick(input.default.as_ref().and_then(Value::as_str).and_then(|d| input.list.iter().position(|l| l == d))),
            _ => FieldValue::Text(TextInput::new(&input.default.as_ref().map(value_text).unwrap_or_default())),
        };
        let mut act = ddl.actions[action].clone();
        act.input = BTreeMap::from([(name.to_string(), input.clone())]);
        act.output.clear();
        act.aggregate.clear();
        let alone = Ddl { metadata: ddl.metadata.clone(), actions: BTreeMap::from([(action.to_string(), act)]) };
        Field { name: name.to_string(), input: input.clone(), value, alone }
    }

    pub fn required(&self) -> bool {
        !self.input.optional && self.input.default.is_none()
    }

    /// The value to send: `Ok(None)` leaves it to the DDL's default (or out, when optional).
    pub fn check(&self) -> Result<Option<Value>, FieldError> {
        let value = match &self.value {
            FieldValue::Text(t) if t.text().is_empty() => None,
            FieldValue::Text(t) => Some(fleet_ddl::coerce_cli_value(&self.name, &self.input, t.text()).map_err(|e| self.rule(e))?),
            FieldValue::Toggle(b) => b.map(Value::Bool),
            FieldValue::Pick(i) => i.and_then(|i| self.input.list.get(i)).map(|s| Value::String(s.clone())),
        };
        let Some(value) = value else {
            return if self.required() { Err(FieldError::Missing) } else { Ok(None) };
        };
        let action = self.alone.actions.keys().next().expect("one action");
        let mut args = Map::from_iter([(self.name.clone(), value.clone())]);
        fleet_ddl::validate_request(&self.alone, action, &mut args).map_err(|e| self.rule(e))?;
        Ok(Some(value))
    }

    fn rule(&self, e: fleet_ddl::ValidationError) -> FieldError {
        let text = e.to_string();
        let prefix = format!("input '{}' ", self.name);
        FieldError::Invalid(text.strip_prefix(&prefix).unwrap_or(&text).to_string())
    }

    /// What the field shows: the text, `yes`/`no`/`(default)`, or the picked value.
    pub fn display(&self) -> String {
        match &self.value {
            FieldValue::Text(t) => t.text().to_string(),
            FieldValue::Toggle(Some(b)) => if *b { "yes" } else { "no" }.to_string(),
            FieldValue::Toggle(None) => "(default)".to_string(),
            FieldValue::Pick(Some(i)) => self.input.list[*i].clone(),
            FieldValue::Pick(None) => "(choose)".to_string(),
        }
    }

    /// `string, max 256, /^[\w]+$/`: what the DDL says about the value.
    pub fn rules(&self) -> String {
        let mut parts = vec![self.input.kind.to_string()];
        if self.input.maxlength > 0 {
            parts.push(format!("max {}", self.input.maxlength));
        }
        if let Some(v) = &self.input.validation {
            parts.push(if v.starts_with('^') || v.contains('\\') { format!("/{v}/") } else { v.clone() });
        }
        if self.input.kind == InputType::List {
            parts.push(format!("one of {}", self.input.list.join(", ")));
        }
        if let Some(d) = &self.input.default {
            parts.push(format!("default {}", value_text(d)));
        }
        parts.join(", ")
    }

    pub fn is_text(&self) -> bool {
        matches!(self.value, FieldValue::Text(_))
    }

    fn step(&mut self, forward: bool) {
        let optional = !self.required();
        match &mut self.value {
            FieldValue::Text(t) => {
                t.apply(if forward { TextEdit::Right } else { TextEdit::Left });
            }
            FieldValue::Toggle(b) => {
                // optional: unset -> yes -> no -> unset; required: yes <-> no.
                let cycle: &[Option<bool>] = if optional { &[None, Some(true), Some(false)] } else { &[Some(true), Some(false)] };
                *b = cycle_step(cycle, b, forward);
            }
            FieldValue::Pick(i) => {
                // optional: unset, then the values; required: the values only.
                let mut cycle: Vec<Option<usize>> = if optional { vec![None] } else { Vec::new() };
                cycle.extend((0..self.input.list.len()).map(Some));
                *i = cycle_step(&cycle, i, forward);
            }
        }
    }
}

use FieldValue::{Pick, Toggle};

/// The value after (or before) `now` in `cycle`; from a value not in it, the first (or last).
fn cycle_step<T: Copy + PartialEq>(cycle: &[T], now: &T, forward: bool) -> T {
    let n = cycle.len();
    match cycle.iter().position(|x| x == now) {
        Some(p) if forward => cycle[(p + 1) % n],
        Some(p) => cycle[(p + n - 1) % n],
        None if forward => cycle[0],
        None => cycle[n - 1],
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Form {
    pub agent: String,
    pub action: String,
    pub ddl: Arc<Ddl>,
    pub fields: Vec<Field>,
    pub cursor: usize,
    /// Set by a submit attempt: from then on, empty required fields are shown as errors.
    pub tried: bool,
}

impl Form {
    /// The form of `agent#action`: required fields first, each group by name.
    pub fn new(ddl: Arc<Ddl>, action: &str) -> Option<Form> {
        let act = ddl.action(action)?;
        let mut fields: Vec<Field> = act.input.iter().map(|(name, input)| Field::new(&ddl, action, name, input)).collect();
        fields.sort_by_key(|f| !f.required());
        Some(Form { agent: ddl.metadata.name.clone(), action: action.to_string(), fields, cursor: 0, tried: false, ddl })
    }

    pub fn action_def(&self) -> &fleet_ddl::Action {
        self.ddl.action(&self.action).expect("the form's action is in its DDL")
    }

    pub fn focused(&self) -> Option<&Field> {
        self.fields.get(self.cursor)
    }

    pub fn next_field(&mut self) {
        if !self.fields.is_empty() {
            self.cursor = (self.cursor + 1) % self.fields.len();
        }
    }

    pub fn prev_field(&mut self) {
        if !self.fields.is_empty() {
            self.cursor = (self.cursor + self.fields.len() - 1) % self.fields.len();
        }
    }

    /// Types into the focused text field; space on a toggle or picker steps it.
    pub fn edit(&mut self, edit: TextEdit) {
        let Some(f) = self.fields.get_mut(self.cursor) else {
            return;
        };
        match (&mut f.value, edit) {
            (FieldValue::Text(t), e) => {
                t.apply(e);
            }
            (_, TextEdit::Insert(' ')) => f.step(true),
            (FieldValue::Toggle(b), TextEdit::Clear) => *b = if f.input.optional { None } else { Some(false) },
            (FieldValue::Pick(i), TextEdit::Clear) if f.input.optional => *i = None,
            _ => {}
        }
    }

    /// Right/left: the next or previous value of a toggle or picker; the cursor in a text field.
    pub fn step(&mut self, forward: bool) {
        if let Some(f) = self.fields.get_mut(self.cursor) {
            f.step(forward);
        }
    }

    /// The arguments to send, defaults filled in, or the fields that are wrong.
    pub fn args(&self) -> Result<Map<String, Value>, Vec<(String, FieldError)>> {
        let mut args = Map::new();
        let mut errors = Vec::new();
        for f in &self.fields {
            match f.check() {
                Ok(Some(v)) => {
                    args.insert(f.name.clone(), v);
                }
                Ok(None) => {}
                Err(e) => errors.push((f.name.clone(), e)),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        if let Err(e) = fleet_ddl::validate_request(&self.ddl, &self.action, &mut args) {
            return Err(vec![(String::new(), FieldError::Invalid(e.to_string()))]);
        }
        Ok(args)
    }

    /// The error a field shows now: rule breaks as soon as typed, missing values after a submit.
    pub fn shown_error(&self, i: usize) -> Option<FieldError> {
        match self.fields.get(i)?.check() {
            Err(FieldError::Missing) if !self.tried => None,
            Err(e) => Some(e),
            Ok(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const DDL: &str = r#"
[metadata]
name = "demo"
description = "A form test"
version = "1.0.0"

[actions.go]
description = "Go"
destructive = true
[actions.go.input.fact]
prompt = "Fact"
description = "A fact name"
type = "string"
validation = '^[\w\-\.:]+$'
maxlength = 8
[actions.go.input.count]
prompt = "Count"
description = "How many"
type = "integer"
optional = true
[actions.go.input.force]
prompt = "Force"
description = "Really"
type = "boolean"
optional = true
[actions.go.input.signal]
prompt = "Signal"
description = "Which"
type = "list"
list = ["TERM", "KILL"]
default = "TERM"
[actions.go.input.colour]
prompt = "Colour"
description = "Which colour"
type = "list"
list = ["red", "blue"]
"#;

    fn form() -> Form {
        Form::new(Arc::new(Ddl::from_toml(DDL, "demo.toml").unwrap()), "go").unwrap()
    }

    fn type_in(f: &mut Form, text: &str) {
        for c in text.chars() {
            f.edit(TextEdit::Insert(c));
        }
    }

    fn at(f: &mut Form, name: &str) {
        f.cursor = f.fields.iter().position(|x| x.name == name).unwrap();
    }

    #[test]
    fn required_fields_come_first_and_are_marked() {
        let f = form();
        let names: Vec<&str> = f.fields.iter().map(|x| x.name.as_str()).collect();
        assert_eq!(names, ["colour", "fact", "count", "force", "signal"]);
        assert!(f.fields[0].required() && f.fields[1].required() && !f.fields[4].required(), "a default makes it optional");
        assert_eq!(f.fields[1].rules(), r"string, max 8, /^[\w\-\.:]+$/");
    }

    #[test]
    fn text_is_checked_as_it_is_typed_and_names_the_rule() {
        let mut f = form();
        at(&mut f, "fact");
        assert_eq!(f.shown_error(f.cursor), None, "empty and required: not an error until a submit");
        type_in(&mut f, "bad fact");
        assert_eq!(
            f.shown_error(f.cursor),
            Some(FieldError::Invalid(r"does not match the validation /^[\w\-\.:]+$/ (got 'bad fact')".into()))
        );
        f.edit(TextEdit::Clear);
        type_in(&mut f, "os.family");
        assert_eq!(f.shown_error(f.cursor), Some(FieldError::Invalid("is 9 characters long, over its maxlength of 8".into())));
        f.edit(TextEdit::Backspace);
        f.edit(TextEdit::Backspace);
        assert_eq!(f.shown_error(f.cursor), None);
        at(&mut f, "count");
        type_in(&mut f, "x");
        assert_eq!(f.shown_error(f.cursor), Some(FieldError::Invalid("must be an integer (got 'x')".into())));
        f.edit(TextEdit::Backspace);
        type_in(&mut f, "12");
        assert_eq!(f.fields[f.cursor].check(), Ok(Some(json!(12))));
    }

    #[test]
    fn toggles_and_pickers_step_through_their_values() {
        let mut f = form();
        at(&mut f, "force");
        assert_eq!(f.fields[f.cursor].display(), "(default)");
        f.step(true);
        assert_eq!(f.fields[f.cursor].display(), "yes");
        f.edit(TextEdit::Insert(' '));
        assert_eq!(f.fields[f.cursor].display(), "no");
        f.step(true);
        assert_eq!(f.fields[f.cursor].display(), "(default)", "an optional toggle can go back to unset");
        at(&mut f, "signal");
        assert_eq!(f.fields[f.cursor].display(), "TERM", "the default is picked");
        f.step(true);
        assert_eq!(f.fields[f.cursor].display(), "KILL");
        f.step(true);
        assert_eq!(f.fields[f.cursor].display(), "(choose)");
        at(&mut f, "colour");
        f.step(false);
        assert_eq!(f.fields[f.cursor].display(), "blue", "a required picker cycles its values only");
        f.step(true);
        assert_eq!(f.fields[f.cursor].display(), "red");
    }

    #[test]
    fn args_fill_defaults_and_list_every_bad_field() {
        let mut f = form();
        let errors = f.args().unwrap_err();
        assert_eq!(errors, vec![("colour".to_string(), FieldError::Missing), ("fact".to_string(), FieldError::Missing)]);
        at(&mut f, "colour");
        f.step(true);
        at(&mut f, "fact");
        type_in(&mut f, "country");
        assert_eq!(
            f.args().unwrap(),
            Map::from_iter([("colour".into(), json!("red")), ("fact".into(), json!("country")), ("signal".into(), json!("TERM"))])
        );
    }

    #[test]
    fn the_field_cursor_wraps() {
        let mut f = form();
        f.prev_field();
        assert_eq!(f.cursor, 4);
        f.next_field();
        assert_eq!(f.cursor, 0);
    }
}
