//! The few /proc reads the process agent and the job tree need, each one read of one file:
//! `/proc/PID/stat` for everything the kernel keeps in it (name, state, parent, group, CPU ticks,
//! threads, start time, memory), `/proc/PID/cmdline`, the `Uid:` line of `/proc/PID/status`, and
//! the list of process ids. A listing reads only what its filter needs for a process to be ruled
//! out (most often its command line alone), so a `pgrep` costs about one read per process.

use std::io::Read;

/// The fields of `/proc/PID/stat` fleet uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    /// The kernel's name for the process (`comm`, at most 15 bytes).
    pub name: String,
    /// `R`, `S`, `D`, `Z`, `T`, `t`, `X`, `I`, ...
    pub state: char,
    pub ppid: u32,
    pub pgrp: u32,
    /// User plus system time, in clock ticks.
    pub cpu_ticks: u64,
    pub threads: u64,
    /// Start time in clock ticks since boot: with the pid, it names one process exactly.
    pub start_time: u64,
    /// Virtual size, bytes.
    pub vsize: u64,
    /// Resident pages.
    pub rss_pages: u64,
}

/// Reads a whole /proc file into `buf`. /proc files report no size; a read of one returns short
/// only at its end, so a file that fits the buffer costs one open, one read and one close.
fn read_into(path: &str, buf: &mut Vec<u8>) -> std::io::Result<()> {
    let mut file = std::fs::File::open(path)?;
    let mut len = 0;
    loop {
        if buf.len() < len + 1024 {
            buf.resize(len + 4096, 0);
        }
        let n = file.read(&mut buf[len..])?;
        len += n;
        if n == 0 || len < buf.len() {
            break;
        }
    }
    buf.truncate(len);
    Ok(())
}

/// Parses the text of `/proc/PID/stat`. The name may hold spaces and parentheses, so the fields
/// resume after the last `)`.
pub fn parse_stat(text: &[u8]) -> Option<Stat> {
    let open = text.iter().position(|b| *b == b'(')?;
    let close = text.iter().rposition(|b| *b == b')')?;
    let name = String::from_utf8_lossy(text.get(open + 1..close)?).into_owned();
    let rest = std::str::from_utf8(text.get(close + 2..)?).ok()?;
    // rest starts at field 3 (state): ppid 4, pgrp 5, utime 14, stime 15, num_threads 20,
    // starttime 22, vsize 23, rss 24.
    let mut f = rest.split_ascii_whitespace();
    let state = f.next()?.chars().next()?;
    let mut num = |skip: usize| -> Option<u64> { f.nth(skip)?.parse().ok() };
    let ppid = num(0)? as u32;
    let pgrp = num(0)? as u32;
    let utime = num(8)?;
    let stime = num(0)?;
    let threads = num(4)?;
    let start_time = num(1)?;
    let vsize = num(0)?;
    let rss_pages = num(0)?;
    Some(Stat { name, state, ppid, pgrp, cpu_ticks: utime + stime, threads, start_time, vsize, rss_pages })
}

/// `/proc/PID/stat` of `pid`, read into `buf`; `None` once the process is gone.
pub fn stat_with(pid: u32, buf: &mut Vec<u8>) -> Option<Stat> {
    read_into(&format!("/proc/{pid}/stat"), buf).ok()?;
    parse_stat(buf)
}

pub fn stat(pid: u32) -> Option<Stat> {
    stat_with(pid, &mut Vec::with_capacity(512))
}

/// The command line with its arguments joined by spaces; empty for kernel threads and zombies.
pub fn cmdline_with(pid: u32, buf: &mut Vec<u8>) -> Option<String> {
    read_into(&format!("/proc/{pid}/cmdline"), buf).ok()?;
    // Programs that rewrite their title pad it with NULs: trailing ones are not arguments.
    let end = buf.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
    let joined: Vec<u8> = buf[..end].iter().map(|b| if *b == 0 { b' ' } else { *b }).collect();
    Some(String::from_utf8(joined).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
}

pub fn cmdline(pid: u32) -> Option<String> {
    cmdline_with(pid, &mut Vec::with_capacity(512))
}

/// The real uid of `pid` (the first value of the `Uid:` line of its status).
pub fn uid_with(pid: u32, buf: &mut Vec<u8>) -> Option<u32> {
    read_into(&format!("/proc/{pid}/status"), buf).ok()?;
    let text = std::str::from_utf8(buf).ok()?;
    text.lines().find_map(|l| l.strip_prefix("Uid:"))?.split_ascii_whitespace().next()?.parse().ok()
}

/// Every process id in /proc (thread group leaders: threads are not listed there).
pub fn pids() -> std::io::Result<Vec<u32>> {
    Ok(std::fs::read_dir("/proc")?.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect())
}

/// The kernel's clock ticks per second (the unit of `cpu_ticks` and `start_time`).
pub fn ticks_per_second() -> u64 {
    rustix::param::clock_ticks_per_second().max(1)
}

/// Seconds since the epoch at boot (`btime` in /proc/stat), to turn start ticks into a date.
pub fn boot_time() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    text.lines().find_map(|l| l.strip_prefix("btime "))?.trim().parse().ok()
}

/// Clock ticks since boot now (from /proc/uptime), to average a process's CPU over its life.
pub fn uptime_ticks() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/uptime").ok()?;
    let secs: f64 = text.split_ascii_whitespace().next()?.parse().ok()?;
    Some((secs * ticks_per_second() as f64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_survive_a_name_with_spaces_and_parentheses() {
        let text = b"4242 (tricky) name)) S 1 4242 4242 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 5 0 123456 9000000 321 18446744073709551615\n";
        let s = parse_stat(text).unwrap();
        assert_eq!(s.name, "tricky) name)");
        assert_eq!((s.state, s.ppid, s.pgrp), ('S', 1, 4242));
        assert_eq!((s.cpu_ticks, s.threads, s.start_time, s.vsize, s.rss_pages), (10, 5, 123456, 9_000_000, 321));
        assert_eq!(parse_stat(b"12 (cut short) S 1"), None);
    }

    #[test]
    fn own_process_reads_back() {
        let me = std::process::id();
        let s = stat(me).unwrap();
        assert!("RS".contains(s.state), "a live test process runs or sleeps: {}", s.state);
        assert!(s.threads >= 1 && s.start_time > 0 && s.rss_pages > 0);
        assert!(cmdline(me).unwrap().contains("noded"), "{:?}", cmdline(me));
        assert_eq!(uid_with(me, &mut Vec::new()), Some(rustix::process::getuid().as_raw()));
        assert!(pids().unwrap().contains(&me));
        assert!(boot_time().unwrap() > 1_500_000_000);
        assert!(uptime_ticks().unwrap() >= s.start_time);
    }
}
