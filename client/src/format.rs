//! Values as an admin reads them: reply values, byte counts, dates and durations. Every face
//! formats through here, so a size or a date reads the same in the CLI and the console.

use serde_json::Value;

/// A value as a person reads it: strings without quotes, null as nothing, everything else as JSON.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A value on one line: lists as `a, b, c`, everything else as [`value_text`].
pub fn compact(v: &Value) -> String {
    match v {
        Value::Array(items) => items.iter().map(value_text).collect::<Vec<_>>().join(", "),
        other => value_text(other),
    }
}

/// Nested facts as `(dotted.path, value)` pairs; lists are joined with commas.
pub fn flatten_facts(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten_facts(&key, v, out);
            }
        }
        Value::Array(_) => out.push((prefix.to_string(), compact(v))),
        other => out.push((prefix.to_string(), value_text(other))),
    }
}

/// Bytes with a binary unit: `512 B`, `1.5 KiB`, `3.0 GiB`.
pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{b} B") } else { format!("{v:.1} {}", UNITS[u]) }
}

/// Bytes in at most 5 cells, for table columns: `812K`, `4.2M`, `1023M`, `1.5G`.
pub fn compact_bytes(b: u64) -> String {
    const UNITS: [&str; 6] = ["B", "K", "M", "G", "T", "P"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    match u {
        0 => format!("{b}B"),
        _ if v < 9.95 => format!("{v:.1}{}", UNITS[u]),
        _ => format!("{v:.0}{}", UNITS[u]),
    }
}

/// MiB as Xen reports memory: `512 MiB`, `20.0 GiB`.
pub fn mib(m: u64) -> String {
    if m >= 10 * 1024 { format!("{:.1} GiB", m as f64 / 1024.0) } else { format!("{m} MiB") }
}

/// `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

const DAY: u64 = 86_400;

pub use fleet_protocol::civil_from_days as civil;

/// `hh:mm:ss` of a second count within its day.
fn clock(secs: u64) -> String {
    let s = secs % DAY;
    format!("{:02}:{:02}:{:02}", s / 3600, s % 3600 / 60, s % 60)
}

/// `2026-11-29 14:03:00 UTC` from seconds since the epoch.
pub fn utc_datetime(secs: u64) -> String {
    let (year, month, day) = civil((secs / DAY) as i64);
    format!("{year:04}-{month:02}-{day:02} {} UTC", clock(secs))
}

/// `hh:mm:ss` (UTC) of a time in milliseconds since the epoch.
pub fn utc_time_ms(ms: u64) -> String {
    clock(ms / 1000)
}

/// `3d 04:05:06` from a number of seconds.
pub fn uptime(secs: u64) -> String {
    let d = secs / DAY;
    if d > 0 { format!("{d}d {}", clock(secs)) } else { clock(secs) }
}

/// When something started, as `ps` writes STIME, in UTC: the time of day if it started on the
/// day of `now`, else the month and day, else the year. `?` for an unknown (0) time.
pub fn started(started: u64, now: u64) -> String {
    if started == 0 {
        return "?".into();
    }
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let day = (started / DAY) as i64;
    if day == (now / DAY) as i64 {
        return clock(started);
    }
    let (year, month, mday) = civil(day);
    let (this_year, _, _) = civil((now / DAY) as i64);
    if year == this_year { format!("{} {:02}", MONTHS[month as usize - 1], mday) } else { year.to_string() }
}

/// The last non-empty line of a command's output.
pub fn last_line(text: &str) -> &str {
    text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sizes() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
        assert_eq!(compact_bytes(0), "0B");
        assert_eq!(compact_bytes(1023), "1023B");
        assert_eq!(compact_bytes(4_404_019), "4.2M");
        assert_eq!(compact_bytes(1023 * 1024 * 1024), "1023M");
        assert_eq!(compact_bytes(1536 * 1024 * 1024), "1.5G");
        assert_eq!(compact_bytes(10 * 1024 * 1024 - 1), "10M");
        assert_eq!(mib(512), "512 MiB");
        assert_eq!(mib(20 * 1024), "20.0 GiB");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(999), "999");
    }

    #[test]
    fn dates() {
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(19_782), (2024, 2, 29));
        assert_eq!(utc_datetime(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_datetime(1_764_424_980), "2025-11-29 14:03:00 UTC");
        assert_eq!(uptime(3 * 86_400 + 4 * 3600 + 5 * 60 + 6), "3d 04:05:06");
        assert_eq!(uptime(59), "00:00:59");
        assert_eq!(utc_time_ms(45_296_000), "12:34:56");
        let now = 20_000 * 86_400 + 45_296;
        assert_eq!(started(20_000 * 86_400 + 3_723, now), "01:02:03");
        assert_eq!(started(19_990 * 86_400, now), "Sep 24");
        assert_eq!(started(19_000 * 86_400, now), "2022");
        assert_eq!(started(0, now), "?");
    }

    #[test]
    fn values() {
        assert_eq!(value_text(&json!("a")), "a");
        assert_eq!(value_text(&json!(null)), "");
        assert_eq!(value_text(&json!(3)), "3");
        assert_eq!(compact(&json!(["a", 1])), "a, 1");
        let mut out = Vec::new();
        flatten_facts("", &json!({"os": {"family": "Debian"}, "ips": ["a", "b"]}), &mut out);
        out.sort();
        assert_eq!(out, [("ips".to_string(), "a, b".to_string()), ("os.family".to_string(), "Debian".to_string())]);
    }

    #[test]
    fn last_line_skips_blank() {
        assert_eq!(last_line("a\nMigration successful.\n\n"), "Migration successful.");
    }
}
