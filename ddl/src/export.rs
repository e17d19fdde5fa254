//! A DDL written as Choria's JSON DDL (schema `https://choria.io/schemas/mcorpc/ddl/v1/agent.json`),
//! the format other tools and web UIs read to build their forms. Importing the output with
//! [`Ddl::from_json`] gives back the same DDL:
//! - every optional key is written (`display`, `optional`, `maxlength`, ...), so no default of one
//!   format is read as the other's;
//! - fleet's `destructive` is written only when true (Choria ignores it; fleet's import reads it);
//! - a plugin aggregate goes back into `aggregate` as it was declared.

use serde_json::{Map, Value, json};

use crate::model::{Action, AggregateFunction, Ddl, Input, InputType, Output};

pub const CHORIA_AGENT_SCHEMA: &str = "https://choria.io/schemas/mcorpc/ddl/v1/agent.json";

impl Ddl {
    /// The DDL as a Choria JSON agent DDL document.
    pub fn to_choria_json(&self) -> Value {
        let md = &self.metadata;
        let actions: Vec<Value> = self.actions.iter().map(|(name, action)| action_json(name, action)).collect();
        json!({
            "$schema": CHORIA_AGENT_SCHEMA,
            "metadata": {
                "name": md.name,
                "description": md.description,
                "author": md.author,
                "license": md.license,
                "version": md.version,
                "url": md.url,
                "timeout": md.timeout,
            },
            "actions": actions,
        })
    }

    /// [`to_choria_json`](Self::to_choria_json), pretty-printed with a final newline.
    pub fn to_choria_json_string(&self) -> String {
        let mut s = serde_json::to_string_pretty(&self.to_choria_json()).unwrap_or_default();
        s.push('\n');
        s
    }
}

fn action_json(name: &str, action: &Action) -> Value {
    let mut obj = Map::new();
    obj.insert("action".into(), json!(name));
    obj.insert("description".into(), json!(action.description));
    obj.insert("display".into(), json!(crate::doc::display_name(action.display)));
    if action.destructive {
        obj.insert("destructive".into(), json!(true));
    }
    let input: Map<String, Value> = action.input.iter().map(|(k, v)| (k.clone(), input_json(v))).collect();
    obj.insert("input".into(), Value::Object(input));
    let output: Map<String, Value> = action.output.iter().map(|(k, v)| (k.clone(), output_json(v))).collect();
    obj.insert("output".into(), Value::Object(output));
    let mut aggregate = Vec::new();
    for agg in &action.aggregate {
        let function = match agg.function {
            AggregateFunction::Summary => "summary",
            AggregateFunction::Sum => "sum",
            AggregateFunction::Average => "average",
        };
        let args = match &agg.format {
            Some(f) => json!([agg.output, {"format": f}]),
            None => json!([agg.output]),
        };
        aggregate.push(json!({"function": function, "args": args}));
    }
    for agg in &action.plugin_aggregate {
        let args = if agg.options.is_empty() { json!([agg.output]) } else { json!([agg.output, agg.options]) };
        aggregate.push(json!({"function": agg.function, "args": args}));
    }
    if !aggregate.is_empty() {
        obj.insert("aggregate".into(), Value::Array(aggregate));
    }
    Value::Object(obj)
}

fn input_json(input: &Input) -> Value {
    let mut obj = Map::new();
    obj.insert("prompt".into(), json!(input.prompt));
    obj.insert("description".into(), json!(input.description));
    obj.insert("type".into(), json!(input.kind.to_string()));
    obj.insert("optional".into(), json!(input.optional));
    obj.insert("default".into(), input.default.clone().unwrap_or(Value::Null));
    if let Some(v) = &input.validation {
        obj.insert("validation".into(), json!(v));
    }
    obj.insert("maxlength".into(), json!(input.maxlength));
    if input.kind == InputType::List {
        obj.insert("list".into(), json!(input.list));
    }
    Value::Object(obj)
}

fn output_json(output: &Output) -> Value {
    let mut obj = Map::new();
    obj.insert("description".into(), json!(output.description));
    obj.insert("display_as".into(), json!(output.display_as));
    obj.insert("default".into(), output.default.clone().unwrap_or(Value::Null));
    if let Some(kind) = output.kind {
        obj.insert("type".into(), json!(kind.to_string()));
    }
    Value::Object(obj)
}
