//! How a process listing is shown: ps-style columns (`-o pid,user,rss,cmd`), a sort order
//! (`--sort -rss`) and the process tree of each host (`--tree`, as `ps f`). Pure: the CLI lays the
//! cells out; the console may reuse the order and the tree.

use std::cmp::Ordering;

use super::Proc;
use crate::error::{ClientError, Result};
use crate::format::{human_bytes, started};

/// One column of a listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Host,
    Pid,
    Ppid,
    User,
    State,
    Rss,
    Vsz,
    Cpu,
    Start,
    Name,
    Cmd,
}

/// Every field with the names it is written as, the first being its own (ps's aliases after it).
const NAMES: [(Field, &[&str]); 11] = [
    (Field::Host, &["host", "node"]),
    (Field::Pid, &["pid"]),
    (Field::Ppid, &["ppid"]),
    (Field::User, &["user", "uname"]),
    (Field::State, &["state", "stat", "s"]),
    (Field::Rss, &["rss", "rsz"]),
    (Field::Vsz, &["vsz", "vsize"]),
    (Field::Cpu, &["cpu", "%cpu", "pcpu"]),
    (Field::Start, &["start", "stime", "started"]),
    (Field::Name, &["name", "comm"]),
    (Field::Cmd, &["cmd", "args", "command", "cmdline"]),
];

/// The columns when only `--tree` is asked for: mc-pgrep's, with the command last for the tree.
pub const DEFAULT_FIELDS: [Field; 6] = [Field::Host, Field::User, Field::Pid, Field::Rss, Field::Vsz, Field::Cmd];

impl Field {
    pub fn name(self) -> &'static str {
        NAMES.iter().find(|(f, _)| *f == self).map(|(_, names)| names[0]).unwrap_or("?")
    }

    /// The column heading, as ps writes it.
    pub fn header(self) -> &'static str {
        match self {
            Field::Host => "HOST",
            Field::Pid => "PID",
            Field::Ppid => "PPID",
            Field::User => "USER",
            Field::State => "S",
            Field::Rss => "RSS",
            Field::Vsz => "VSZ",
            Field::Cpu => "%CPU",
            Field::Start => "START",
            Field::Name => "NAME",
            Field::Cmd => "CMD",
        }
    }

    /// Numbers line up on the right.
    pub fn right_aligned(self) -> bool {
        matches!(self, Field::Pid | Field::Ppid | Field::Rss | Field::Vsz | Field::Cpu)
    }

    /// The cell of `p`; `now` (seconds since the epoch) decides how a start time is written.
    pub fn cell(self, p: &Proc, now: u64) -> String {
        match self {
            Field::Host => p.host.clone(),
            Field::Pid => p.pid.to_string(),
            Field::Ppid => p.ppid.to_string(),
            Field::User => p.user.clone(),
            Field::State => p.state.clone(),
            Field::Rss => human_bytes(p.rss),
            Field::Vsz => human_bytes(p.vsz),
            Field::Cpu => format!("{:.1}", p.cpu),
            Field::Start => started(p.started, now),
            Field::Name => p.name.clone(),
            // A kernel thread has no command line; ps shows its name in brackets.
            Field::Cmd if p.cmdline.is_empty() => format!("[{}]", p.name),
            Field::Cmd => p.cmdline.clone(),
        }
    }

    /// `a` against `b` on this field alone.
    fn compare(self, a: &Proc, b: &Proc) -> Ordering {
        match self {
            Field::Host => a.host.cmp(&b.host),
            Field::Pid => a.pid.cmp(&b.pid),
            Field::Ppid => a.ppid.cmp(&b.ppid),
            Field::User => a.user.cmp(&b.user),
            Field::State => a.state.cmp(&b.state),
            Field::Rss => a.rss.cmp(&b.rss),
            Field::Vsz => a.vsz.cmp(&b.vsz),
            Field::Cpu => a.cpu.total_cmp(&b.cpu),
            Field::Start => a.started.cmp(&b.started).then(a.start_time.cmp(&b.start_time)),
            Field::Name => a.name.cmp(&b.name),
            Field::Cmd => Field::Cmd.cell(a, 0).cmp(&Field::Cmd.cell(b, 0)),
        }
    }
}

