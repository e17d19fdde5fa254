//! `fleet pgrep`: the matching processes of the fleet in mc-pgrep's layout, with its totals; or
//! in the columns `-o` names, sorted by `--sort`, as each host's tree with `--tree`.

use std::fmt::Write as _;

use anyhow::Result;
use fleet_client::format::human_bytes;
use fleet_client::process::view::{self, DEFAULT_FIELDS, Field, SortKey};
use fleet_client::process::{self, ListQuery, Listing, Proc};
use serde_json::json;

use super::args::{PgrepViewArgs, ResultArgs};
use super::output::Bar;
use super::{Ctx, FilterArgs, OutputArgs};

/// Lists with the progress bar when asked for. The listing keeps the rows of the hosts whose
/// replies `--filter-replies` matches, and the identity files are written. Returns the round (with
/// only those replies), its exit code, how many replies were left out, and the listing.
pub async fn list(
    ctx: &Ctx,
    f: &FilterArgs,
    query: &ListQuery,
    bar: bool,
    results: &ResultArgs,
) -> Result<(fleet_client::Outcome, i32, usize, Listing)> {
    let keep = results.reply_filter()?;
    let scope = f.scope();
    let mut client = ctx.client().await?;
    let bar = Bar::new(bar).staged(scope.rollout.clone());
    let r = process::list(&mut client, &ctx.settings, &scope, query, |p| bar.on(p)).await;
    bar.finish();
    let (mut o, mut listing) = r?;
    let code = o.exit_code();
    let hidden = results.apply(keep.as_ref(), &mut o)?;
    if hidden > 0 {
        let kept: std::collections::BTreeSet<&str> = o.replies.iter().map(|r| r.reply.sender.as_str()).collect();
        listing.procs.retain(|p| kept.contains(p.host.as_str()));
        listing.failed.retain(|(host, _)| kept.contains(host.as_str()));
    }
    Ok((o, code, hidden, listing))
}

/// The layout flags checked before anything is sent: columns (when `-o` or `--tree` asks for
/// them) and the sort order.
fn layout(v: &PgrepViewArgs) -> Result<(Option<Vec<Field>>, Option<SortKey>)> {
    let fields = match (&v.fields, v.tree) {
        (Some(list), _) => Some(view::parse_fields(list)?),
        (None, true) => Some(DEFAULT_FIELDS.to_vec()),
        (None, false) => None,
    };
    let sort = v.sort.as_deref().map(str::parse::<SortKey>).transpose()?;
    Ok((fields, sort))
}

