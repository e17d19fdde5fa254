//! The `:` command line: `:ping [FILTER]`, `:filter EXPR`, `:group FACT`, `:profile NAME`,
//! `:theme NAME`, `:panel NAME`, `:help`, `:quit`. `tab` completes command names, theme names
//! and panel names (again to cycle through several); `up` and `down` walk the history of this
//! session.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};

use super::action::{Action, CommandLineEdit, PanelId, TextEdit};
use super::keys::{Binding, quit_binding};
use super::theme::Theme;
use super::widgets::input::{TextInput, text_edit};

/// The command line's keys (`[command_line]` in keys.toml); other keys type.
pub fn key_table() -> Vec<Binding> {
    vec![
        Binding::new("run", &["enter"], Action::CommandLine(CommandLineEdit::Run), "run"),
        Binding::new("cancel", &["esc"], Action::CommandLine(CommandLineEdit::Cancel), "cancel"),
        Binding::new("complete", &["tab"], Action::CommandLine(CommandLineEdit::Complete), "complete"),
        Binding::new("history_prev", &["up"], Action::CommandLine(CommandLineEdit::HistoryPrev), "older"),
        Binding::new("history_next", &["down"], Action::CommandLine(CommandLineEdit::HistoryNext), "newer"),
        Binding::new("clear", &["ctrl-u"], Action::CommandLine(CommandLineEdit::Edit(TextEdit::Clear)), "clear"),
        quit_binding(),
    ]
}

/// The commands and what they do (for completion and the unknown-command message).
pub const COMMANDS: [(&str, &str); 9] = [
    ("ping", "ping [FILTER]: run a discovery round (with FILTER, or the filter in force)"),
    ("filter", "filter EXPR: set the discovery filter and run it"),
    ("columns", "columns FACT,...: show these facts as Discovery columns for the session (none: no columns)"),
    ("group", "group FACT: the Metrics view with hosts grouped by a fact (none: ungrouped)"),
    ("profile", "profile NAME: the Metrics view with every host on a profile (none: each picked by its match)"),
    ("theme", "theme NAME: switch the colors"),
    ("panel", "panel NAME: go to a panel"),
    ("help", "help: the key bindings"),
    ("quit", "quit: leave the console"),
];

/// Lines kept in the history.
const HISTORY: usize = 100;

#[derive(Debug, Clone, Default)]
pub struct CommandLine {
    open: bool,
    input: TextInput,
    history: Vec<String>,
    /// Where `up`/`down` is in the history; `None` is the line being typed.
    history_pos: Option<usize>,
    /// What was typed before walking the history.
    draft: String,
    /// Completions on offer: (where the completed word starts, candidates, the one shown).
    offer: Option<(usize, Vec<String>, Option<usize>)>,
    /// Theme names for `:theme` completion.
    theme_names: Vec<String>,
}

impl CommandLine {
    pub fn new(theme_names: Vec<String>) -> CommandLine {
        CommandLine { theme_names, ..CommandLine::default() }
    }

    pub fn visible(&self) -> bool {
        self.open
    }

    pub fn text(&self) -> &str {
        self.input.text()
    }

    pub fn history(&self) -> &[String] {
        &self.history
    }

    /// The completions on offer, if more than one matched.
    pub fn candidates(&self) -> &[String] {
        self.offer.as_ref().map(|(_, c, _)| c.as_slice()).unwrap_or(&[])
    }

    pub fn open(&mut self) {
        self.open = true;
        self.input.set("");
        self.history_pos = None;
        self.offer = None;
    }

