//! Runs a real binary in a pseudo-terminal and reads its screen, for console end-to-end tests
//! (after bottom's `portable_pty` helper). A reader thread feeds everything the program writes into
//! a `vt100` parser; tests wait on the parsed screen with a deadline, never with fixed sleeps.
//!
//! ```no_run
//! use std::time::Duration;
//! use fleet_e2e::pty::{PtyCommand, keys};
//! let mut console = PtyCommand::new(fleet_e2e::pty::fleet_binary()).arg("demo").size(24, 80).spawn().unwrap();
//! console.wait_for_text("web-01", Duration::from_secs(30)).unwrap();
//! console.send(keys::QUIT).unwrap();
//! assert!(console.wait_exit(Duration::from_secs(10)).unwrap().success());
//! ```

use std::io::{Read, Write};
use std::num::NonZeroU16;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use portable_pty::{Child, CommandBuilder, ExitStatus, MasterPty, PtySize, native_pty_system};

/// How often a wait looks at the screen again.
const POLL: Duration = Duration::from_millis(100);

/// Bytes a program in a terminal receives for common keys.
pub mod keys {
    pub const ENTER: &str = "\r";
    pub const ESC: &str = "\x1b";
    pub const TAB: &str = "\t";
    pub const BACKSPACE: &str = "\x7f";
    pub const UP: &str = "\x1b[A";
    pub const DOWN: &str = "\x1b[B";
    pub const RIGHT: &str = "\x1b[C";
    pub const LEFT: &str = "\x1b[D";
    pub const CTRL_C: &str = "\x03";
    pub const QUIT: &str = "q";

    /// ctrl + a letter.
    pub fn ctrl(c: char) -> String {
        let c = c.to_ascii_lowercase();
        assert!(c.is_ascii_lowercase(), "ctrl-{c} has no control code");
        ((c as u8 - b'a' + 1) as char).to_string()
    }
}

fn screen_size(rows: u16, cols: u16) -> Result<(NonZeroU16, NonZeroU16)> {
    match (NonZeroU16::new(rows), NonZeroU16::new(cols)) {
        (Some(r), Some(c)) => Ok((r, c)),
        _ => bail!("a terminal needs at least one row and one column (got {rows}x{cols})"),
    }
}

/// A workspace binary (`fleet`, `noded`) next to the running test: tests live in
/// `target/<profile>/deps/`, binaries in `target/<profile>/`.
pub fn workspace_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let profile_dir = exe.parent().and_then(Path::parent).expect("test executable under target/<profile>/deps");
    let path = profile_dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if !path.is_file() {
        panic!("{} not found: build the workspace first: cargo build --workspace", path.display());
    }
    path
}

/// The `fleet` binary.
pub fn fleet_binary() -> PathBuf {
    workspace_binary("fleet")
}

/// What to run in the pseudo-terminal. The child inherits this process's environment, plus
/// `TERM=xterm-256color` and whatever [`env`](Self::env) adds.
#[derive(Debug, Clone)]
pub struct PtyCommand {
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    env_remove: Vec<String>,
    cwd: Option<PathBuf>,
    rows: u16,
    cols: u16,
}

impl PtyCommand {
    pub fn new(program: impl Into<PathBuf>) -> PtyCommand {
        PtyCommand {
            program: program.into(),
            args: Vec::new(),
            env: vec![("TERM".into(), "xterm-256color".into())],
            env_remove: Vec::new(),
            cwd: None,
            rows: 24,
            cols: 80,
        }
    }

    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn env_remove(mut self, key: impl Into<String>) -> Self {
        self.env_remove.push(key.into());
        self
    }

    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// Terminal size in rows and columns (default 24 x 80).
    pub fn size(mut self, rows: u16, cols: u16) -> Self {
        self.rows = rows;
        self.cols = cols;
        self
    }

    pub fn spawn(self) -> Result<PtySession> {
        PtySession::spawn(self)
    }
}