#[allow(clippy::too_many_arguments)]
pub async fn run(
    ctx: &Ctx,
    query: &ListQuery,
    targets: bool,
    v: &PgrepViewArgs,
    f: &FilterArgs,
    out: &OutputArgs,
    results: &ResultArgs,
) -> Result<i32> {
    let (fields, sort) = layout(v)?;
    let (o, code, hidden, mut listing) = list(ctx, f, query, !out.json && !out.jsonl && !targets, results).await?;
    if let Some(key) = sort {
        view::sort(&mut listing.procs, key);
    }
    let procs = &listing.procs;
    if targets {
        for p in procs.iter().filter(|p| !p.zombie) {
            println!("{}:{}@{}", p.host, p.pid, p.start_time);
        }
    } else if out.json {
        let failed: Vec<_> = o
            .replies
            .iter()
            .filter(|r| !r.reply.status.is_ok())
            .map(|r| json!({"host": r.reply.sender, "status": r.reply.status, "status_msg": r.reply.status_msg}))
            .collect();
        let doc = json!({
            "processes": procs, "hosts_answered": listing.hosts_answered, "hosts_asked": listing.hosts_asked,
            "no_reply": listing.no_reply, "failed": failed, "rollout": o.rollout,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else if out.jsonl {
        for p in procs {
            println!("{}", serde_json::to_string(p)?);
        }
    } else {
        match &fields {
            Some(fields) => {
                let now = fleet_protocol::now_ms() / 1000;
                print!("{}", columns_text(procs, fields, v.tree.then(|| sort.unwrap_or_default()), now));
            }
            None => print_table(procs),
        }
        print!("{}", totals_text(&listing));
        if query.zombies && !procs.is_empty() {
            println!("\n   Zombies are reaped by their parents: fleet pkill -z --parents -s CHLD {:?} (then -s TERM)", query.pattern);
        }
        super::results::print_rollout(&o, hidden);
    }
    Ok(code)
}

pub fn print_table(procs: &[Proc]) {
    let hw = procs.iter().map(|p| p.host.len()).max().unwrap_or(4).max(4);
    let uw = procs.iter().map(|p| p.user.len()).max().unwrap_or(4).clamp(4, 16);
    for p in procs {
        println!("{:<hw$} {:<uw$} {:>7} {:>10} {:>10}  {}", p.host, p.user, p.pid, human_bytes(p.rss), human_bytes(p.vsz), p.cmdline);
        if p.zombie {
            println!(
                "{:<hw$} {:<uw$} {:>7}   zombie: reaped only by its parent {}@{} {}",
                "",
                "",
                "",
                p.parent_pid.unwrap_or(0),
                p.parent_start_time.unwrap_or(0),
                p.parent_cmdline.clone().unwrap_or_default()
            );
        }
    }
}

/// The listing in `fields` under a header line, each column as wide as its widest cell; the
/// last column is not padded. With `tree` (the siblings' order), each host's processes follow
/// their parents and the command (else the name, else the last column) carries `ps f`'s marks.
pub fn columns_text(procs: &[Proc], fields: &[Field], tree: Option<SortKey>, now: u64) -> String {
    let rows: Vec<(usize, &Proc)> = match tree {
        Some(key) => view::tree(procs, key),
        None => procs.iter().map(|p| (0, p)).collect(),
    };
    let marked = fields.iter().position(|f| *f == Field::Cmd).or_else(|| fields.iter().position(|f| *f == Field::Name));
    let marked = marked.unwrap_or(fields.len() - 1);
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|(depth, p)| {
            let mut row: Vec<String> = fields.iter().map(|f| f.cell(p, now)).collect();
            row[marked].insert_str(0, &view::tree_mark(*depth));
            row
        })
        .collect();
    let widths: Vec<usize> = fields
        .iter()
        .enumerate()
        .map(|(i, f)| cells.iter().map(|r| r[i].chars().count()).max().unwrap_or(0).max(f.header().len()))
        .collect();
    let line = |row: Vec<&str>| {
        let mut l = String::new();
        for (i, (cell, f)) in row.iter().zip(fields).enumerate() {
            if i > 0 {
                l.push(' ');
            }
            let w = widths[i];
            match (f.right_aligned(), i + 1 == fields.len()) {
                (true, _) => l.push_str(&format!("{cell:>w$}")),
                (false, false) => l.push_str(&format!("{cell:<w$}")),
                (false, true) => l.push_str(cell),
            }
        }
        l.truncate(l.trim_end().len());
        l + "\n"
    };
    let mut t = line(fields.iter().map(|f| f.header()).collect());
    for row in &cells {
        t += &line(row.iter().map(String::as_str).collect());
    }
    t
}

/// mc-pgrep's totals block, plus how many hosts answered and which failed.
pub fn totals_text(listing: &Listing) -> String {
    let procs = &listing.procs;
    let hosts: std::collections::BTreeSet<&str> = procs.iter().map(|p| p.host.as_str()).collect();
    let rss: u64 = procs.iter().map(|p| p.rss).sum();
    let vsz: u64 = procs.iter().map(|p| p.vsz).sum();
    let mut t = String::new();
    let _ = writeln!(t, "\n   ---- process list stats ----");
    let _ = writeln!(t, "        Matched hosts: {}", hosts.len());
    let _ = writeln!(t, "    Matched processes: {}", procs.len());
    let _ = writeln!(t, "        Resident Size: {}", human_bytes(rss));
    let _ = writeln!(t, "         Virtual Size: {}", human_bytes(vsz));
    let _ = writeln!(t, "       Hosts answered: {} of {}", listing.hosts_answered, listing.hosts_asked);
    for (host, why) in &listing.failed {
        let _ = writeln!(t, "   {host}: {why}");
    }
    if !listing.no_reply.is_empty() {
        let _ = writeln!(t, "       No reply from: {}", listing.no_reply.join(", "));
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2023-11-14 22:13:20 UTC.
    const NOW: u64 = 1_700_000_000;

    fn proc_(host: &str, pid: u32, ppid: u32, user: &str, rss_kib: u64, cpu: f32, cmd: &str) -> Proc {
        Proc {
            host: host.into(),
            pid,
            ppid,
            user: user.into(),
            state: "S".into(),
            rss: rss_kib * 1024,
            vsz: rss_kib * 4096,
            cpu,
            start_time: u64::from(pid),
            started: NOW - 3600,
            threads: 1,
            name: cmd.split([' ', ':']).next().unwrap_or("").into(),
            cmdline: cmd.into(),
            zombie: false,
            parent_pid: None,
            parent_start_time: None,
            parent_cmdline: None,
        }
    }

    fn fleet_of_two() -> Vec<Proc> {
        vec![
            proc_("web-01", 1, 0, "root", 12_000, 0.0, "/sbin/init"),
            proc_("web-01", 812, 1, "root", 7_000, 0.1, "/usr/sbin/sshd -D"),
            proc_("web-01", 4410, 812, "root", 9_000, 0.0, "sshd: admin [priv]"),
            proc_("web-01", 4415, 4410, "admin", 5_000, 2.5, "-bash"),
            proc_("web-01", 901, 1, "www-data", 250_000, 12.25, "nginx: worker process"),
            proc_("db-01", 77, 1, "postgres", 1_500_000, 40.0, "postgres -D /var/lib/postgresql"),
        ]
    }

    fn text(o: &str, sort: Option<&str>, tree: bool) -> String {
        let v = PgrepViewArgs { fields: Some(o.into()), sort: sort.map(str::to_string), tree };
        let (fields, sort) = layout(&v).unwrap();
        let mut procs = fleet_of_two();
        procs.sort_by(|a, b| a.host.cmp(&b.host).then(a.pid.cmp(&b.pid)));
        if let Some(key) = sort {
            view::sort(&mut procs, key);
        }
        columns_text(&procs, &fields.unwrap(), tree.then(|| sort.unwrap_or_default()), NOW)
    }

    #[test]
    fn ps_style_columns_in_the_order_asked() {
        let expected = "\
HOST    PID USER           RSS       VSZ %CPU START    CMD
db-01    77 postgres   1.4 GiB   5.7 GiB 40.0 21:13:20 postgres -D /var/lib/postgresql
web-01    1 root      11.7 MiB  46.9 MiB  0.0 21:13:20 /sbin/init
web-01  812 root       6.8 MiB  27.3 MiB  0.1 21:13:20 /usr/sbin/sshd -D
web-01  901 www-data 244.1 MiB 976.6 MiB 12.2 21:13:20 nginx: worker process
web-01 4410 root       8.8 MiB  35.2 MiB  0.0 21:13:20 sshd: admin [priv]
web-01 4415 admin      4.9 MiB  19.5 MiB  2.5 21:13:20 -bash
";
        assert_eq!(text("pid,user,rss,vsz,cpu,start,cmd", None, false), expected);
    }

    #[test]
    fn sorted_across_hosts_largest_first() {
        // Lines, not one literal: a string continuation would eat the header's leading space.
        let expected = [
            " PID HOST   %CPU NAME",
            "  77 db-01  40.0 postgres",
            " 901 web-01 12.2 nginx",
            "4415 web-01  2.5 -bash",
            " 812 web-01  0.1 /usr/sbin/sshd",
            "   1 web-01  0.0 /sbin/init",
            "4410 web-01  0.0 sshd",
        ];
        assert_eq!(text("pid,host,%cpu,comm", Some("-cpu"), false), expected.join("\n") + "\n");
    }

    #[test]
    fn the_tree_of_each_host_as_ps_f() {
        let expected = "\
HOST   USER      PID       RSS       VSZ CMD
db-01  postgres   77   1.4 GiB   5.7 GiB postgres -D /var/lib/postgresql
web-01 root        1  11.7 MiB  46.9 MiB /sbin/init
web-01 root      812   6.8 MiB  27.3 MiB  \\_ /usr/sbin/sshd -D
web-01 root     4410   8.8 MiB  35.2 MiB      \\_ sshd: admin [priv]
web-01 admin    4415   4.9 MiB  19.5 MiB          \\_ -bash
web-01 www-data  901 244.1 MiB 976.6 MiB  \\_ nginx: worker process
";
        let v = PgrepViewArgs { tree: true, ..PgrepViewArgs::default() };
        let (fields, _) = layout(&v).unwrap();
        let mut procs = fleet_of_two();
        procs.sort_by(|a, b| a.host.cmp(&b.host).then(a.pid.cmp(&b.pid)));
        assert_eq!(columns_text(&procs, &fields.unwrap(), Some(SortKey::default()), NOW), expected);
        // The siblings follow --sort: nginx, the larger, before sshd.
        let sorted = text("pid,rss,cmd", Some("-rss"), true);
        let order: Vec<&str> = sorted.lines().skip(2).map(|l| l.split_whitespace().nth(1).unwrap()).collect();
        assert_eq!(order, ["1", "901", "812", "4410", "4415"], "{sorted}");
    }

    #[test]
    fn bad_layouts_are_refused_before_anything_is_sent() {
        let bad = PgrepViewArgs { fields: Some("pid,mem".into()), ..PgrepViewArgs::default() };
        let e = layout(&bad).unwrap_err().to_string();
        assert!(e.contains("unknown field 'mem' (valid: host, pid, ppid, user, state, rss, vsz, cpu, start, name, cmd)"), "{e}");
        let bad = PgrepViewArgs { sort: Some("-size".into()), ..PgrepViewArgs::default() };
        assert!(layout(&bad).unwrap_err().to_string().contains("unknown field 'size'"));
        assert!(layout(&PgrepViewArgs::default()).unwrap().0.is_none(), "no -o, no --tree: mc-pgrep's layout");
    }
}
