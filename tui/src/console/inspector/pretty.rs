//! Reply data as an admin reads it: the unit of a value (from the DDL's `display_as` and
//! description, else from the key's name and the value's size), and data pretty-printed as
//! indented `label: value` lines. The formatting itself is the client core's
//! (`fleet_client::format`), so a size or a date reads as in the CLI.

use fleet_client::format::{human_bytes, thousands, utc_datetime, value_text};
use serde_json::Value;

use super::{InspectLine, LineKind};

/// What a number stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Plain,
    Bytes,
    /// Seconds since the epoch.
    EpochSecs,
    /// Milliseconds since the epoch.
    EpochMs,
}

/// Epoch seconds between 2001 and 2286, and milliseconds over the same years: a number outside
/// them is not a date, whatever its key says.
const SECS: std::ops::Range<u64> = 1_000_000_000..10_000_000_000;
const MILLIS: std::ops::Range<u64> = 1_000_000_000_000..10_000_000_000_000;

impl Unit {
    /// The unit a DDL output declares in words: `RSS (bytes)`, `... in bytes`, `(ms since the
    /// epoch)`, `seconds since the epoch`.
    pub fn of_output(o: &fleet_ddl::Output) -> Unit {
        let text = format!("{} {}", o.display_as, o.description).to_ascii_lowercase();
        if text.contains("ms since the epoch") || text.contains("milliseconds since the epoch") {
            Unit::EpochMs
        } else if text.contains("s since the epoch") || text.contains("seconds since the epoch") {
            Unit::EpochSecs
        } else if text.contains("in bytes") || text.contains("(bytes)") {
            Unit::Bytes
        } else {
            Unit::Plain
        }
    }

    /// The unit of a value no DDL describes (inside an array or a hash), guessed from its key:
    /// `rss`, `vsz`, `bytes`, `*_bytes` are sizes; `started`, `timestamp`, `*_at` and the like
    /// are dates when the number is one (seconds or milliseconds by its size). `start_time` is
    /// clock ticks since boot, not a date.
    pub fn guess(key: &str, v: &Value) -> Unit {
        let Some(n) = v.as_u64() else { return Unit::Plain };
        let key = key.to_ascii_lowercase();
        if matches!(key.as_str(), "rss" | "vsz" | "bytes" | "size" | "memory") || key.ends_with("_bytes") {
            return Unit::Bytes;
        }
        let timeish = matches!(key.as_str(), "started" | "ended" | "timestamp" | "time" | "created" | "modified" | "since")
            || key.ends_with("_at")
            || key.ends_with("_ms")
            || key.starts_with("next_")
            || key.starts_with("last_");
        match (timeish && key != "start_time", n) {
            (true, n) if SECS.contains(&n) => Unit::EpochSecs,
            (true, n) if MILLIS.contains(&n) => Unit::EpochMs,
            _ => Unit::Plain,
        }
    }

    /// Short, for a table cell: `4.2 MiB`, `2026-12-07 04:51:10 UTC`.
    pub fn short(self, v: &Value) -> String {
        match (self, v.as_u64()) {
            (Unit::Bytes, Some(n)) => human_bytes(n),
            (Unit::EpochSecs, Some(n)) if n > 0 => utc_datetime(n),
            (Unit::EpochMs, Some(n)) if n > 0 => utc_datetime(n / 1000),
            _ => value_text(v),
        }
    }

    /// In full, for the inspector: the readable form with the raw number after it.
    pub fn full(self, v: &Value) -> String {
        match (self, v.as_u64()) {
            (Unit::Bytes, Some(n)) if n >= 1024 => format!("{} ({} bytes)", human_bytes(n), thousands(n)),
            (Unit::EpochSecs | Unit::EpochMs, Some(n)) if n > 0 => format!("{} ({n})", self.short(v)),
            _ => value_text(v),
        }
    }
}

/// Arrays of plain values up to this many characters stay on one line.
const INLINE_LIST: usize = 72;

/// `v` under `label` as indented lines: a hash or array opens a block, a scalar is one line
/// (several when the text has newlines).
pub fn value_lines(out: &mut Vec<InspectLine>, indent: usize, label: &str, v: &Value, unit: Unit) {
    match v {
        Value::Object(m) if m.is_empty() => out.push(InspectLine::field(indent, label, "{}")),
        Value::Object(m) => {
            out.push(InspectLine::field(indent, label, ""));
            for (k, item) in m {
                value_lines(out, indent + 1, k, item, Unit::guess(k, item));
            }
        }
        Value::Array(a) if a.is_empty() => out.push(InspectLine::field(indent, label, "[]")),
        Value::Array(a) if a.iter().all(|x| !x.is_object() && !x.is_array()) => {
            let joined = a.iter().map(|x| unit.short(x)).collect::<Vec<_>>().join(", ");
            if joined.chars().count() <= INLINE_LIST {
                out.push(InspectLine::field(indent, label, &joined));
            } else {
                out.push(InspectLine::field(indent, label, &format!("{} items", a.len())));
                for item in a {
                    out.push(InspectLine::field(indent + 1, "-", &unit.full(item)));
                }
            }
        }
        Value::Array(a) => {
            out.push(InspectLine::field(indent, label, &format!("{} items", a.len())));
            for (i, item) in a.iter().enumerate() {
                value_lines(out, indent + 1, &format!("[{i}]"), item, unit);
            }
        }
        scalar => text_lines(out, indent, label, &unit.full(scalar), LineKind::Field),
    }
}

