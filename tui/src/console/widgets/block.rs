//! Bordered boxes: a panel's panes, popups, and where a popup sits.

use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Padding};

use crate::console::theme::Theme;

/// A pane of a panel: its border shows whether it has the keys.
pub fn pane(t: &Theme, title: impl Into<String>, focused: bool) -> Block<'static> {
    Block::bordered().border_style(if focused { t.border_focused } else { t.border }).title(Span::styled(title.into(), t.title))
}

/// A popup: `border`-styled frame on the popup background, a title, a column of padding.
pub fn popup<'a>(t: &Theme, border: impl Into<Style>, title: impl Into<Line<'a>>) -> Block<'a> {
    Block::bordered().border_style(border).style(t.popup).title(title).padding(Padding::horizontal(1))
}

/// A rectangle of `width` x `height` in the middle of `area`.
pub fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect { x: area.x + (area.width - width) / 2, y: area.y + (area.height - height) / 2, width, height }
}
