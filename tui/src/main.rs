//! `fleet`: the console (no command) and the CLI.

fn main() {
    // Behave like a Unix filter: `fleet pgrep . | head` ends quietly when head exits.
    // SAFETY: called first thing in main, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    std::process::exit(fleet::main_entry());
}