/// A program running in a pseudo-terminal. Dropping it kills the program if it still runs.
pub struct PtySession {
    child: Box<dyn Child + Send + Sync>,
    master: Box<dyn MasterPty + Send>,
    writer: Box<dyn Write + Send>,
    parser: Arc<Mutex<vt100::Parser>>,
    reader: Option<std::thread::JoinHandle<()>>,
    description: String,
}

impl PtySession {
    pub fn spawn(cmd: PtyCommand) -> Result<PtySession> {
        let (rows, cols) = screen_size(cmd.rows, cmd.cols)?;
        let size = PtySize { rows: cmd.rows, cols: cmd.cols, pixel_width: 0, pixel_height: 0 };
        let pair = native_pty_system().openpty(size).context("cannot open a pseudo-terminal")?;
        let mut builder = CommandBuilder::new(&cmd.program);
        builder.args(&cmd.args);
        for key in &cmd.env_remove {
            builder.env_remove(key);
        }
        for (k, v) in &cmd.env {
            builder.env(k, v);
        }
        let cwd = match &cmd.cwd {
            Some(dir) => dir.clone(),
            None => std::env::current_dir().context("current directory")?,
        };
        builder.cwd(cwd);
        let description = format!("{} {}", cmd.program.display(), cmd.args.join(" "));
        let child = pair.slave.spawn_command(builder).with_context(|| format!("cannot start {description}"))?;
        // Our copy of the slave side must go, or reads never see end-of-file after the child exits.
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader().context("pty reader")?;
        let writer = pair.master.take_writer().context("pty writer")?;
        let parser = Arc::new(Mutex::new(vt100::Parser::new(rows, cols, 0)));
        let feed = parser.clone();
        let reader = std::thread::Builder::new()
            .name("pty-reader".into())
            .spawn(move || {
                let mut buf = [0u8; 8192];
                loop {
                    match reader.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => feed.lock().unwrap_or_else(|p| p.into_inner()).process(&buf[..n]),
                    }
                }
            })
            .context("cannot start the pty reader thread")?;
        Ok(PtySession { child, master: pair.master, writer, parser, reader: Some(reader), description })
    }

    /// The screen as text, one line per row, trailing blanks trimmed.
    pub fn screen_text(&self) -> String {
        self.parser.lock().unwrap_or_else(|p| p.into_inner()).screen().contents()
    }

    /// Runs `f` on the parsed screen (for colors, cursor, attributes).
    pub fn with_screen<T>(&self, f: impl FnOnce(&vt100::Screen) -> T) -> T {
        f(self.parser.lock().unwrap_or_else(|p| p.into_inner()).screen())
    }

    /// Waits until `done` holds for the screen text; returns that screen. The error names `what`
    /// and shows the last screen.
    pub fn wait_for(&self, what: &str, timeout: Duration, done: impl Fn(&str) -> bool) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let screen = self.screen_text();
            if done(&screen) {
                return Ok(screen);
            }
            if Instant::now() >= deadline {
                bail!(
                    "{what}: not on screen after {:.1} s ({})\n--- screen ---\n{screen}\n--------------",
                    timeout.as_secs_f64(),
                    self.description
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// Waits until `text` appears on the screen.
    pub fn wait_for_text(&self, text: &str, timeout: Duration) -> Result<String> {
        self.wait_for(&format!("{text:?}"), timeout, |s| s.contains(text))
    }

    /// Waits until every one of `texts` is on the screen at once.
    pub fn wait_for_all(&self, texts: &[&str], timeout: Duration) -> Result<String> {
        self.wait_for(&format!("all of {texts:?}"), timeout, |s| texts.iter().all(|t| s.contains(t)))
    }

    /// Types `keys` (text or escape sequences from [`keys`]).
    pub fn send(&mut self, keys: &str) -> Result<()> {
        self.writer.write_all(keys.as_bytes()).context("writing to the pty")?;
        self.writer.flush().context("flushing the pty")
    }

    /// Resizes the terminal; the program gets SIGWINCH.
    pub fn resize(&mut self, rows: u16, cols: u16) -> Result<()> {
        let (screen_rows, screen_cols) = screen_size(rows, cols)?;
        self.master.resize(PtySize { rows, cols, pixel_width: 0, pixel_height: 0 }).map_err(|e| anyhow!("cannot resize the pty: {e}"))?;
        self.parser.lock().unwrap_or_else(|p| p.into_inner()).set_size(screen_rows, screen_cols);
        Ok(())
    }

    /// The exit status if the program has ended.
    pub fn try_exit(&mut self) -> Result<Option<ExitStatus>> {
        self.child.try_wait().context("waiting for the child")
    }

    /// Waits for the program to end, up to `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_exit()? {
                if let Some(reader) = self.reader.take() {
                    // The reader ends at end-of-file, which follows the exit; do not hang on it.
                    if reader.is_finished() {
                        let _ = reader.join();
                    } else {
                        self.reader = Some(reader);
                    }
                }
                return Ok(status);
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} still running after {:.1} s\n--- screen ---\n{}\n--------------",
                    self.description,
                    timeout.as_secs_f64(),
                    self.screen_text()
                );
            }
            std::thread::sleep(POLL);
        }
    }

    pub fn process_id(&self) -> Option<u32> {
        self.child.process_id()
    }

    pub fn kill(&mut self) -> Result<()> {
        self.child.kill().context("killing the child")
    }
}

