//! Redraw time of the Processes panel with 50,000 rows (the target: at most 10 ms a frame).
//!
//! Draws the panel into a ratatui `TestBackend` at 160x48 and 80x24, moving the selection (a row,
//! then a page) between frames and re-sorting by another column between batches, as an admin
//! would. Frames and sorts are timed apart, since sorting happens on a data or key change and
//! never in `draw`. Each frame is timed twice: wall clock, and the CPU time of the drawing thread
//! (which leaves out time the machine gave to other processes; on a busy machine the two differ).
//!
//! `cargo run --release -p fleet --example processes_redraw [-- ROWS FRAMES]`

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fleet::console::PanelContext;
use fleet::console::action::{Nav, Scope};
use fleet::console::processes::{Column, Listing, Msg, Prepared, ProcessesPanel};
use fleet::console::theme::Theme;
use fleet_client::process::Proc;
use hdrhistogram::Histogram;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

const BATCHES: usize = 10;
const TARGET_MS: f64 = 10.0;

/// A small deterministic generator, so every run draws the same table.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// `rows` processes over `rows / 100` hosts, with varied users, states, sizes and command lines,
/// a few zombies and a few processes in D state.
fn synthetic(rows: usize, now: u64) -> Vec<Proc> {
    const USERS: [&str; 8] = ["root", "www-data", "postgres", "deploy", "backup", "nobody", "app", "monitoring"];
    const COMMANDS: [&str; 8] = [
        "nginx: worker process",
        "/usr/lib/postgresql/16/bin/postgres -D /var/lib/postgresql/16/main -c config_file=/etc/postgresql/16/main/postgresql.conf",
        "python3 /opt/jobs/spawner.py --queue default --concurrency 8",
        "sleep 3600",
        "java -Xmx4g -jar /srv/app/service.jar --spring.profiles.active=production",
        "rsync -a /var/lib/data /mnt/backup",
        "/usr/sbin/sshd -D",
        "node /srv/web/server.js",
    ];
    let mut rng = Lcg(42);
    let hosts = (rows / 100).max(1);
    (0..rows)
        .map(|i| {
            let host = format!("node-{:04}.dc{}.example.net", i % hosts, i % 3);
            let pid = 1000 + (i / hosts) as u32 * 7 + rng.below(7) as u32;
            let zombie = rng.below(1000) == 0;
            let state = if zombie {
                "Z"
            } else if rng.below(500) == 0 {
                "D"
            } else if rng.below(10) == 0 {
                "R"
            } else {
                "S"
            };
            let cmd = COMMANDS[rng.below(COMMANDS.len() as u64) as usize];
            Proc {
                host,
                pid,
                ppid: if zombie { pid - 1 } else { 1 },
                user: USERS[rng.below(USERS.len() as u64) as usize].to_string(),
                state: state.to_string(),
                rss: if zombie { 0 } else { rng.below(4 << 30) },
                vsz: if zombie { 0 } else { rng.below(16 << 30) },
                cpu: rng.below(4000) as f32 / 10.0,
                start_time: 10_000 + rng.below(1 << 30),
                started: now - rng.below(90 * 86_400),
                threads: 1,
                name: cmd.split_whitespace().next().unwrap_or_default().to_string(),
                cmdline: if zombie { "[defunct]".to_string() } else { format!("{cmd} --instance {i}") },
                zombie,
                parent_pid: zombie.then_some(pid - 1),
                parent_start_time: zombie.then_some(9_999),
                parent_cmdline: zombie.then(|| "python3 /opt/jobs/spawner.py".to_string()),
            }
        })
        .collect()
}

