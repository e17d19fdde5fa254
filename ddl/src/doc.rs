//! An agent's help page, generated from its DDL alone: `render_text` for the terminal (in the style
//! of `mco plugin doc`) and `render_markdown` for documentation sites. Actions, inputs and outputs
//! come in name order and aggregates in declared order, so the output is stable for snapshots.

use std::fmt::Write;

use serde_json::Value;

use crate::model::{Action, Aggregate, AggregateFunction, Ddl, Display, Input, InputType, Output};

/// Width the terminal page wraps its prose to.
const WIDTH: usize = 80;

/// Width of the right-aligned labels of inputs and outputs ("Description" is the longest).
const LABEL: usize = 11;

/// The terminal help page of an agent.
pub fn render_text(ddl: &Ddl) -> String {
    let md = &ddl.metadata;
    let mut out = String::new();
    let title = format!("{} agent, version {}", md.name, md.version);
    writeln!(out, "{title}\n{}\n", "=".repeat(title.chars().count())).ok();
    push_wrapped(&mut out, "", "", &md.description);
    out.push('\n');
    for (label, value) in [
        ("Author", md.author.clone()),
        ("Version", md.version.clone()),
        ("License", md.license.clone()),
        ("Timeout", seconds(md.timeout)),
        ("Home Page", md.url.clone()),
    ] {
        if !value.is_empty() {
            writeln!(out, "   {label:>9}: {value}").ok();
        }
    }
    out.push_str("\nACTIONS:\n========\n");
    push_wrapped(&mut out, "   ", "   ", &ddl.actions.keys().cloned().collect::<Vec<_>>().join(", "));
    for (name, action) in &ddl.actions {
        out.push('\n');
        text_action(&mut out, name, action);
    }
    out
}

fn text_action(out: &mut String, name: &str, action: &Action) {
    let heading =
        if action.destructive { format!("{name} action (DESTRUCTIVE: asks for confirmation):") } else { format!("{name} action:") };
    writeln!(out, "   {heading}\n   {}", "-".repeat(heading.chars().count())).ok();
    push_wrapped(out, "       ", "       ", &action.description);
    writeln!(out, "\n       Display: {}", display_name(action.display)).ok();

    out.push_str("\n       INPUT:\n");
    if action.input.is_empty() {
        out.push_str("           This action has no inputs\n");
    }
    for (i, (iname, input)) in action.input.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        writeln!(out, "           {iname}:").ok();
        for (label, value) in input_rows(input) {
            push_row(out, label, &value);
        }
    }

    out.push_str("\n       OUTPUT:\n");
    if action.output.is_empty() {
        out.push_str("           This action has no outputs\n");
    }
    for (i, (oname, output)) in action.output.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        writeln!(out, "           {oname}:").ok();
        for (label, value) in output_rows(output) {
            push_row(out, label, &value);
        }
    }

    if !action.aggregate.is_empty() || !action.plugin_aggregate.is_empty() {
        out.push_str("\n       AGGREGATES:\n");
        for agg in &action.aggregate {
            let line = match &agg.format {
                Some(f) => format!("{} of {} (format {})", function_name(agg.function), agg.output, quoted(f)),
                None => format!("{} of {}", function_name(agg.function), agg.output),
            };
            push_wrapped(out, "           ", "               ", &line);
        }
        for agg in &action.plugin_aggregate {
            let line = format!(
                "{} of {}: not available (a plugin aggregate fleet does not implement; the action runs without it)",
                agg.function, agg.output
            );
            push_wrapped(out, "           ", "               ", &line);
        }
    }
}

/// The labelled facts of an input, in the order the help page shows them.
fn input_rows(input: &Input) -> Vec<(&'static str, String)> {
    let mut rows = vec![
        ("Description", input.description.clone()),
        ("Prompt", input.prompt.clone()),
        ("Type", input.kind.to_string()),
        ("Required", if input.optional { "no".into() } else { "yes".into() }),
    ];
    if let Some(d) = &input.default {
        rows.push(("Default", value_text(d)));
    }
    if let Some(v) = &input.validation {
        rows.push(("Validation", validation_text(v, input.kind)));
    }
    if input.maxlength > 0 {
        rows.push(("Max length", input.maxlength.to_string()));
    }
    if input.kind == InputType::List {
        rows.push(("Values", input.list.join(", ")));
    }
    rows
}