impl Drop for PtySession {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// How long the console helpers below wait for a screen.
const CONSOLE_WAIT: Duration = Duration::from_secs(30);

/// `fleet demo` in a `rows` x `cols` pseudo-terminal, its config and state under `home` (also its
/// working directory), started and showing its first discovery round.
pub fn demo_console(home: &Path, rows: u16, cols: u16) -> PtySession {
    let console = PtyCommand::new(fleet_binary())
        .arg("demo")
        .size(rows, cols)
        .env("XDG_CONFIG_HOME", home.join("config").display().to_string())
        .env("FLEET_STATE_DIR", home.join("state").display().to_string())
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .cwd(home)
        .spawn()
        .unwrap();
    console.wait_for_all(&["web-01", " connected ", "DISCOVERY"], CONSOLE_WAIT).unwrap();
    console
}

/// The real console (`fleet --hub HUB`) in a `rows` x `cols` pseudo-terminal, signing as the
/// test caller and trusting the test hub's key, with its config (`home/config/fleet/config.toml`)
/// and log under `home`, also its working directory.
pub fn hub_console(hub: &str, home: &Path, rows: u16, cols: u16) -> PtySession {
    let keys = crate::support::TestKeys::get();
    PtyCommand::new(crate::support::fleet_bin())
        .args(["--hub", hub])
        .size(rows, cols)
        .env("FLEET_KEY", keys.private_key().display().to_string())
        .env("FLEET_HUB_KEY", keys.hub_public_key().display().to_string())
        .env("XDG_CONFIG_HOME", home.join("config").display().to_string())
        .env("XDG_STATE_HOME", home.join("state").display().to_string())
        .env_remove("FLEET_HUB")
        .env_remove("FLEET_CONFIG")
        .env_remove("RUST_LOG")
        .cwd(home)
        .spawn()
        .expect("start the console")
}

/// Types `text` into the RPC form's field under the cursor: enters it, replaces what it held,
/// and leaves it (each step waited for by the mode the footer names).
pub fn fill_rpc_field(console: &mut PtySession, text: &str) {
    console.send(keys::ENTER).unwrap();
    console.wait_for_text("EDIT FIELD", CONSOLE_WAIT).unwrap();
    console.send(&keys::ctrl('u')).unwrap();
    console.send(text).unwrap();
    console.send(keys::ENTER).unwrap();
    console.wait_for_text("RPC FORM", CONSOLE_WAIT).unwrap();
}
