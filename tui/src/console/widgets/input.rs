//! A one-line text input (the discovery filter, the `:` command line, the `/` searches, form
//! fields): text, a cursor counted in characters, a horizontal window that keeps the cursor
//! visible, the text edit a key stands for, and the drawing of a prompted input line.

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::console::action::TextEdit;
use crate::console::keys::Key;
use crate::console::theme::Theme;

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

/// The text edit a key stands for in a one-line input, if any.
pub fn text_edit(key: &KeyEvent) -> Option<TextEdit> {
    let k = Key::of(key);
    Some(match k.code {
        KeyCode::Char(c) if k.is_text() => TextEdit::Insert(c),
        KeyCode::Backspace => TextEdit::Backspace,
        KeyCode::Delete => TextEdit::Delete,
        KeyCode::Left => TextEdit::Left,
        KeyCode::Right => TextEdit::Right,
        KeyCode::Home => TextEdit::Home,
        KeyCode::End => TextEdit::End,
        _ => return None,
    })
}

/// An input line being edited: `prompt`, the visible part of the text padded to the room left,
/// then `hint`; the terminal cursor goes where the input's cursor is.
pub fn draw_line(frame: &mut Frame, area: Rect, input: &TextInput, prompt: &str, hint: &str, t: &Theme) {
    let width = (area.width as usize).saturating_sub(prompt.len() + hint.len());
    let scroll = input.scroll(width);
    let visible = input.visible(scroll, width);
    let pad = width.saturating_sub(visible.chars().count());
    let line = Line::from(vec![
        Span::styled(prompt.to_string(), t.label),
        Span::styled(format!("{visible}{}", " ".repeat(pad)), t.input),
        Span::styled(hint.to_string(), t.label),
    ]);
    frame.render_widget(Paragraph::new(line), area);
    let x = area.x + (prompt.len() + input.cursor() - scroll) as u16;
    frame.set_cursor_position((x.min(area.right().saturating_sub(1)), area.y));
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