/// A validation as the help page shows it: a plugin validator says it checks the type only.
fn validation_text(v: &str, kind: InputType) -> String {
    if crate::validate::is_plugin_validator(v) {
        format!("{v} (plugin validator, not available in fleet: checked as a {kind} only)")
    } else {
        v.to_string()
    }
}

fn output_rows(output: &Output) -> Vec<(&'static str, String)> {
    let mut rows = vec![("Description", output.description.clone()), ("Display As", output.display_as.clone())];
    if let Some(kind) = output.kind {
        rows.push(("Type", kind.to_string()));
    }
    if let Some(d) = &output.default {
        rows.push(("Default", value_text(d)));
    }
    rows
}

/// `      Label: value`, the value wrapped under itself.
fn push_row(out: &mut String, label: &str, value: &str) {
    let first = format!("              {label:>LABEL$}: ");
    let rest = " ".repeat(first.chars().count());
    push_wrapped(out, &first, &rest, value);
}

/// Appends `text` word-wrapped to [`WIDTH`], the first line after `first` and the others after `rest`.
/// A word longer than the line (a long regex) stays whole rather than being cut.
fn push_wrapped(out: &mut String, first: &str, rest: &str, text: &str) {
    let mut line = first.to_string();
    let mut empty = true;
    for word in text.split_whitespace() {
        if !empty && line.chars().count() + 1 + word.chars().count() > WIDTH {
            out.push_str(line.trim_end());
            out.push('\n');
            line = rest.to_string();
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

/// The agent's help page as Markdown, with tables for inputs, outputs and aggregates.
pub fn render_markdown(ddl: &Ddl) -> String {
    let md = &ddl.metadata;
    let mut out = String::new();
    writeln!(out, "# {} agent\n\n{}\n", md.name, one_line(&md.description)).ok();
    out.push_str("| Metadata | |\n|---|---|\n");
    for (label, value) in [
        ("Author", md.author.clone()),
        ("Version", md.version.clone()),
        ("License", md.license.clone()),
        ("Timeout", seconds(md.timeout)),
        ("Home page", md.url.clone()),
    ] {
        if !value.is_empty() {
            writeln!(out, "| {label} | {} |", cell(&value)).ok();
        }
    }
    out.push_str("\n## Actions\n\n");
    for (name, action) in &ddl.actions {
        let mark = if action.destructive { " (destructive)" } else { "" };
        writeln!(out, "- [`{name}`](#{name}){mark}: {}", one_line(&action.description)).ok();
    }
    out.push('\n');
    for (name, action) in &ddl.actions {
        writeln!(out, "### {name}\n").ok();
        if action.destructive {
            out.push_str("**DESTRUCTIVE**: asks for confirmation before it runs.\n\n");
        }
        writeln!(out, "{}\n\nDisplay: `{}`\n", one_line(&action.description), display_name(action.display)).ok();
        markdown_inputs(&mut out, name, action);
        markdown_outputs(&mut out, name, action);
        markdown_aggregates(&mut out, action);
    }
    // Each section ends with a blank line; the page ends with just one newline.
    out.truncate(out.trim_end().len());
    out.push('\n');
    out
}

fn markdown_inputs(out: &mut String, name: &str, action: &Action) {
    out.push_str("#### Inputs\n\n");
    if action.input.is_empty() {
        writeln!(out, "The {name} action has no inputs.\n").ok();
        return;
    }
    out.push_str("| Input | Description | Prompt | Type | Required | Default | Validation | Max length | Values |\n");
    out.push_str("|---|---|---|---|---|---|---|---|---|\n");
    for (iname, input) in &action.input {
        let default = input.default.as_ref().map(|d| code(&value_text(d))).unwrap_or_default();
        let validation = match input.validation.as_deref() {
            Some(v) if crate::validate::is_plugin_validator(v) => {
                format!("{} (plugin validator, not available in fleet: checked as a {} only)", code(v), input.kind)
            }
            Some(v) => code(v),
            None => String::new(),
        };
        let maxlength = if input.maxlength > 0 { input.maxlength.to_string() } else { String::new() };
        let values = input.list.iter().map(|v| code(v)).collect::<Vec<_>>().join(", ");
        writeln!(
            out,
            "| {} | {} | {} | {} | {} | {default} | {validation} | {maxlength} | {values} |",
            code(iname),
            cell(&input.description),
            cell(&input.prompt),
            input.kind,
            if input.optional { "no" } else { "yes" },
        )
        .ok();
    }
    out.push('\n');
}

fn markdown_outputs(out: &mut String, name: &str, action: &Action) {
    out.push_str("#### Outputs\n\n");
    if action.output.is_empty() {
        writeln!(out, "The {name} action has no outputs.\n").ok();
        return;
    }
    out.push_str("| Output | Display as | Description | Type | Default |\n|---|---|---|---|---|\n");
    for (oname, output) in &action.output {
        let kind = output.kind.map(|k| k.to_string()).unwrap_or_default();
        let default = output.default.as_ref().map(|d| code(&value_text(d))).unwrap_or_default();
        writeln!(out, "| {} | {} | {} | {kind} | {default} |", code(oname), cell(&output.display_as), cell(&output.description)).ok();
    }
    out.push('\n');
}

fn markdown_aggregates(out: &mut String, action: &Action) {
    let aggregates: &[Aggregate] = &action.aggregate;
    if aggregates.is_empty() && action.plugin_aggregate.is_empty() {
        return;
    }
    out.push_str("#### Aggregates\n\n| Function | Output | Format |\n|---|---|---|\n");
    for agg in aggregates {
        let format = agg.format.as_deref().map(code).unwrap_or_default();
        writeln!(out, "| {} | {} | {format} |", function_name(agg.function), code(&agg.output)).ok();
    }
    for agg in &action.plugin_aggregate {
        writeln!(out, "| {} (not available: plugin aggregate) | {} | |", cell(&agg.function), code(&agg.output)).ok();
    }
    out.push('\n');
}

/// The DDL word for a display mode.
pub(crate) fn display_name(d: Display) -> &'static str {
    match d {
        Display::Ok => "ok",
        Display::Failed => "failed",
        Display::Always => "always",
        Display::Flatten => "flatten",
    }
}

fn function_name(f: AggregateFunction) -> &'static str {
    match f {
        AggregateFunction::Summary => "summary",
        AggregateFunction::Sum => "sum",
        AggregateFunction::Average => "average",
    }
}

fn seconds(n: u64) -> String {
    if n == 1 { "1 second".into() } else { format!("{n} seconds") }
}

/// A value as JSON, so a string default shows its quotes and `""` is visible.
fn value_text(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Text made safe for a Markdown table cell.
fn cell(s: &str) -> String {
    one_line(s).replace('|', "\\|")
}

/// A code span in a table cell; GFM still needs `|` escaped inside it.
fn code(s: &str) -> String {
    let s = cell(s);
    if s.contains('`') { format!("`` {s} ``") } else { format!("`{s}`") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_keeps_long_words_whole() {
        let mut out = String::new();
        push_wrapped(&mut out, "> ", "  ", &format!("short {} tail", "x".repeat(90)));
        assert_eq!(out, format!("> short\n  {}\n  tail\n", "x".repeat(90)));
    }

    #[test]
    fn markdown_cells_are_escaped() {
        assert_eq!(code("^(a|b)$"), r"`^(a\|b)$`");
        assert_eq!(code("a`b"), "`` a`b ``");
        assert_eq!(cell("two\nlines"), "two lines");
    }

    #[test]
    fn every_builtin_renders_every_action() {
        for (name, text) in crate::builtin::all() {
            let ddl = Ddl::from_toml(text, name).unwrap();
            let page = render_text(&ddl);
            let md = render_markdown(&ddl);
            for action in ddl.actions.keys() {
                assert!(page.contains(&format!("   {action} action")), "{name}#{action}");
                assert!(md.contains(&format!("\n### {action}\n\n")), "{name}#{action}");
            }
        }
    }
}