    /// Applies an edit; `Run` closes the line and returns the command to run.
    pub fn apply(&mut self, edit: CommandLineEdit) -> Option<Action> {
        if !matches!(edit, CommandLineEdit::Complete) {
            self.offer = None;
        }
        match edit {
            CommandLineEdit::Edit(e) => {
                self.input.apply(e);
                self.history_pos = None;
            }
            CommandLineEdit::Complete => self.complete(),
            CommandLineEdit::HistoryPrev => {
                if self.history.is_empty() {
                    return None;
                }
                let pos = match self.history_pos {
                    None => {
                        self.draft = self.input.text().to_string();
                        self.history.len() - 1
                    }
                    Some(p) => p.saturating_sub(1),
                };
                self.history_pos = Some(pos);
                self.input.set(&self.history[pos]);
            }
            CommandLineEdit::HistoryNext => match self.history_pos {
                None => {}
                Some(p) if p + 1 < self.history.len() => {
                    self.history_pos = Some(p + 1);
                    self.input.set(&self.history[p + 1]);
                }
                Some(_) => {
                    self.history_pos = None;
                    let draft = std::mem::take(&mut self.draft);
                    self.input.set(&draft);
                }
            },
            CommandLineEdit::Run => {
                self.open = false;
                let line = self.input.text().trim().to_string();
                if line.is_empty() {
                    return None;
                }
                if self.history.last() != Some(&line) {
                    self.history.push(line.clone());
                    if self.history.len() > HISTORY {
                        self.history.remove(0);
                    }
                }
                return Some(Action::RunCommand(line));
            }
            CommandLineEdit::Cancel => self.open = false,
        }
        None
    }

    /// What the word being typed could be: (its start, candidates).
    pub fn completions(&self, text: &str) -> (usize, Vec<String>) {
        let Some(space) = text.find(' ') else {
            let names = COMMANDS.iter().map(|(n, _)| n.to_string()).filter(|n| n.starts_with(text)).collect();
            return (0, names);
        };
        let command = &text[..space];
        let start = text[space..].find(|c: char| c != ' ').map(|i| space + i).unwrap_or(text.len());
        let prefix = &text[start..];
        let pool: Vec<String> = match command {
            "theme" => self.theme_names.clone(),
            "panel" => PanelId::ALL.iter().map(|p| p.name().to_string()).collect(),
            _ => Vec::new(),
        };
        (start, pool.into_iter().filter(|n| n.starts_with(prefix)).collect())
    }

    fn set_word(&mut self, start: usize, word: &str, done: bool) {
        let mut text = self.input.text()[..start].to_string();
        text.push_str(word);
        if done && start == 0 {
            text.push(' ');
        }
        self.input.set(&text);
    }

    fn complete(&mut self) {
        // A second tab on the same offer shows the next candidate.
        if let Some((start, candidates, shown)) = self.offer.take() {
            let next = shown.map(|i| (i + 1) % candidates.len()).unwrap_or(0);
            self.set_word(start, &candidates[next].clone(), false);
            self.offer = Some((start, candidates, Some(next)));
            return;
        }
        let text = self.input.text().to_string();
        let (start, candidates) = self.completions(&text);
        match candidates.len() {
            0 => {}
            1 => self.set_word(start, &candidates[0], true),
            _ => {
                let common = common_prefix(&candidates);
                self.set_word(start, &common, false);
                self.offer = Some((start, candidates, None));
            }
        }
    }

    /// The line in the footer, and above it the completions on offer.
    pub fn draw(&self, frame: &mut Frame, footer: Rect, theme: &Theme) {
        if !self.open {
            return;
        }
        let line = Line::from(vec![Span::styled(":", theme.title), Span::styled(self.input.text().to_string(), theme.input)]);
        frame.render_widget(Clear, footer);
        frame.render_widget(Paragraph::new(line).style(theme.popup), footer);
        let x = footer.x + 1 + self.input.cursor() as u16;
        frame.set_cursor_position((x.min(footer.right().saturating_sub(1)), footer.y));
        if !self.candidates().is_empty() && footer.y > 0 {
            let above = Rect { y: footer.y - 1, height: 1, ..footer };
            let shown = self.offer.as_ref().and_then(|(_, _, s)| *s);
            let mut spans = vec![Span::styled(" ", theme.popup)];
            for (i, c) in self.candidates().iter().enumerate() {
                let style = if Some(i) == shown { theme.row.selected } else { theme.popup };
                spans.push(Span::styled(c.clone(), style));
                spans.push(Span::styled("  ", theme.popup));
            }
            frame.render_widget(Clear, above);
            frame.render_widget(Paragraph::new(Line::from(spans)).style(theme.popup), above);
        }
    }
}

fn common_prefix(words: &[String]) -> String {
    let first = &words[0];
    let mut len = first.len();
    for w in &words[1..] {
        len = first.chars().zip(w.chars()).take_while(|(a, b)| a == b).map(|(a, _)| a.len_utf8()).sum::<usize>().min(len);
    }
    first[..len].to_string()
}

