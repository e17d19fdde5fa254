//! The full-screen console: a ratatui app on the process's one tokio runtime. Terminal input (a
//! reader thread), a clock tick and the network task all send [`Action`]s into one channel; the
//! loop applies them to the [`App`] and redraws only when something changed.
//!
//! # The shell and its panels
//!
//! Six panels are tabs (`tab`/`shift-tab`, `1`-`6`): Discovery, Processes, Inventory, Xen, RPC and
//! Log. Keys go to the top popup first (confirmation, `:` command line, `?` help), then to the
//! focused panel, then to the global table (tab, 1-6, `?`, `:`, `q`, `esc` back). Each panel and
//! popup owns its key table (`key_table()`, in the panel's `keys.rs`); [`keys`] merges them with
//! the global keys and the user's keys file, and the footer and help are generated from the result.
//! Tab 7 is Jobs (`jobs`), with the Concat view (`concat`) under it (`]`); tab 3, Inventory,
//! has the Metrics view (`metrics`) under it (`]` past its last tab, `[` before its first):
//! eight titled tabs do not fit 80 columns.
//!
//! A panel larger than one file is a folder: `mod.rs` holds its state, messages and `Component`
//! impl, `keys.rs` its key table, `draw.rs` (`view.rs` for Processes) its drawing, `tests.rs` its
//! tests, and further files one concern each. What several panels draw or do alike (the text
//! input, list search and scrolling, panes and popups, text cut to a width) is in [`widgets`].
//!
//! # How panels reach the fleet
//!
//! A panel never awaits the network. It returns `Action::Net(NetCommand::..)`; [`net`] runs the
//! command on a pooled hub link through the client core (`fleet-client`) with the configured
//! [`fleet_client::Settings`], and sends the results back as the panel's own `Msg`. The Processes
//! and Xen panels describe their network work as their own `Cmd`, run by their
//! `execute(cmd, &mut Client, &Settings, &UnboundedSender<Action>)`, which only [`net`] calls.
//!
//! Besides their own `Msg`, the panels' `update` receives these broadcasts: `Tick(now)` (4 per
//! second), `ThemeChanged(theme)` (`:theme`), `ScopeChanged(scope)` (the discovery filter,
//! narrowed to exactly `scope.targets` when the user tagged nodes in Discovery and pressed enter:
//! requests go there), `FocusChanged(panel)` (live refreshes run only while a panel is shown),
//! `Link(state)`, `Nodes(all)` and `NodeEvent(event)`.
//!
//! Shared services: `Action::Inspect(Box::new(Inspection { .. }))` opens the reply inspector
//! (`inspector`; `Action::InspectUpdate` refreshes it when a fetch comes back);
//! `Action::Clipboard(text)` copies through the terminal (OSC 52); `Action::Confirm(Box::new(Confirm { title, lines, yes }))` asks before
//! something destructive (the popup lists `lines`; `y` applies `yes`, e.g.
//! `Action::Xen(Msg::MigrateConfirmed { .. })`); `Notice::info(..)` / `Notice::error(..)` put a
//! message in the footer; `Action::Batch(vec![..])` returns several actions. In read-only mode
//! (`ctx.read_only`) every destructive key refuses with a notice. The panels' theme slots:
//! `process.{zombie,dstate,running,sleeping,tagged}`, `xen.{dom0,domu,paused,migrating,overloaded}`,
//! `status.{ok,failed,no_reply,pending}`, `row.{selected,tagged}`, `table.header`, `progress.*`.

pub mod action;
pub mod app;
pub mod cmdline;
pub mod component;
pub mod concat;
pub mod confirm;
pub mod discovery;
pub mod form;
pub mod help;
pub mod inspector;
pub mod inventory;
pub mod jobs;
pub mod keys;
pub mod log;
pub mod metrics;
pub mod net;
pub mod processes;
pub mod record;
pub mod rpc;
pub mod theme;
pub mod topbar;
pub mod widgets;
pub mod xen;

use std::io::{IsTerminal, Stdout};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};
use crossterm::event::{Event, KeyEventKind};
use crossterm::{cursor, execute, terminal};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

pub use action::{Action, NetCommand};
pub use app::{App, AppInit};
pub use component::{Component, PanelContext};
pub use theme::Theme;

use crate::config::ClientConfig;

