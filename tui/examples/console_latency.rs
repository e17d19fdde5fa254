//! Keypress-to-frame latency of the console while 1,000 replies stream in (target: p99 <= 16 ms).
//!
//! The console's own loop step ([`fleet::console::apply_burst`]: one action and whatever else is
//! waiting, then a frame) runs against a 160x48 `TestBackend`. A producer thread streams a
//! discovery round's 1,000 replies in bursts, as the hub forwards them, while a typist thread
//! presses `j`/`k` every few milliseconds in the Discovery grid, sorted by status (the grid is
//! re-sorted as replies change it). Each key's latency runs from when it was sent to when the
//! frame that shows it has been drawn.
//!
//! `cargo run --release -p fleet --example console_latency [ROUNDS] [BURST]` (BURST 1000: every
//! reply of a round at once)

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use fleet::console::action::{LinkState, ReplyRow, RequestEvent};
use fleet::console::{Action, App, AppInit, Component, NetCommand, apply_burst, discovery};
use fleet_protocol::Status;
use hdrhistogram::Histogram;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use tokio::sync::mpsc::unbounded_channel;

const NODES: usize = 1_000;
/// Replies per burst (by default; the second argument) and the pause between bursts: 1,000
/// replies in about half a second.
const BURST: usize = 20;
const BURST_EVERY: Duration = Duration::from_millis(10);
const KEY_EVERY: Duration = Duration::from_millis(7);

fn key(c: char) -> Action {
    Action::Key(KeyEvent::new_with_kind(KeyCode::Char(c), KeyModifiers::NONE, KeyEventKind::Press))
}

fn main() {
    let rounds: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(20);
    let burst: usize = std::env::args().nth(2).and_then(|a| a.parse().ok()).unwrap_or(BURST).max(1);
    let names: Vec<String> = (0..NODES).map(|i| format!("node-{i:04}.example.net")).collect();
    let mut app = App::new(AppInit::new(vec!["tcp://127.0.0.1:7402".into()], SystemTime::now()));
    let mut terminal = Terminal::new(TestBackend::new(160, 48)).expect("a test terminal");
    let mut none = |_: NetCommand| {};
    app.dispatch(Action::Link(LinkState::Connected { hub: "tcp://127.0.0.1:7402".into() }), &mut none);
    app.dispatch(Action::Nodes(names.clone()), &mut none);
    app.dispatch(key('s'), &mut none); // sort by status

    let mut latency = Histogram::<u64>::new_with_bounds(1, 10_000_000, 3).expect("histogram");
    let mut frame_time = Histogram::<u64>::new_with_bounds(1, 10_000_000, 3).expect("histogram");
    let mut replies_per_frame = Histogram::<u64>::new_with_bounds(1, 100_000, 3).expect("histogram");
    let started = Instant::now();
    for round in 1..=rounds {
        app.dispatch(Action::Discovery(discovery::Msg::Rerun), &mut none);
        app.dispatch(Action::Round { round, event: RequestEvent::Discovered(names.clone()) }, &mut none);
        let (tx, mut inbox) = unbounded_channel::<Action>();
        let sent_at: Arc<Mutex<VecDeque<Instant>>> = Arc::default();
        let streaming = Arc::new(AtomicBool::new(true));
        let producer = {
            let (tx, names, streaming) = (tx.clone(), names.clone(), streaming.clone());
            std::thread::spawn(move || {
                for (i, chunk) in names.chunks(burst).enumerate() {
                    for (j, name) in chunk.iter().enumerate() {
                        let status = if (i * burst + j).is_multiple_of(97) { Status::Aborted } else { Status::Ok };
                        let mut reply = ReplyRow::new(name, status, "", 1.0 + (j as f64) / 10.0);
                        reply.data = serde_json::json!({ "pong": 1_700_000_000_000u64 + (i * burst + j) as u64 });
                        let _ = tx.send(Action::Round { round, event: RequestEvent::Reply(Box::new(reply)) });
                    }
                    std::thread::sleep(BURST_EVERY);
                }
                let _ =
                    tx.send(Action::Round { round, event: RequestEvent::Finished { no_reply: vec![], down: vec![], elapsed_ms: 500.0 } });
                streaming.store(false, Ordering::SeqCst);
            })
        };
        let typist = {
            let (tx, sent_at, streaming) = (tx.clone(), sent_at.clone(), streaming.clone());
            std::thread::spawn(move || {
                let mut down = true;
                while streaming.load(Ordering::SeqCst) {
                    // The instant goes in before the key, so the consumer always finds it.
                    sent_at.lock().expect("lock").push_back(Instant::now());
                    let _ = tx.send(key(if down { 'j' } else { 'k' }));
                    down = !down;
                    std::thread::sleep(KEY_EVERY);
                }
            })
        };
        drop(tx);
        while let Some(first) = inbox.blocking_recv() {
            let mut keys: Vec<Instant> = Vec::new();
            let mut replies = 0u64;
            let mut note = |a: &Action| match a {
                Action::Key(_) => keys.push(sent_at.lock().expect("lock").pop_front().expect("a send time per key")),
                Action::Round { .. } => replies += 1,
                _ => {}
            };
            note(&first);
            let redraw = apply_burst(
                &mut app,
                first,
                || {
                    let a = inbox.try_recv().ok()?;
                    note(&a);
                    Some(a)
                },
                &mut none,
            );
            let draw_start = Instant::now();
            if redraw {
                terminal.draw(|f| app.draw(f, f.area())).expect("draw");
            }
            let drawn = Instant::now();
            frame_time.record((drawn - draw_start).as_micros().max(1) as u64).expect("record");
            if replies > 0 {
                replies_per_frame.record(replies).expect("record");
            }
            for k in keys {
                latency.record((drawn - k).as_micros().max(1) as u64).expect("record");
            }
        }
        producer.join().expect("producer");
        typist.join().expect("typist");
        let shown = app.discovery().tally();
        assert_eq!(shown.replied, NODES, "round {round}: every reply reached the grid");
    }
    let ms = |us: u64| us as f64 / 1000.0;
    println!(
        "console keypress-to-frame latency, {NODES} replies per round streaming in bursts of {burst}, 160x48, {rounds} rounds in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    println!(
        "  keys: {}  p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        latency.len(),
        ms(latency.value_at_quantile(0.5)),
        ms(latency.value_at_quantile(0.99)),
        ms(latency.max())
    );
    println!(
        "  frames: {}  draw p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        frame_time.len(),
        ms(frame_time.value_at_quantile(0.5)),
        ms(frame_time.value_at_quantile(0.99)),
        ms(frame_time.max())
    );
    println!("  replies per frame: p50 {}  max {}", replies_per_frame.value_at_quantile(0.5), replies_per_frame.max());
    let verdict = if ms(latency.value_at_quantile(0.99)) <= 16.0 { "meets" } else { "MISSES" };
    println!("  target p99 <= 16 ms: {verdict}");
}
