//! The DDL's aggregate functions over a round's OK replies, computed once for every face: a
//! summary counts each distinct value, sum and average read numbers, and the DDL's `format`
//! (`%d`, `%f`, `%.2f`, printf style) shapes the number.

use std::collections::BTreeMap;

use fleet_ddl::{Action, AggregateFunction};
use fleet_protocol::Status;
use serde_json::Value;

use crate::format::compact;

/// One aggregate's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregate {
    /// The output's `display_as` label (or its name).
    pub label: String,
    pub value: AggregateValue,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AggregateValue {
    /// Each distinct value with how many nodes gave it, most frequent first.
    Summary(Vec<(String, usize)>),
    /// `Sum` or `Average`, already formatted.
    Number { function: &'static str, text: String },
}

impl Aggregate {
    /// On one line: `Summary of Value: uk = 2, us = 1`, `Sum of Total: 42`.
    pub fn line(&self) -> String {
        match &self.value {
            AggregateValue::Summary(counts) => {
                let parts: Vec<String> = counts.iter().map(|(k, n)| format!("{k} = {n}")).collect();
                format!("Summary of {}: {}", self.label, parts.join(", "))
            }
            AggregateValue::Number { function, text } => format!("{function} of {}: {text}", self.label),
        }
    }
}

/// The action's aggregates over the OK replies, given as (status, data) pairs. An aggregate with
/// no value to read is left out.
pub fn compute<'a>(act: &Action, replies: impl IntoIterator<Item = (&'a Status, &'a Value)> + Clone) -> Vec<Aggregate> {
    let mut out = Vec::new();
    for agg in &act.aggregate {
        let label = act.output.get(&agg.output).map(|o| o.display_as.clone()).unwrap_or_else(|| agg.output.clone());
        let values: Vec<&Value> = replies.clone().into_iter().filter(|(s, _)| s.is_ok()).filter_map(|(_, d)| d.get(&agg.output)).collect();
        if values.is_empty() {
            continue;
        }
        let value = match agg.function {
            AggregateFunction::Summary => {
                let mut counts: BTreeMap<String, usize> = BTreeMap::new();
                for v in &values {
                    *counts.entry(compact(v)).or_default() += 1;
                }
                let mut rows: Vec<_> = counts.into_iter().collect();
                rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
                AggregateValue::Summary(rows)
            }
            AggregateFunction::Sum | AggregateFunction::Average => {
                let nums: Vec<f64> = values.iter().filter_map(|v| v.as_f64()).collect();
                if nums.is_empty() {
                    continue;
                }
                let sum: f64 = nums.iter().sum();
                let (function, x) =
                    if agg.function == AggregateFunction::Sum { ("Sum", sum) } else { ("Average", sum / nums.len() as f64) };
                AggregateValue::Number { function, text: number(x, agg.format.as_deref()) }
            }
        };
        out.push(Aggregate { label, value });
    }
    out
}

/// A number through the DDL's printf-style format, or plainly: whole numbers without decimals,
/// others with two.
fn number(x: f64, format: Option<&str>) -> String {
    match format {
        Some(fmt) if fmt.contains("%d") => fmt.replace("%d", &format!("{}", x.round() as i64)),
        Some(fmt) if fmt.contains("%.2f") || fmt.contains("%f") => {
            fmt.replace("%.2f", &format!("{x:.2}")).replace("%f", &format!("{x:.6}"))
        }
        _ if x.fract() == 0.0 => format!("{}", x as i64),
        _ => format!("{x:.2}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn action(aggregates: &str) -> Action {
        let text = format!(
            "[metadata]\nname = \"t\"\ndescription = \"t\"\nauthor = \"a\"\nlicense = \"x\"\nversion = \"1\"\nurl = \"u\"\ntimeout = 5\n\n\
             [actions.a]\ndescription = \"d\"\n\n[actions.a.output.n]\ndescription = \"n\"\ndisplay_as = \"N\"\n\n\
             [actions.a.output.s]\ndescription = \"s\"\ndisplay_as = \"S\"\n\n{aggregates}"
        );
        fleet_ddl::Ddl::from_toml(&text, "t.toml").unwrap().actions["a"].clone()
    }

    #[test]
    fn summary_counts_ok_replies_most_frequent_first() {
        let act = action("[[actions.a.aggregate]]\nfunction = \"summary\"\noutput = \"s\"\n");
        let ok = Status::Ok;
        let bad = Status::Aborted;
        let (a, b, c, d) = (json!({"s": "uk"}), json!({"s": "us"}), json!({"s": "uk"}), json!({"s": "de"}));
        let rows = vec![(&ok, &a), (&ok, &b), (&ok, &c), (&bad, &d)];
        let aggs = compute(&act, rows);
        assert_eq!(aggs[0].value, AggregateValue::Summary(vec![("uk".into(), 2), ("us".into(), 1)]));
        assert_eq!(aggs[0].line(), "Summary of S: uk = 2, us = 1");
    }

    #[test]
    fn numbers_follow_the_format() {
        let act = action(
            "[[actions.a.aggregate]]\nfunction = \"average\"\noutput = \"n\"\nformat = \"%.2f ms\"\n\n\
             [[actions.a.aggregate]]\nfunction = \"sum\"\noutput = \"n\"\n",
        );
        let ok = Status::Ok;
        let (a, b) = (json!({"n": 1}), json!({"n": 2}));
        let aggs = compute(&act, vec![(&ok, &a), (&ok, &b)]);
        assert_eq!(aggs[0].line(), "Average of N: 1.50 ms");
        assert_eq!(aggs[1].line(), "Sum of N: 3");
        assert_eq!(number(2.4, Some("%d items")), "2 items");
    }
}
