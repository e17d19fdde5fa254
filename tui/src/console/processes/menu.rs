//! The sort menu (`s`, htop's "Sort by") and the column chooser (`c`): two small popups over the
//! table, each a list with a cursor. Quick sorts (`P` CPU, `M` memory, `T` start time) are here
//! too: the same key again reverses the order.

use std::collections::HashSet;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use super::table::Column;
use super::view::popup;
use super::{Overlay, ProcessesPanel};
use crate::console::action::Action;
use crate::console::action::Notice;

/// The columns the chooser offers: every one but COMMAND, which always shows.
pub const CHOOSABLE: [Column; 9] =
    [Column::Host, Column::User, Column::Pid, Column::Ppid, Column::State, Column::Cpu, Column::Rss, Column::Vsz, Column::Started];

/// Whether a column sorts biggest first when picked: numbers an admin hunts from the top.
pub fn descending_first(c: Column) -> bool {
    matches!(c, Column::Cpu | Column::Rss | Column::Vsz)
}

impl ProcessesPanel {
    pub(super) fn open_sort_menu(&mut self) {
        let selected = Column::ALL.iter().position(|c| *c == self.sort).unwrap_or(0);
        self.overlay = Overlay::SortMenu { selected };
    }

    pub(super) fn open_columns(&mut self) {
        self.overlay = Overlay::Columns { selected: 0 };
    }

    /// Up or down in whichever menu is open.
    pub(super) fn menu_step(&mut self, down: bool) {
        let (selected, len) = match &mut self.overlay {
            Overlay::SortMenu { selected } => (selected, Column::ALL.len()),
            Overlay::Columns { selected } => (selected, CHOOSABLE.len()),
            Overlay::SignalMenu { selected, .. } => (selected, fleet_client::process::Signal::MENU.len()),
            _ => return,
        };
        *selected = if down { (*selected + 1).min(len - 1) } else { selected.saturating_sub(1) };
    }

    /// Enter in the sort menu: sort by the highlighted column.
    pub(super) fn choose_sort(&mut self) {
        if let Overlay::SortMenu { selected } = self.overlay {
            let column = Column::ALL[selected];
            self.overlay = Overlay::None;
            self.set_sort(column, descending_first(column));
        }
    }

    /// Space in the chooser: show or hide the highlighted column.
    pub(super) fn toggle_column(&mut self) {
        if let Overlay::Columns { selected } = self.overlay {
            let c = CHOOSABLE[selected];
            if !self.hidden.remove(&c) {
                self.hidden.insert(c);
            }
        }
    }

    /// `P`, `M`, `T`: sort by that column, or reverse the order when it already is.
    pub(super) fn quick_sort(&mut self, column: Column) -> Option<Action> {
        let descending = if self.sort == column { !self.descending } else { descending_first(column) };
        self.set_sort(column, descending);
        Some(Notice::info(format!("sorted by {} {}", column.name(), if descending { "▼" } else { "▲" })))
    }

    pub(super) fn draw_sort_menu(&self, frame: &mut Frame, area: Rect, selected: usize) {
        let t = &self.theme;
        let mut lines: Vec<Line> = Column::ALL
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let now = if *c == self.sort { if self.descending { " ▼" } else { " ▲" } } else { "" };
                let marker = if i == selected { "> " } else { "  " };
                let line = Line::from(format!("{marker}{}{now}", c.name()));
                if i == selected { line.style(t.row.selected) } else { line }
            })
            .collect();
        lines.push(Line::raw(""));
        lines.push(key_line(t, &[("enter", "sort"), ("esc", "cancel")]));
        popup(frame, area, t, " Sort by ", lines);
    }

    pub(super) fn draw_columns(&self, frame: &mut Frame, area: Rect, selected: usize) {
        let t = &self.theme;
        let mut lines: Vec<Line> = CHOOSABLE
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let mark = if self.hidden.contains(c) { "[ ]" } else { "[x]" };
                let marker = if i == selected { "> " } else { "  " };
                let line = Line::from(format!("{marker}{mark} {}", c.header()));
                if i == selected { line.style(t.row.selected) } else { line }
            })
            .collect();
        lines.push(Line::raw(""));
        lines.push(Line::from(Span::styled("COMMAND always shows; narrow screens", t.label)));
        lines.push(Line::from(Span::styled("drop PPID, VSZ and STARTED first", t.label)));
        lines.push(key_line(t, &[("space", "show/hide"), ("esc", "done")]));
        popup(frame, area, t, " Columns ", lines);
    }
}

/// ` enter  sort   esc  cancel` as a popup's last line.
pub(super) fn key_line(t: &crate::console::theme::Theme, keys: &[(&str, &str)]) -> Line<'static> {
    let mut spans = Vec::new();
    for (k, what) in keys {
        spans.push(Span::styled(format!(" {k} "), t.footer.key));
        spans.push(Span::styled(format!(" {what}   "), t.popup));
    }
    Line::from(spans)
}

/// The hidden columns as the query line says them: `hidden PPID,VSZ`.
pub fn hidden_text(hidden: &HashSet<Column>) -> Option<String> {
    let names: Vec<&str> = CHOOSABLE.iter().filter(|c| hidden.contains(c)).map(|c| c.header()).collect();
    (!names.is_empty()).then(|| format!("hidden {}", names.join(",")))
}
