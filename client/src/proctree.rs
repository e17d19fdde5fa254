//! Processes as trees, one forest per host (htop's tree view, `pgrep --tree`): each process under
//! its parent on the same host, siblings in the order the caller sorted them, and the prefix
//! (`├─ `, `└─ `, `│  `) that draws the branches. A process whose parent is not in the listing
//! (a pattern matched the child only) is a root.

use std::collections::HashMap;

use crate::process::Proc;

/// One row of the tree view: which process (an index into the listing) and its branch prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeRow {
    pub index: u32,
    /// 0 for a root.
    pub depth: usize,
    pub prefix: String,
}

/// The rows of `procs` as a forest per host, hosts in name order. `order` is the display order
/// the caller sorted (by CPU, memory, ...): roots and siblings keep it.
pub fn forest(procs: &[Proc], order: &[u32]) -> Vec<TreeRow> {
    let by_pid: HashMap<(&str, u32), u32> = order.iter().map(|&i| ((procs[i as usize].host.as_str(), procs[i as usize].pid), i)).collect();
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    let mut roots: Vec<u32> = Vec::new();
    for &i in order {
        let p = &procs[i as usize];
        match by_pid.get(&(p.host.as_str(), p.ppid)) {
            Some(&parent) if p.ppid != p.pid => children.entry(parent).or_default().push(i),
            _ => roots.push(i),
        }
    }
    // Per host: a stable sort keeps the caller's order among each host's roots.
    roots.sort_by(|a, b| procs[*a as usize].host.cmp(&procs[*b as usize].host));
    let mut out = Vec::with_capacity(order.len());
    let mut seen = vec![false; procs.len()];
    // Depth first; each entry is (process, depth, its own prefix, the prefix its children continue).
    let mut stack: Vec<(u32, usize, String, String)> = roots.into_iter().rev().map(|r| (r, 0, String::new(), String::new())).collect();
    while let Some((i, depth, prefix, cont)) = stack.pop() {
        if std::mem::replace(&mut seen[i as usize], true) {
            continue;
        }
        if let Some(kids) = children.get(&i) {
            for (n, &kid) in kids.iter().enumerate().rev() {
                let last = n + 1 == kids.len();
                let branch = if last { "└─ " } else { "├─ " };
                let next = if last { "   " } else { "│  " };
                stack.push((kid, depth + 1, format!("{cont}{branch}"), format!("{cont}{next}")));
            }
        }
        out.push(TreeRow { index: i, depth, prefix });
    }
    // A parent cycle (a pid reused by a child's child) leaves rows no root reaches: listed last.
    out.extend(order.iter().filter(|&&i| !seen[i as usize]).map(|&i| TreeRow { index: i, depth: 0, prefix: String::new() }));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(host: &str, pid: u32, ppid: u32) -> Proc {
        serde_json::from_value(serde_json::json!({"host": host, "pid": pid, "ppid": ppid, "start_time": 1})).unwrap()
    }

    fn drawn(procs: &[Proc], order: &[u32]) -> Vec<String> {
        forest(procs, order)
            .into_iter()
            .map(|r| format!("{} {}{}", procs[r.index as usize].host, r.prefix, procs[r.index as usize].pid))
            .collect()
    }

    #[test]
    fn children_hang_under_their_parent_per_host() {
        let procs = vec![p("b", 1, 0), p("a", 1, 0), p("a", 10, 1), p("a", 11, 1), p("a", 12, 10), p("b", 5, 1), p("a", 99, 42)];
        let order: Vec<u32> = (0..procs.len() as u32).collect();
        assert_eq!(drawn(&procs, &order), ["a 1", "a ├─ 10", "a │  └─ 12", "a └─ 11", "a 99", "b 1", "b └─ 5"]);
    }

    #[test]
    fn siblings_keep_the_callers_order_and_cycles_are_not_lost() {
        let procs = vec![p("a", 1, 0), p("a", 10, 1), p("a", 11, 1)];
        assert_eq!(drawn(&procs, &[2, 1, 0]), ["a 1", "a ├─ 11", "a └─ 10"]);
        let cycle = vec![p("a", 2, 3), p("a", 3, 2)];
        assert_eq!(forest(&cycle, &[0, 1]).len(), 2);
    }
}
