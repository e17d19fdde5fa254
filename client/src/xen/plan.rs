//! A balancer plan as text, the same in the CLI and the console.

use super::balancer::{Move, Plan};

/// The plan as text lines: the dom0s, the migrations with their reasons, and what was left alone.
pub fn plan_lines(plan: &Plan) -> Vec<String> {
    let mut lines = Vec::new();
    lines.push("Dom0s:".to_string());
    let w = plan.dom0s.iter().map(|d| d.name.len()).max().unwrap_or(0);
    for d in &plan.dom0s {
        let mark = if d.overloaded { "  OVERLOADED" } else { "" };
        lines.push(format!("  {:<w$}  {}{mark}", d.name, d.summary));
    }
    if plan.migrations.is_empty() {
        lines.push("Plan: no migration".into());
    } else {
        lines.push(format!("Plan: {} migration(s)", plan.migrations.len()));
        for (i, m) in plan.migrations.iter().enumerate() {
            let via = if m.address != m.to { format!(" via {}", m.address) } else { String::new() };
            lines.push(format!("  {}. {}: {} -> {}{via}", i + 1, m.domu, m.from, m.to));
            lines.push(format!("     {}", m.reason));
            for rule in &m.rules {
                lines.push(format!("     {rule}"));
            }
        }
    }
    if !plan.rejected.is_empty() {
        lines.push("Considered and left alone:".into());
        for r in &plan.rejected {
            lines.push(format!("  {r}"));
        }
    }
    lines
}

/// What a plan says, without its numbers: two rounds with the same gist tell the admin nothing new.
pub fn plan_gist(plan: &Plan) -> String {
    let text = plan_lines(plan).join("\n");
    text.chars().filter(|c| !c.is_ascii_digit() && *c != '.').collect()
}

/// A plan's migrations as (domU, from, to), for tests and summaries.
pub fn moves_of(plan: &Plan) -> Vec<(String, String, String)> {
    plan.migrations.iter().map(|m: &Move| (m.domu.clone(), m.from.clone(), m.to.clone())).collect()
}
