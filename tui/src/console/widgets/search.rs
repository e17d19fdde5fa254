//! The `/` search of a list: a text line that narrows what the list shows (case-insensitive
//! substring), and its key table. Shared by the Discovery grid, the Inventory node list and fact
//! tree, and the Log; the Xen panel's find line uses the same keys.

use ratatui::text::{Line, Span};

use super::input::TextInput;
use crate::console::action::{Action, SearchEdit, TextEdit};
use crate::console::keys::{Binding, quit_binding};
use crate::console::theme::Theme;

/// The keys of a `/` search line (`[search]` in keys.toml); other keys type.
pub fn key_table() -> Vec<Binding> {
    vec![
        Binding::new("accept", &["enter"], Action::Search(SearchEdit::Accept), "keep"),
        Binding::new("cancel", &["esc"], Action::Search(SearchEdit::Cancel), "drop search"),
        Binding::new("clear", &["ctrl-u"], Action::Search(SearchEdit::Edit(TextEdit::Clear)), "clear"),
        quit_binding(),
    ]
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Search {
    input: TextInput,
    editing: bool,
    /// Lowercased text, kept so matching does not allocate per row.
    needle: String,
}

impl Search {
    /// Whether the search line has the keyboard.
    pub fn editing(&self) -> bool {
        self.editing
    }

    /// Whether the list is narrowed.
    pub fn active(&self) -> bool {
        !self.needle.is_empty()
    }

    pub fn text(&self) -> &str {
        self.input.text()
    }

    /// Applies an edit; returns whether what the list shows changed.
    pub fn apply(&mut self, edit: SearchEdit) -> bool {
        let before = self.needle.clone();
        match edit {
            SearchEdit::Open => self.editing = true,
            SearchEdit::Edit(e) => {
                if self.editing {
                    self.input.apply(e);
                }
            }
            SearchEdit::Accept => self.editing = false,
            SearchEdit::Cancel => {
                self.editing = false;
                self.input.set("");
            }
        }
        self.needle = self.input.text().trim().to_lowercase();
        before != self.needle
    }

    /// Whether any of `fields` contains the search text (always, when there is none).
    pub fn matches<'a>(&self, fields: impl IntoIterator<Item = &'a str>) -> bool {
        self.needle.is_empty() || fields.into_iter().any(|f| contains_ci(f, &self.needle))
    }

    /// `/ web_` while typing, `/ web` while it narrows the list, nothing otherwise.
    pub fn line(&self, theme: &Theme, shown: usize, total: usize) -> Option<Line<'static>> {
        if !self.editing && !self.active() {
            return None;
        }
        let text_style = if self.editing { theme.input } else { theme.text };
        let mut spans = vec![Span::styled("/ ", theme.label), Span::styled(self.input.text().to_string(), text_style)];
        if self.editing {
            spans.push(Span::styled("_", theme.input));
        }
        spans.push(Span::styled(format!("  {shown} of {total}"), theme.label));
        Some(Line::from(spans))
    }
}

/// Case-insensitive `contains` for an already lowercased needle.
pub fn contains_ci(haystack: &str, needle_lower: &str) -> bool {
    if haystack.is_ascii() && needle_lower.is_ascii() {
        let h = haystack.as_bytes();
        let n = needle_lower.as_bytes();
        return n.is_empty() || h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n));
    }
    haystack.to_lowercase().contains(needle_lower)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_narrows_and_cancel_drops_it() {
        let mut s = Search::default();
        assert!(s.matches(["anything"]));
        s.apply(SearchEdit::Open);
        assert!(s.editing());
        assert!(s.apply(SearchEdit::Edit(TextEdit::Insert('W'))));
        assert!(s.matches(["web-01"]) && !s.matches(["db-01"]));
        assert!(!s.apply(SearchEdit::Accept));
        assert!(!s.editing() && s.active());
        s.apply(SearchEdit::Edit(TextEdit::Insert('x')));
        assert_eq!(s.text(), "W", "typing only reaches an open search line");
        assert!(s.apply(SearchEdit::Cancel));
        assert!(!s.active() && s.matches(["db-01"]));
    }
}