impl std::str::FromStr for Field {
    type Err = ClientError;
    fn from_str(s: &str) -> Result<Field> {
        let wanted = s.trim().to_ascii_lowercase();
        NAMES.iter().find(|(_, names)| names.contains(&wanted.as_str())).map(|(f, _)| *f).ok_or_else(|| {
            let valid: Vec<&str> = NAMES.iter().map(|(_, names)| names[0]).collect();
            ClientError::input(format!("unknown field '{s}' (valid: {})", valid.join(", ")))
        })
    }
}

/// A ps-style field list, `pid,user,rss,vsz,cpu,start,cmd` (commas or spaces). The host comes
/// first unless the list places it: a fleet listing without hosts could not be told apart.
pub fn parse_fields(list: &str) -> Result<Vec<Field>> {
    let mut fields = Vec::new();
    for name in list.split([',', ' ']).filter(|n| !n.is_empty()) {
        let f: Field = name.parse()?;
        if !fields.contains(&f) {
            fields.push(f);
        }
    }
    if fields.is_empty() {
        return Err(ClientError::input(format!("-o '{list}' names no field")));
    }
    if !fields.contains(&Field::Host) {
        fields.insert(0, Field::Host);
    }
    Ok(fields)
}

/// A sort order: a field, `-` before it for the largest first (`--sort -rss`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortKey {
    pub field: Field,
    pub descending: bool,
}

impl Default for SortKey {
    /// The listing's own order: by host, then pid.
    fn default() -> SortKey {
        SortKey { field: Field::Host, descending: false }
    }
}

impl std::str::FromStr for SortKey {
    type Err = ClientError;
    fn from_str(s: &str) -> Result<SortKey> {
        let t = s.trim();
        let (descending, name) = match t.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, t.strip_prefix('+').unwrap_or(t)),
        };
        Ok(SortKey { field: name.parse()?, descending })
    }
}

impl SortKey {
    /// `a` against `b`: the field in the asked direction, then host and pid so equal rows keep
    /// the listing's order.
    pub fn compare(&self, a: &Proc, b: &Proc) -> Ordering {
        let by_field = self.field.compare(a, b);
        let by_field = if self.descending { by_field.reverse() } else { by_field };
        by_field.then_with(|| a.host.cmp(&b.host)).then(a.pid.cmp(&b.pid))
    }
}

/// Sorts the whole listing (across hosts) by `key`.
pub fn sort(procs: &mut [Proc], key: SortKey) {
    procs.sort_by(|a, b| key.compare(a, b));
}

/// The process tree of each host, hosts in name order: every process after its parent, one level
/// deeper, siblings in `key`'s order. A process whose parent is not in the listing (it did not
/// match, or it is init) starts a tree of its own at depth 0.
pub fn tree(procs: &[Proc], key: SortKey) -> Vec<(usize, &Proc)> {
    let mut order: Vec<u32> = (0..procs.len() as u32).collect();
    order.sort_by(|a, b| key.compare(&procs[*a as usize], &procs[*b as usize]));
    crate::proctree::forest(procs, &order).into_iter().map(|row| (row.depth, &procs[row.index as usize])).collect()
}

