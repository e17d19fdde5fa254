//! A one-line text input (the filter line; later the `:` command line): text, a cursor counted in
//! characters, and a horizontal window that keeps the cursor visible.

use super::action::TextEdit;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextInput {
    text: String,
    /// Cursor position in characters, 0..=len.
    cursor: usize,
}

impl TextInput {
    pub fn new(text: &str) -> TextInput {
        TextInput { text: text.to_string(), cursor: text.chars().count() }
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn cursor(&self) -> usize {
        self.cursor
    }

    pub fn set(&mut self, text: &str) {
        *self = TextInput::new(text);
    }

    fn byte_at(&self, chars: usize) -> usize {
        self.text.char_indices().nth(chars).map(|(i, _)| i).unwrap_or(self.text.len())
    }

    /// Applies an edit; returns whether the text changed.
    pub fn apply(&mut self, edit: TextEdit) -> bool {
        let len = self.text.chars().count();
        match edit {
            TextEdit::Insert(c) if !c.is_control() => {
                let at = self.byte_at(self.cursor);
                self.text.insert(at, c);
                self.cursor += 1;
                true
            }
            TextEdit::Insert(_) => false,
            TextEdit::Backspace if self.cursor > 0 => {
                let at = self.byte_at(self.cursor - 1);
                self.text.remove(at);
                self.cursor -= 1;
                true
            }
            TextEdit::Delete if self.cursor < len => {
                let at = self.byte_at(self.cursor);
                self.text.remove(at);
                true
            }
            TextEdit::Backspace | TextEdit::Delete => false,
            TextEdit::Left => {
                self.cursor = self.cursor.saturating_sub(1);
                false
            }
            TextEdit::Right => {
                self.cursor = (self.cursor + 1).min(len);
                false
            }
            TextEdit::Home => {
                self.cursor = 0;
                false
            }
            TextEdit::End => {
                self.cursor = len;
                false
            }
            TextEdit::Clear => {
                let changed = !self.text.is_empty();
                self.text.clear();
                self.cursor = 0;
                changed
            }
        }
    }

    /// The first character shown when `width` cells are available, so the cursor stays visible.
    pub fn scroll(&self, width: usize) -> usize {
        if width == 0 { self.cursor } else { (self.cursor + 1).saturating_sub(width) }
    }

    /// The visible part of the text for a window starting at `scroll`.
    pub fn visible(&self, scroll: usize, width: usize) -> String {
        self.text.chars().skip(scroll).take(width).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_in_the_middle_and_at_the_ends() {
        let mut t = TextInput::new("role=web");
        assert!(t.apply(TextEdit::Backspace));
        assert_eq!(t.text(), "role=we");
        t.apply(TextEdit::Home);
        assert!(!t.apply(TextEdit::Backspace));
        assert!(t.apply(TextEdit::Insert('x')));
        assert_eq!((t.text(), t.cursor()), ("xrole=we", 1));
        assert!(t.apply(TextEdit::Delete));
        assert_eq!(t.text(), "xole=we");
        t.apply(TextEdit::End);
        assert!(!t.apply(TextEdit::Delete));
        assert!(t.apply(TextEdit::Insert('é')));
        t.apply(TextEdit::Left);
        assert!(t.apply(TextEdit::Insert('b')));
        assert_eq!(t.text(), "xole=webé");
        assert!(t.apply(TextEdit::Clear));
        assert_eq!((t.text(), t.cursor()), ("", 0));
    }

    #[test]
    fn window_follows_the_cursor() {
        let t = TextInput::new("0123456789");
        assert_eq!(t.scroll(5), 6);
        assert_eq!(t.visible(t.scroll(5), 5), "6789");
        assert_eq!(TextInput::new("abc").scroll(5), 0);
    }
}
