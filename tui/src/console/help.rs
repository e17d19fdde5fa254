//! The `?` help popup and the footer, both generated from the [`Keymap`], so they cannot drift
//! from what the keys do.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};

use super::action::{Action, Nav, Notice};
use super::keys::{Binding, Keymap, Mode, quit_binding};
use super::theme::Theme;
use super::widgets::block;
use super::widgets::text::fit_line;

/// The help popup's keys (`[help]` in keys.toml).
pub fn key_table() -> Vec<Binding> {
    vec![
        Binding::new("close", &["esc", "?", "q"], Action::ClosePopup, "close"),
        Binding::new("down", &["j", "down"], Action::Nav(Nav::Down), "scroll"),
        Binding::new("up", &["k", "up"], Action::Nav(Nav::Up), "scroll up"),
        Binding::new("page_down", &["pgdn", "space"], Action::Nav(Nav::PageDown), "page down"),
        Binding::new("page_up", &["pgup"], Action::Nav(Nav::PageUp), "page up"),
        quit_binding(),
    ]
}

/// The footer for `mode`: the mode's name, each binding's first key and its hint, with the
/// global keys around them when the mode is a panel's (popups and text lines take every key
/// themselves). Cut to `width` with an ellipsis.
pub fn footer_line(keys: &Keymap, mode: Mode, theme: &Theme, width: u16) -> Line<'static> {
    let mut spans = vec![Span::styled(format!(" {} ", mode.label()), theme.tab.active), Span::raw(" ")];
    let mut push = |b: &Binding| {
        if let Some(k) = b.keys.first() {
            spans.push(Span::styled(format!(" {k} "), theme.footer.key));
            spans.push(Span::styled(format!(" {}  ", b.hint), theme.footer.text));
        }
    };
    let global = |name: &str| keys.table(Mode::Global).iter().find(|b| b.name == name);
    // `?` comes first, so a narrow footer still says where every other key is.
    if !mode.is_modal()
        && let Some(b) = global("help")
    {
        push(b);
    }
    for b in keys.table(mode) {
        push(b);
    }
    if !mode.is_modal() {
        for b in ["command", "next_panel", "quit"].into_iter().filter_map(global) {
            push(b);
        }
    }
    fit_line(spans, width as usize)
}

/// A message in the footer instead of the hints, cut to `width` with an ellipsis.
pub fn notice_line(notice: &Notice, theme: &Theme, width: u16) -> Line<'static> {
    let style = if notice.error { theme.footer.error } else { theme.footer.notice };
    fit_line(vec![Span::styled(format!(" {}", notice.text), style)], width as usize)
}

/// The help text: the focused mode's table first, then every other non-empty one.
pub fn help_lines(keys: &Keymap, first: Mode, theme: &Theme) -> Vec<Line<'static>> {
    let key_width = Mode::ALL.iter().flat_map(|m| keys.table(*m).iter().map(|b| b.keys_label().chars().count())).max().unwrap_or(0);
    let mut order = vec![first];
    order.extend(Mode::ALL.into_iter().filter(|m| *m != first));
    let mut lines = Vec::new();
    for mode in order {
        let table = keys.table(mode);
        if table.is_empty() {
            continue;
        }
        if !lines.is_empty() {
            lines.push(Line::raw(""));
        }
        lines.push(Line::from(Span::styled(mode.title(), theme.table.header)));
        for b in table {
            lines.push(Line::from(vec![
                Span::styled(format!("  {:<key_width$}", b.keys_label()), theme.title),
                Span::styled(format!("  {}", b.hint), theme.popup),
            ]));
        }
        if mode.is_text_entry() {
            lines.push(Line::from(Span::styled("  other keys type and move in the line", theme.label)));
        }
    }
    lines
}

/// The `?` popup: every binding, scrollable.
#[derive(Debug, Clone, Default)]
pub struct Help {
    visible: bool,
    scroll: usize,
    /// The mode whose table comes first (the one in force when the popup opened).
    first: Option<Mode>,
    /// Lines that fit, kept by the drawing for page moves.
    page: std::cell::Cell<usize>,
}

impl Help {
    pub fn visible(&self) -> bool {
        self.visible
    }

    pub fn open(&mut self, first: Mode) {
        self.visible = true;
        self.scroll = 0;
        self.first = Some(first);
    }

    pub fn close(&mut self) {
        self.visible = false;
    }

    /// Scrolls over as many lines as there could be; the drawing stops at the last page.
    pub fn scroll(&mut self, nav: Nav) {
        self.scroll = nav.step(self.scroll, usize::MAX / 2 + 1, self.page.get());
    }

    pub fn draw(&self, frame: &mut Frame, area: Rect, keys: &Keymap, theme: &Theme) {
        if !self.visible {
            return;
        }
        let lines = help_lines(keys, self.first.unwrap_or(Mode::Global), theme);
        let content_width = lines.iter().map(|l| l.width()).max().unwrap_or(0) as u16;
        let popup = block::centered(area, content_width + 4, lines.len() as u16 + 2);
        let inner_height = popup.height.saturating_sub(2) as usize;
        self.page.set(inner_height);
        let scroll = self.scroll.min(lines.len().saturating_sub(inner_height));
        let more = if scroll + inner_height < lines.len() { " (j/k scroll)" } else { "" };
        let frame_block = block::popup(theme, theme.border_focused, Span::styled(format!(" Keys (esc closes){more} "), theme.title));
        frame.render_widget(Clear, popup);
        frame.render_widget(Paragraph::new(lines).block(frame_block).scroll((scroll as u16, 0)), popup);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn footer_and_help_come_from_the_table() {
        let mut keys = Keymap::defaults();
        keys.apply_user("[discovery]\nrerun = \"R\"\n", "k.toml").unwrap();
        let theme = Theme::mono();
        let footer: String = footer_line(&keys, Mode::Discovery, &theme, 500).spans.iter().map(|s| s.content.to_string()).collect();
        assert!(footer.starts_with(" DISCOVERY "), "the mode is named: {footer}");
        assert!(footer.contains(" R  run again"), "{footer}");
        assert!(footer.contains(" ?  help"), "{footer}");
        let editing: String = footer_line(&keys, Mode::DiscoveryFilter, &theme, 500).spans.iter().map(|s| s.content.to_string()).collect();
        assert!(!editing.contains("help"), "text lines take every key: {editing}");
        let narrow: String = footer_line(&keys, Mode::Discovery, &theme, 40).spans.iter().map(|s| s.content.to_string()).collect();
        assert_eq!(narrow.chars().count(), 40, "{narrow}");
        assert!(narrow.ends_with('…'), "a cut footer ends in an ellipsis: {narrow}");
        let help: Vec<String> = help_lines(&keys, Mode::Log, &theme).iter().map(|l| l.to_string()).collect();
        assert_eq!(help[0], "Log", "the focused mode comes first");
        assert!(help.iter().any(|l| l.contains("R") && l.ends_with("run again")), "{help:?}");
        for mode in Mode::ALL {
            for b in keys.table(mode) {
                assert!(help.iter().any(|l| l.trim_end().ends_with(b.hint)), "{mode}: {} missing from help", b.name);
            }
        }
    }
}