/// The clock shows seconds; four ticks a second keep it from lagging visibly.
const TICK_EVERY: Duration = Duration::from_millis(250);
/// How often the input thread looks up from the terminal to see whether it should stop.
const INPUT_POLL: Duration = Duration::from_millis(100);
/// Actions applied before a redraw is forced during a burst (e.g. many replies at once).
const MAX_BATCH: usize = 512;

/// What the console needs to start.
#[derive(Clone)]
pub struct Options {
    pub hubs: Vec<String>,
    /// What every request carries: collective, ttl, timeouts.
    pub settings: fleet_client::Settings,
    pub credentials: fleet_client::Credentials,
    pub theme: String,
    pub read_only: bool,
    /// Shown in the top bar, e.g. that this is the demo.
    pub note: Option<String>,
    pub log_level: Option<String>,
    /// The config's metric profiles, for the Metrics view.
    pub profiles: Vec<fleet_client::metrics::profile::Profile>,
}

impl Options {
    pub fn new(
        cfg: &ClientConfig,
        settings: fleet_client::Settings,
        credentials: fleet_client::Credentials,
        note: Option<String>,
        log_level: Option<String>,
    ) -> Options {
        Options {
            hubs: settings.hubs.clone(),
            settings,
            credentials,
            theme: cfg.theme.clone(),
            read_only: cfg.read_only,
            note,
            log_level,
            profiles: cfg.profiles.clone(),
        }
    }
}

/// Runs the console until the user quits.
pub async fn run(opts: Options) -> Result<()> {
    // Everything that can fail on bad input fails here, before the screen is taken over.
    let keys = std::sync::Arc::new(keys::Keymap::load(keys::Keymap::user_path().as_deref())?);
    let theme_dirs = theme::search_dirs();
    let theme = theme::load(&opts.theme, theme::no_color_requested(), &theme_dirs)?;
    if !std::io::stdout().is_terminal() {
        bail!("the console needs a terminal; in scripts use the subcommands (fleet ping, fleet discover, ...)");
    }
    let (_log_guard, log_path) = init_logging(opts.log_level.as_deref())?;
    tracing::info!(log = %log_path.display(), hubs = ?opts.hubs, theme = %opts.theme, "console starting");

    let mut screen = Screen::enter()?;
    let (actions, mut inbox) = unbounded_channel::<Action>();
    let (net_tx, net_rx) = unbounded_channel::<NetCommand>();
    let net = tokio::spawn(net::run(opts.settings.clone(), opts.credentials.clone(), actions.clone(), net_rx));
    let stop_net = net.abort_handle();
    let net_watch = tokio::spawn(report_panic("network task", net, actions.clone()));
    let ticker = tokio::spawn(tick(actions.clone()));
    let input = InputReader::spawn(actions.clone());
    let mut app = App::new(AppInit {
        hubs: opts.hubs.clone(),
        note: opts.note.clone(),
        read_only: opts.read_only,
        theme,
        keys,
        theme_dirs,
        now: SystemTime::now(),
        log_history: state_dir().map(|d| d.join(log::FILE_NAME)),
        profiles: opts.profiles.clone(),
    });

    let result = event_loop(&mut screen, &mut app, &mut inbox, &net_tx).await;

    input.stop();
    ticker.abort();
    stop_net.abort();
    net_watch.abort();
    drop(net_tx);
    drop(screen);
    tracing::info!(?result, "console stopped");
    result
}

async fn event_loop(
    screen: &mut Screen,
    app: &mut App,
    inbox: &mut UnboundedReceiver<Action>,
    net_tx: &UnboundedSender<NetCommand>,
) -> Result<()> {
    let mut to_net = |cmd: NetCommand| {
        if net_tx.send(cmd).is_err() {
            tracing::error!("the network task is gone");
        }
    };
    // The first round: every node, so the screen fills up without a keystroke.
    app.dispatch(Action::Discovery(discovery::Msg::Rerun), &mut to_net);
    screen.draw(app)?;
    while let Some(first) = inbox.recv().await {
        let redraw = apply_burst(app, first, || inbox.try_recv().ok(), &mut to_net);
        if let Some(fatal) = app.fatal() {
            bail!("{fatal}");
        }
        if app.should_quit() {
            return Ok(());
        }
        if let Some(text) = app.take_clipboard() {
            screen.copy(&text)?;
        }
        let resumed = app.take_suspend();
        if resumed {
            screen.suspend()?;
        }
        if redraw || resumed {
            screen.draw(app)?;
        }
    }
    Ok(())
}