/// The tree mark `ps f` puts before a command at `depth`: ` \_ `, indented four cells a level.
pub fn tree_mark(depth: usize) -> String {
    if depth == 0 { String::new() } else { format!("{} \\_ ", "    ".repeat(depth - 1)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proc_(host: &str, pid: u32, ppid: u32, rss: u64, cmd: &str) -> Proc {
        Proc {
            host: host.into(),
            pid,
            ppid,
            user: "root".into(),
            state: "S".into(),
            rss,
            vsz: rss * 2,
            cpu: 0.0,
            start_time: u64::from(pid) * 10,
            started: 0,
            threads: 1,
            name: cmd.split(' ').next().unwrap_or("").into(),
            cmdline: cmd.into(),
            zombie: false,
            parent_pid: None,
            parent_start_time: None,
            parent_cmdline: None,
        }
    }

    #[test]
    fn fields_parse_with_ps_aliases_and_the_host_first() {
        let f = parse_fields("pid,user,rss,vsz,%cpu,stime,args").unwrap();
        use Field::*;
        assert_eq!(f, [Host, Pid, User, Rss, Vsz, Cpu, Start, Cmd]);
        assert_eq!(parse_fields("pid host comm").unwrap(), [Pid, Host, Name]);
        assert_eq!(parse_fields("pid,pid").unwrap(), [Host, Pid]);
    }

    #[test]
    fn an_unknown_field_is_refused_with_the_valid_ones() {
        let e = parse_fields("pid,bogus").unwrap_err().to_string();
        assert!(e.contains("unknown field 'bogus' (valid: host, pid, ppid, user, state, rss, vsz, cpu, start, name, cmd)"), "{e}");
        assert!(parse_fields(" , ").unwrap_err().to_string().contains("names no field"));
    }

    #[test]
    fn sort_keys_take_a_minus_for_the_largest_first() {
        let mut procs = vec![proc_("b", 1, 0, 300, "x"), proc_("a", 2, 0, 100, "y"), proc_("a", 3, 0, 300, "z")];
        sort(&mut procs, "-rss".parse().unwrap());
        let order: Vec<(&str, u32)> = procs.iter().map(|p| (p.host.as_str(), p.pid)).collect();
        assert_eq!(order, [("a", 3), ("b", 1), ("a", 2)]);
        sort(&mut procs, "rss".parse().unwrap());
        assert_eq!(procs[0].pid, 2);
        assert!("-nope".parse::<SortKey>().unwrap_err().to_string().contains("unknown field 'nope'"));
    }

    #[test]
    fn the_tree_puts_children_under_their_parents_per_host() {
        let procs = vec![
            proc_("web-01", 1, 0, 10, "/sbin/init"),
            proc_("web-01", 50, 1, 10, "sshd"),
            proc_("web-01", 70, 50, 10, "sshd: admin"),
            proc_("web-01", 71, 70, 10, "-bash"),
            proc_("web-01", 60, 1, 10, "cron"),
            proc_("web-01", 900, 800, 10, "orphan of an unlisted parent"),
            proc_("db-01", 5, 1, 10, "postgres"),
        ];
        let rows: Vec<(usize, &str, u32)> = tree(&procs, SortKey::default()).iter().map(|(d, p)| (*d, p.host.as_str(), p.pid)).collect();
        assert_eq!(
            rows,
            [
                (0, "db-01", 5),
                (0, "web-01", 1),
                (1, "web-01", 50),
                (2, "web-01", 70),
                (3, "web-01", 71),
                (1, "web-01", 60),
                (0, "web-01", 900)
            ]
        );
        // Siblings follow the sort: the larger process first.
        let mut big = procs.clone();
        big[4].rss = 99;
        let rows: Vec<u32> = tree(&big, "-rss".parse().unwrap()).iter().map(|(_, p)| p.pid).collect();
        assert_eq!(rows, [5, 1, 60, 50, 70, 71, 900]);
        assert_eq!(tree_mark(0), "");
        assert_eq!(tree_mark(1), " \\_ ");
        assert_eq!(tree_mark(2), "     \\_ ");
    }

    #[test]
    fn a_pid_loop_lists_every_process_once() {
        let procs = vec![proc_("h", 10, 11, 1, "a"), proc_("h", 11, 10, 1, "b")];
        let rows: Vec<u32> = tree(&procs, SortKey::default()).iter().map(|(_, p)| p.pid).collect();
        assert_eq!(rows, [10, 11]);
    }
}