/// The text edit for a typed key, when the command line has the keyboard.
pub fn edit_of(key: &crossterm::event::KeyEvent) -> Option<Action> {
    text_edit(key).map(|e: TextEdit| Action::CommandLine(CommandLineEdit::Edit(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(text: &str) -> CommandLine {
        let mut c = CommandLine::new(vec!["default".into(), "light".into(), "high-contrast".into(), "mono".into()]);
        c.open();
        for ch in text.chars() {
            c.apply(CommandLineEdit::Edit(TextEdit::Insert(ch)));
        }
        c
    }

    #[test]
    fn tab_completes_a_unique_command_and_its_argument() {
        let mut c = typed("th");
        c.apply(CommandLineEdit::Complete);
        assert_eq!(c.text(), "theme ");
        c.apply(CommandLineEdit::Edit(TextEdit::Insert('l')));
        c.apply(CommandLineEdit::Complete);
        assert_eq!(c.text(), "theme light");
        let mut c = typed("panel i");
        c.apply(CommandLineEdit::Complete);
        assert_eq!(c.text(), "panel inventory");
    }

    #[test]
    fn tab_offers_several_and_cycles_through_them() {
        let mut c = typed("p");
        c.apply(CommandLineEdit::Complete);
        assert_eq!(c.text(), "p", "ping, profile and panel share only the p");
        assert_eq!(c.candidates(), ["ping", "profile", "panel"]);
        c.apply(CommandLineEdit::Complete);
        assert_eq!(c.text(), "ping");
        c.apply(CommandLineEdit::Complete);
        assert_eq!(c.text(), "profile");
        c.apply(CommandLineEdit::Complete);
        assert_eq!(c.text(), "panel");
        c.apply(CommandLineEdit::Complete);
        assert_eq!(c.text(), "ping");
        c.apply(CommandLineEdit::Edit(TextEdit::Insert(' ')));
        assert!(c.candidates().is_empty(), "typing ends the offer");
        let mut c = typed("theme ");
        c.apply(CommandLineEdit::Complete);
        assert_eq!(c.candidates().len(), 4);
        let mut c = typed("xyz");
        c.apply(CommandLineEdit::Complete);
        assert_eq!((c.text(), c.candidates().len()), ("xyz", 0));
    }

    #[test]
    fn run_returns_the_command_and_keeps_it_in_the_history() {
        let mut c = typed("  filter country=uk ");
        assert_eq!(c.apply(CommandLineEdit::Run), Some(Action::RunCommand("filter country=uk".into())));
        assert!(!c.visible());
        c.open();
        for ch in "ping".chars() {
            c.apply(CommandLineEdit::Edit(TextEdit::Insert(ch)));
        }
        c.apply(CommandLineEdit::Run);
        c.open();
        c.apply(CommandLineEdit::Run);
        assert_eq!(c.history(), ["filter country=uk", "ping"], "blank lines are not kept");
        c.open();
        c.apply(CommandLineEdit::Run);
        c.open();
        for ch in "ping".chars() {
            c.apply(CommandLineEdit::Edit(TextEdit::Insert(ch)));
        }
        c.apply(CommandLineEdit::Run);
        assert_eq!(c.history().len(), 2, "a repeat of the last line is kept once");
    }

    #[test]
    fn up_and_down_walk_the_history_and_come_back_to_the_draft() {
        let mut c = typed("filter a=1");
        c.apply(CommandLineEdit::Run);
        c.open();
        for ch in "theme mono".chars() {
            c.apply(CommandLineEdit::Edit(TextEdit::Insert(ch)));
        }
        c.apply(CommandLineEdit::Run);
        c.open();
        c.apply(CommandLineEdit::Edit(TextEdit::Insert('x')));
        c.apply(CommandLineEdit::HistoryPrev);
        assert_eq!(c.text(), "theme mono");
        c.apply(CommandLineEdit::HistoryPrev);
        assert_eq!(c.text(), "filter a=1");
        c.apply(CommandLineEdit::HistoryPrev);
        assert_eq!(c.text(), "filter a=1", "the oldest stays");
        c.apply(CommandLineEdit::HistoryNext);
        assert_eq!(c.text(), "theme mono");
        c.apply(CommandLineEdit::HistoryNext);
        assert_eq!(c.text(), "x", "back to what was being typed");
        c.apply(CommandLineEdit::Cancel);
        assert!(!c.visible());
    }
}