/// Applies `first` and whatever else is already waiting (up to [`MAX_BATCH`] actions), so a burst
/// of replies costs one frame, not one per reply. A key press ends the batch: its frame is drawn
/// before more replies are applied. Returns whether the screen must be redrawn.
pub fn apply_burst(app: &mut App, first: Action, mut waiting: impl FnMut() -> Option<Action>, net: &mut dyn FnMut(NetCommand)) -> bool {
    let mut key = matches!(first, Action::Key(_));
    let mut redraw = app.dispatch(first, net);
    for _ in 0..MAX_BATCH {
        if key || app.should_quit() {
            break;
        }
        match waiting() {
            Some(more) => {
                key = matches!(more, Action::Key(_));
                redraw |= app.dispatch(more, net);
            }
            None => break,
        }
    }
    redraw
}

async fn tick(actions: UnboundedSender<Action>) {
    let mut every = tokio::time::interval(TICK_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        every.tick().await;
        if actions.send(Action::Tick(SystemTime::now())).is_err() {
            return;
        }
    }
}

/// Turns a panic of a background task into a `Fatal` action, so the console ends instead of
/// running on without its network.
async fn report_panic(what: &'static str, task: tokio::task::JoinHandle<()>, actions: UnboundedSender<Action>) {
    if let Err(e) = task.await
        && e.is_panic()
    {
        let _ = actions.send(Action::Fatal(format!("the {what} panicked; see the log")));
    }
}

/// The terminal in raw mode on the alternate screen; restored on drop and by the panic hook.
struct Screen {
    terminal: Terminal<CrosstermBackend<Stdout>>,
    /// The size the last frame was drawn at.
    size: ratatui::layout::Size,
}

/// Whether a [`Screen`] is up, so the panic hook only touches a terminal the console changed.
static SCREEN_ACTIVE: AtomicBool = AtomicBool::new(false);

/// Gives the terminal back: the alternate screen cleared (so no fragment of a frame drawn
/// before a resize can show through on terminals that keep it) and left, the cursor shown, raw
/// mode off.
fn restore_terminal() {
    if !SCREEN_ACTIVE.swap(false, Ordering::SeqCst) {
        return;
    }
    let _ = execute!(
        std::io::stdout(),
        terminal::Clear(terminal::ClearType::All),
        cursor::MoveTo(0, 0),
        terminal::LeaveAlternateScreen,
        cursor::Show
    );
    let _ = terminal::disable_raw_mode();
}

/// Raw mode, the alternate screen cleared, the cursor hidden.
fn take_terminal() -> Result<()> {
    terminal::enable_raw_mode().context("cannot put the terminal in raw mode")?;
    SCREEN_ACTIVE.store(true, Ordering::SeqCst);
    execute!(std::io::stdout(), terminal::EnterAlternateScreen, terminal::Clear(terminal::ClearType::All), cursor::Hide)?;
    Ok(())
}

impl Screen {
    fn enter() -> Result<Screen> {
        install_panic_hook();
        // From here on, any failure must give the terminal back.
        let setup = || -> Result<Terminal<CrosstermBackend<Stdout>>> {
            take_terminal()?;
            // Full screen: ratatui never asks the terminal where the cursor is.
            Ok(Terminal::new(CrosstermBackend::new(std::io::stdout()))?)
        };
        match setup() {
            Ok(terminal) => Ok(Screen { size: terminal.size().unwrap_or_default(), terminal }),
            Err(e) => {
                restore_terminal();
                Err(e.context("cannot set up the terminal"))
            }
        }
    }

    fn draw(&mut self, app: &App) -> Result<()> {
        // Terminals reflow what is on screen when resized; ratatui only redraws what changed
        // in its own buffer, so after a resize everything is cleared and drawn again.
        let size = self.terminal.size().context("cannot read the terminal size")?;
        if size != self.size {
            self.redraw_all()?;
            self.size = size;
        }
        self.terminal.draw(|f| app.draw(f, f.area())).context("cannot draw the screen")?;
        Ok(())
    }

