//! The `?` help popup and the footer, both generated from the key tables in [`super::keys`].

use crossterm::event::KeyEvent;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};

use super::action::Action;
use super::component::Component;
use super::keys::{self, Mode};
use super::theme::Theme;

/// The footer for `mode`: each binding's first key and its hint.
pub fn footer_line(mode: Mode, theme: &Theme) -> Line<'static> {
    let mut spans = vec![Span::raw(" ")];
    for b in mode.table() {
        spans.push(Span::styled(format!(" {} ", b.keys[0]), theme.footer.key));
        spans.push(Span::styled(format!(" {}  ", b.hint), theme.footer.text));
    }
    Line::from(spans)
}

/// The help text: every mode's table with all its keys.
pub fn help_lines(theme: &Theme) -> Vec<Line<'static>> {
    let key_width = keys::all_tables()
        .iter()
        .flat_map(|(_, table)| table.iter().map(|b| b.keys_label().chars().count()))
        .max()
        .unwrap_or(0);
    let mut lines = Vec::new();
    for (i, mode) in Mode::ALL.iter().enumerate() {
        if i > 0 {
            lines.push(Line::raw(""));
        }
        lines.push(Line::from(Span::styled(mode.title(), theme.table.header)));
        for b in mode.table() {
            lines.push(Line::from(vec![
                Span::styled(format!("  {:<key_width$}", b.keys_label()), theme.title),
                Span::styled(format!("  {}", b.hint), theme.popup),
            ]));
        }
        if *mode == Mode::EditFilter {
            lines.push(Line::from(Span::styled("  other keys type and move in the filter line", theme.label)));
        }
    }
    lines
}

/// The `?` popup.
pub struct Help {
    theme: Theme,
    visible: bool,
}

impl Help {
    pub fn new(theme: Theme) -> Help {
        Help { theme, visible: false }
    }

    pub fn visible(&self) -> bool {
        self.visible
    }
}

impl Component for Help {
    /// While open, the popup takes every key; keys it does not bind do nothing.
    fn handle_key(&mut self, key: KeyEvent) -> Option<Action> {
        keys::lookup(Mode::Help, &key).map(|b| b.action.clone())
    }

    fn update(&mut self, action: Action) -> Option<Action> {
        match action {
            Action::ToggleHelp => self.visible = !self.visible,
            Action::ClosePopup => self.visible = false,
            _ => {}
        }
        None
    }

    fn draw(&self, frame: &mut Frame, area: Rect) {
        if !self.visible {
            return;
        }
        let lines = help_lines(&self.theme);
        let content_width = lines.iter().map(|l| l.width()).max().unwrap_or(0) as u16;
        let width = (content_width + 4).min(area.width);
        let height = (lines.len() as u16 + 2).min(area.height);
        let popup = Rect {
            x: area.x + (area.width - width) / 2,
            y: area.y + (area.height - height) / 2,
            width,
            height,
        };
        let block = Block::bordered()
            .border_style(self.theme.border)
            .style(self.theme.popup)
            .title(Span::styled(" Keys (esc closes) ", self.theme.title));
        frame.render_widget(Clear, popup);
        frame.render_widget(Paragraph::new(lines).block(block.padding(ratatui::widgets::Padding::horizontal(1))), popup);
    }
}
