//! The confirmation popup of destructive actions: the lines that say exactly what will happen,
//! and its key table (`y` applies, `n`/`esc`/`q` drops).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};

use super::action::{Action, Confirm};
use super::keys::{Binding, Keymap, Mode, quit_binding};
use super::theme::Theme;
use super::widgets::block;

/// The confirmation's keys (`[confirm]` in keys.toml).
pub fn key_table() -> Vec<Binding> {
    vec![
        Binding::new("yes", &["y"], Action::ConfirmYes, "yes, do it"),
        Binding::new("no", &["n", "esc", "q"], Action::ClosePopup, "no"),
        quit_binding(),
    ]
}

/// The popup: what will happen, and the keys that answer.
pub fn draw(frame: &mut Frame, area: Rect, confirm: &Confirm, keys: &Keymap, theme: &Theme) {
    let yes = keys.key_text(Mode::Confirm, "yes");
    let no = keys.key_text(Mode::Confirm, "no");
    let mut lines: Vec<Line> = confirm.lines.iter().map(|l| Line::from(Span::styled(l.clone(), theme.popup))).collect();
    lines.push(Line::raw(""));
    lines.push(Line::from(vec![
        Span::styled(format!(" {yes} "), theme.footer.key),
        Span::styled(" yes, do it   ", theme.popup),
        Span::styled(format!(" {no} "), theme.footer.key),
        Span::styled(" no", theme.popup),
    ]));
    let width = lines.iter().map(|l| l.width()).max().unwrap_or(20).max(confirm.title.len() + 4) as u16 + 4;
    let popup = block::centered(area, width.min(area.width.saturating_sub(4).max(20)), lines.len() as u16 + 2);
    let frame_block = block::popup(theme, theme.error, Span::styled(format!(" {} ", confirm.title), theme.error));
    frame.render_widget(Clear, popup);
    frame.render_widget(Paragraph::new(lines).block(frame_block).wrap(Wrap { trim: false }), popup);
}
