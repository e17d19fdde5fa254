//! Compact node sets, as clush and dshbak print them: `web-01 … web-07, web-09` folds to
//! `web-[01-07,09]`. Names are grouped by what surrounds their last run of digits, and each
//! group's numbers are folded into ranges that keep their zero padding.

use std::collections::BTreeMap;

/// One name split around its last run of digits: `web-07.lan` is (`web-`, `07`, `.lan`).
fn split(name: &str) -> Option<(&str, &str, &str)> {
    let end = name.rfind(|c: char| c.is_ascii_digit())? + 1;
    let start = name[..end].rfind(|c: char| !c.is_ascii_digit()).map_or(0, |i| i + 1);
    Some((&name[..start], &name[start..end], &name[end..]))
}

/// Folds names into a compact set: `web-[01-07,09],db-1,mail`. Each name appears once; the groups
/// are in name order. A range only joins numbers written with the same width (`web-9` and
/// `web-10` join, `web-09` and `web-10` too, `web-1` and `web-01` do not).
pub fn fold<S: AsRef<str>>(names: &[S]) -> String {
    // (prefix, suffix) -> (number, digits as written), and names without digits as they are.
    let mut groups: BTreeMap<(&str, &str), Vec<(u128, &str)>> = BTreeMap::new();
    let mut plain: Vec<&str> = Vec::new();
    for name in names {
        let name = name.as_ref();
        match split(name).and_then(|(pre, digits, suf)| Some((pre, digits.parse::<u128>().ok()?, digits, suf))) {
            Some((pre, n, digits, suf)) => groups.entry((pre, suf)).or_default().push((n, digits)),
            None => plain.push(name),
        }
    }
    let mut parts: Vec<String> = plain.into_iter().map(str::to_string).collect();
    for ((pre, suf), mut numbers) in groups {
        numbers.sort();
        numbers.dedup();
        let ranges = ranges(&numbers);
        if numbers.len() == 1 {
            parts.push(format!("{pre}{}{suf}", numbers[0].1));
        } else {
            parts.push(format!("{pre}[{}]{suf}", ranges.join(",")));
        }
    }
    parts.sort();
    parts.dedup();
    parts.join(",")
}

/// `01-07`, `09`: runs of consecutive numbers written with the same width.
fn ranges(numbers: &[(u128, &str)]) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < numbers.len() {
        let (start, first) = numbers[i];
        let width = first.len();
        let mut j = i;
        while j + 1 < numbers.len() && numbers[j + 1].0 == numbers[j].0 + 1 && written_as(numbers[j + 1].0, width) == numbers[j + 1].1 {
            j += 1;
        }
        let (end, last) = numbers[j];
        out.push(if end == start { first.to_string() } else { format!("{first}-{last}") });
        i = j + 1;
    }
    out
}

/// `n` zero-padded to `width`, as a range starting with a number of that width writes it.
fn written_as(n: u128, width: usize) -> String {
    format!("{n:0width$}")
}

#[cfg(test)]
mod tests {
    use super::fold;

    #[test]
    fn folds_ranges_with_padding() {
        let names = ["web-03", "web-01", "web-02", "web-04", "web-05", "web-06", "web-07", "web-09"];
        assert_eq!(fold(&names), "web-[01-07,09]");
        assert_eq!(fold(&["web-9", "web-10", "web-11"]), "web-[9-11]");
        assert_eq!(fold(&["web-09", "web-10"]), "web-[09-10]");
        assert_eq!(fold(&["web-1", "web-01"]), "web-[01,1]");
    }

    #[test]
    fn groups_by_prefix_and_suffix() {
        let names = ["db-2.lan", "db-1.lan", "mail", "web-01", "db-3.dmz", "mail"];
        assert_eq!(fold(&names), "db-3.dmz,db-[1-2].lan,mail,web-01");
        assert_eq!(fold(&["rack1-node3", "rack1-node4", "rack2-node3"]), "rack1-node[3-4],rack2-node3");
        assert_eq!(fold::<&str>(&[]), "");
        assert_eq!(fold(&["alpha"]), "alpha");
    }

    #[test]
    fn numbers_too_long_for_a_number_stay_as_written() {
        let long = "n-123456789012345678901234567890123456789012";
        assert_eq!(fold(&[long]), long);
    }
}
