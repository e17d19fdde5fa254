//! Drawing the inspector: a popup over the panel with the lines wrapped to its width, where in
//! them the view is, and the path line while `w` asks for it.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};

use super::{INDENT, InspectLine, Inspector, LineKind};
use crate::console::theme::Theme;
use crate::console::widgets::{block, input};

const PATH_PROMPT: &str = "write to: ";

impl Inspector {
    /// Draws the open inspection over `area` (the panels' area; the footer stays visible).
    pub fn draw(&self, frame: &mut Frame, area: Rect, t: &Theme) {
        let Some(shown) = &self.shown else { return };
        let rect = area;
        let lines: Vec<Line> = shown.lines.iter().map(|l| styled(l, t)).collect();
        let mut pane = block::popup(t, t.border_focused, Span::styled(format!(" {} ", shown.title), t.title));
        let inner = pane.clone().inner(rect);
        let path_rows = u16::from(self.path.is_some());
        let text_height = inner.height.saturating_sub(path_rows) as usize;
        // Rows after wrapping, to know how far down the view can go.
        let width = inner.width.max(1) as usize;
        let rows: usize = lines.iter().map(|l| l.width().div_ceil(width).max(1)).sum();
        let max = rows.saturating_sub(text_height.max(1));
        self.max_scroll.set(max);
        self.page.set(text_height.saturating_sub(1).max(1));
        let top = self.scroll.min(max);
        if rows > text_height {
            let end = (top + text_height).min(rows);
            pane = pane.title_bottom(Line::from(Span::styled(format!(" {}-{end} of {rows} ", top + 1), t.label)).right_aligned());
        }
        frame.render_widget(Clear, rect);
        frame.render_widget(pane, rect);
        let text_area = Rect { height: text_height as u16, ..inner };
        frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }).scroll((top as u16, 0)), text_area);
        if let Some(path) = &self.path {
            let line_area = Rect { y: inner.bottom().saturating_sub(1), height: 1, ..inner };
            input::draw_line(frame, line_area, path, PATH_PROMPT, "", t);
        }
    }
}

fn styled(l: &InspectLine, t: &Theme) -> Line<'static> {
    let pad = " ".repeat(l.indent * INDENT);
    let value_style = match l.kind {
        LineKind::Heading => t.title,
        LineKind::Field => t.text,
        LineKind::Error => t.error,
        LineKind::Note => t.label,
    };
    let mut spans = vec![Span::raw(pad)];
    if !l.label.is_empty() {
        spans.push(Span::styled(format!("{}:", l.label), t.label));
        if !l.value.is_empty() {
            spans.push(Span::raw(" "));
        }
    }
    spans.push(Span::styled(l.value.clone(), value_style));
    Line::from(spans)
}
