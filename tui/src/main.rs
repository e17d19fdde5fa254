//! `fleet`: the console (no command) and the CLI.

fn main() {
    std::process::exit(fleet::main_entry());
}