fn ms(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

fn main() {
    let mut args = std::env::args().skip(1);
    let rows: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(50_000);
    let frames: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);
    let per_batch = (frames / BATCHES).max(1);

    let now = SystemTime::now();
    let procs = synthetic(rows, now.duration_since(UNIX_EPOCH).unwrap().as_secs());
    let mut listing = Listing {
        found: fleet_client::process::Listing {
            procs,
            hosts_asked: rows / 100,
            hosts_answered: rows / 100,
            failed: Vec::new(),
            no_reply: Vec::new(),
        },
        prepared: None,
    };

    let ctx = PanelContext { theme: Theme::default_theme(), keys: Default::default(), read_only: false, scope: Scope::default() };
    let mut panel = ProcessesPanel::new(&ctx).with_refresh_every(Duration::from_secs(2));
    panel.apply(Msg::Tick(now));
    panel.apply(Msg::Shown(true));
    // What the network task does on a blocking thread when a list comes back ...
    let t = Instant::now();
    listing.prepared = Some(Prepared::of(&listing, panel.sort()));
    let prepare = t.elapsed();
    // ... and what is left for the UI thread (the first list's seq is 1).
    let t = Instant::now();
    panel.apply(Msg::Listed { seq: 1, listing: Arc::new(listing) });
    let arrival = t.elapsed();
    assert_eq!(panel.rows().len(), rows, "the listing was taken");

    println!("processes_redraw: {rows} rows, {frames} frames per size, re-sorted every {per_batch} frames");
    println!(
        "  a list arrives: {:.2} ms ranking and sorting off the UI thread, then {:.2} ms on it",
        prepare.as_secs_f64() * 1000.0,
        arrival.as_secs_f64() * 1000.0
    );
    let mut sorts = Histogram::<u64>::new(3).unwrap();
    let mut worst = (0.0f64, 0.0f64);
    for (cols, lines) in [(160u16, 48u16), (80, 24)] {
        let mut terminal = Terminal::new(TestBackend::new(cols, lines)).unwrap();
        for _ in 0..10 {
            terminal.draw(|f| panel.render(f, f.area())).unwrap();
        }
        let (mut wall, mut cpu) = (Histogram::<u64>::new(3).unwrap(), Histogram::<u64>::new(3).unwrap());
        for batch in 0..BATCHES {
            // Between batches: another sort column, or the same one inverted (never in a draw).
            let t = Instant::now();
            panel.apply(if batch % 2 == 0 { Msg::NextSortColumn } else { Msg::InvertSort });
            sorts.record(t.elapsed().as_micros() as u64).unwrap();
            for frame in 0..per_batch {
                panel.apply(match frame % 4 {
                    0 => Msg::Nav(Nav::PageDown),
                    3 if batch % 3 == 2 => Msg::Nav(Nav::Bottom),
                    _ => Msg::Nav(Nav::Down),
                });
                let (t, c) = (Instant::now(), thread_cpu());
                terminal.draw(|f| panel.render(f, f.area())).unwrap();
                cpu.record((thread_cpu() - c).as_micros() as u64).unwrap();
                wall.record(t.elapsed().as_micros() as u64).unwrap();
            }
        }
        let q = |h: &Histogram<u64>| {
            format!("p50 {:.3}  p99 {:.3}  max {:.3} ms", ms(h.value_at_quantile(0.5)), ms(h.value_at_quantile(0.99)), ms(h.max()))
        };
        println!("  draw {cols}x{lines} ({} frames): wall {}  |  cpu {}", wall.len(), q(&wall), q(&cpu));
        worst = (worst.0.max(ms(wall.value_at_quantile(0.99))), worst.1.max(ms(cpu.value_at_quantile(0.99))));
    }
    println!(
        "  re-sort on a sort key (UI thread, never in a draw): p50 {:.2} ms  max {:.2} ms  ({} sorts)",
        ms(sorts.value_at_quantile(0.5)),
        ms(sorts.max()),
        sorts.len()
    );
    let mut by_column = Vec::new();
    for column in Column::ALL {
        while panel.sort().0 != column {
            panel.apply(Msg::NextSortColumn);
        }
        let t = Instant::now();
        panel.apply(Msg::InvertSort);
        by_column.push(format!("{} {:.1}", column.name(), t.elapsed().as_secs_f64() * 1000.0));
    }
    println!("  sort by column, ms: {}", by_column.join(", "));
    let verdict = |p99: f64| if p99 <= TARGET_MS { "met" } else { "NOT met" };
    println!("  target: draw <= {TARGET_MS} ms per frame (p99): wall {}, cpu {}", verdict(worst.0), verdict(worst.1));
}

/// CPU time of this thread: what a draw costs, without the time the machine gave to others.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_THREAD_CPUTIME_ID exists on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}