    /// Clears the screen and forgets the last frame, so the next one is drawn whole. (ratatui's
    /// own `clear` asks the terminal where its cursor is, and the input thread would take the
    /// answer.)
    fn redraw_all(&mut self) -> Result<()> {
        execute!(std::io::stdout(), terminal::Clear(terminal::ClearType::All)).context("cannot clear the screen")?;
        self.terminal = Terminal::new(CrosstermBackend::new(std::io::stdout())).context("cannot set up the terminal")?;
        Ok(())
    }

    /// Asks the terminal to put `text` on the clipboard (OSC 52): the terminal does the copying,
    /// so it works over SSH.
    fn copy(&mut self, text: &str) -> Result<()> {
        use std::io::Write;
        let mut out = std::io::stdout();
        out.write_all(inspector::osc52(text).as_bytes()).and_then(|()| out.flush()).context("cannot write to the terminal")
    }

    /// `ctrl-z`: gives the terminal back and stops the process as the shell's job control
    /// expects (SIGTSTP); when the shell continues it (`fg`), takes the terminal again and
    /// forgets what was on screen, so the next draw is a full one.
    fn suspend(&mut self) -> Result<()> {
        restore_terminal();
        // SAFETY: raise only sends a signal to this process; the default action stops it until
        // SIGCONT. A process group without a job-control shell ignores it and simply goes on.
        unsafe {
            libc::raise(libc::SIGTSTP);
        }
        take_terminal().context("cannot take the terminal back after a suspend")?;
        self.redraw_all()
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// Restores the terminal before the panic message is printed, so it is readable and the shell
/// is usable afterwards. Installed once per process; the previous hook still prints.
fn install_panic_hook() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore_terminal();
            tracing::error!(panic = %info, "panic");
            previous(info);
        }));
    });
}

/// Reads terminal events on a plain thread (crossterm's reader blocks) and sends them as actions.
struct InputReader {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl InputReader {
    fn spawn(actions: UnboundedSender<Action>) -> InputReader {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("console-input".into())
            .spawn(move || {
                while !stopping.load(Ordering::Relaxed) {
                    let event = match crossterm::event::poll(INPUT_POLL) {
                        Ok(false) => continue,
                        Ok(true) => crossterm::event::read(),
                        Err(e) => Err(e),
                    };
                    let action = match event {
                        Ok(Event::Key(key)) if key.kind != KeyEventKind::Release => Action::Key(key),
                        Ok(Event::Resize(cols, rows)) => Action::Resize { cols, rows },
                        Ok(_) => continue,
                        Err(e) => {
                            let _ = actions.send(Action::Fatal(format!("cannot read the terminal: {e}")));
                            return;
                        }
                    };
                    if actions.send(action).is_err() {
                        return;
                    }
                }
            })
            .ok();
        InputReader { stop, thread }
    }

    fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The console's state directory (its log and the Log panel's history): `$FLEET_STATE_DIR`
/// when set, else `$XDG_STATE_HOME/fleet` (usually `~/.local/state/fleet`); created if missing.
pub fn state_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("FLEET_STATE_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => directories::BaseDirs::new().and_then(|b| b.state_dir().map(|d| d.join("fleet")))?,
    };
    std::fs::create_dir_all(&dir).is_ok().then_some(dir)
}

/// Where the console logs: `console.log` in the [`state_dir`], else
/// `/tmp/fleet-console-<uid>.log`.
pub fn log_path() -> PathBuf {
    if let Some(dir) = state_dir() {
        return dir.join("console.log");
    }
    let uid = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/self").map(|m| m.uid().to_string()).unwrap_or_else(|_| "unknown".into())
    };
    std::env::temp_dir().join(format!("fleet-console-{uid}.log"))
}

/// Logs go to a file, never to the screen being drawn. `--log-level` wins over `RUST_LOG`;
/// the default is `info`.
fn init_logging(level: Option<&str>) -> Result<(tracing_appender::non_blocking::WorkerGuard, PathBuf)> {
    let path = log_path();
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("cannot open the console log {}", path.display()))?;
    let (writer, guard) = tracing_appender::non_blocking(file);
    let filter = match level {
        Some(l) => tracing_subscriber::EnvFilter::try_new(l).with_context(|| format!("bad log level {l:?}"))?,
        None => tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
    };
    // Another subscriber may already be set (tests); then that one gets the events.
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer).with_ansi(false).try_init();
    Ok((guard, path))
}