/// A text under `label`, one line per line of the text (a message or a file can be several).
pub fn text_lines(out: &mut Vec<InspectLine>, indent: usize, label: &str, text: &str, kind: LineKind) {
    let mut lines = text.lines();
    let first = lines.next().unwrap_or("");
    out.push(InspectLine { indent, label: label.to_string(), value: first.to_string(), kind });
    for more in lines {
        out.push(InspectLine { indent: indent + 1, label: String::new(), value: more.to_string(), kind });
    }
}

/// A reply's data: each output the DDL declares under its `display_as` with its unit, then
/// anything else the reply carried under its own key.
pub fn data_lines(out: &mut Vec<InspectLine>, indent: usize, data: &Value, act: Option<&fleet_ddl::Action>) {
    let Value::Object(m) = data else {
        if !data.is_null() {
            value_lines(out, indent, "data", data, Unit::Plain);
        }
        return;
    };
    for (key, v) in m {
        match act.and_then(|a| a.output.get(key)) {
            Some(o) if !o.display_as.is_empty() => value_lines(out, indent, &format!("{} ({key})", o.display_as), v, Unit::of_output(o)),
            _ => value_lines(out, indent, key, v, Unit::guess(key, v)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn output(display_as: &str, description: &str) -> fleet_ddl::Output {
        fleet_ddl::Output { description: description.into(), display_as: display_as.into(), default: None, kind: None }
    }

    #[test]
    fn units_come_from_the_ddl_words() {
        assert_eq!(Unit::of_output(&output("RSS (bytes)", "Resident memory")), Unit::Bytes);
        assert_eq!(Unit::of_output(&output("RSS", "Resident memory, in bytes")), Unit::Bytes);
        assert_eq!(Unit::of_output(&output("Time", "The local timestamp (ms since the epoch)")), Unit::EpochMs);
        assert_eq!(Unit::of_output(&output("Started", "in seconds since the epoch")), Unit::EpochSecs);
        assert_eq!(Unit::of_output(&output("Start time", "Start time of the daemon (s since the epoch)")), Unit::EpochSecs);
        assert_eq!(Unit::of_output(&output("Message", "The message")), Unit::Plain);
    }

    #[test]
    fn units_are_guessed_from_keys_and_sizes() {
        assert_eq!(Unit::guess("rss", &json!(4_404_019)), Unit::Bytes);
        assert_eq!(Unit::guess("started", &json!(1_764_424_980u64)), Unit::EpochSecs);
        assert_eq!(Unit::guess("next_run", &json!(1_764_424_980_000u64)), Unit::EpochMs);
        assert_eq!(Unit::guess("start_time", &json!(1_764_424_980u64)), Unit::Plain, "clock ticks");
        assert_eq!(Unit::guess("started", &json!(12)), Unit::Plain, "not a date");
        assert_eq!(Unit::guess("rss", &json!("x")), Unit::Plain);
    }

    #[test]
    fn values_read_short_in_cells_and_in_full_in_the_inspector() {
        assert_eq!(Unit::Bytes.short(&json!(1536)), "1.5 KiB");
        assert_eq!(Unit::Bytes.full(&json!(4_404_019)), "4.2 MiB (4,404,019 bytes)");
        assert_eq!(Unit::Bytes.full(&json!(512)), "512");
        assert_eq!(Unit::EpochMs.short(&json!(1_764_424_980_000u64)), "2025-11-29 14:03:00 UTC");
        assert_eq!(Unit::EpochSecs.full(&json!(1_764_424_980u64)), "2025-11-29 14:03:00 UTC (1764424980)");
        assert_eq!(Unit::EpochSecs.short(&json!("soon")), "soon");
    }

    #[test]
    fn data_is_pretty_printed_with_labels_and_units() {
        let act: fleet_ddl::Action = serde_json::from_value(json!({
            "description": "lists",
            "output": {"rss_total": {"description": "Resident memory", "display_as": "RSS (bytes)"}},
        }))
        .unwrap();
        let data = json!({
            "rss_total": 2048,
            "processes": [{"pid": 7, "rss": 1_048_576, "started": 1_764_424_980u64, "tags": ["a", "b"]}],
            "note": "two\nlines",
        });
        let mut out = Vec::new();
        data_lines(&mut out, 0, &data, Some(&act));
        let text: Vec<String> = out.iter().map(InspectLine::text).collect();
        assert_eq!(
            text,
            [
                "note: two",
                "  lines",
                "processes: 1 items",
                "  [0]:",
                "    pid: 7",
                "    rss: 1.0 MiB (1,048,576 bytes)",
                "    started: 2025-11-29 14:03:00 UTC (1764424980)",
                "    tags: a, b",
                "RSS (bytes) (rss_total): 2.0 KiB (2,048 bytes)",
            ]
        );
    }
}
