//! Moving through a list and keeping the selection on screen: the cursor arithmetic of [`Nav`],
//! the first row to show, and the movement keys every list binds.

use crate::console::action::{Action, Nav};
use crate::console::keys::Binding;

impl Nav {
    /// Where a cursor at `pos` in a list of `len` goes, `page` rows to a screen.
    pub fn step(self, pos: usize, len: usize, page: usize) -> usize {
        if len == 0 {
            return 0;
        }
        let page = page.max(1);
        let last = len - 1;
        match self {
            Nav::Down => pos.saturating_add(1).min(last),
            Nav::Up => pos.saturating_sub(1),
            Nav::PageDown => pos.saturating_add(page).min(last),
            Nav::PageUp => pos.saturating_sub(page),
            Nav::Top => 0,
            Nav::Bottom => last,
        }
    }
}

/// The first visible row: moves from `top` only as far as needed to keep `selected` on screen.
/// A list that does not keep its window passes `top` 0: the selection then sits as high as it can.
pub fn scroll_top(top: usize, selected: usize, visible: usize, len: usize) -> usize {
    let top = if selected < top {
        selected
    } else if selected >= top + visible {
        selected + 1 - visible
    } else {
        top
    };
    top.min(len.saturating_sub(visible))
}

/// The movement keys of a list: `j`/`k` and the arrows, pages, first and last.
pub fn nav_bindings() -> Vec<Binding> {
    nav_bindings_with_up(&["k", "up"])
}

/// The movement keys with `up` on `up_keys` (the Processes table keeps `k` for kill).
pub fn nav_bindings_with_up(up_keys: &[&str]) -> Vec<Binding> {
    vec![
        Binding::new("down", &["j", "down"], Action::Nav(Nav::Down), "down"),
        Binding::new("up", up_keys, Action::Nav(Nav::Up), "up"),
        Binding::new("page_down", &["pgdn", "ctrl-d"], Action::Nav(Nav::PageDown), "page down"),
        Binding::new("page_up", &["pgup", "ctrl-u"], Action::Nav(Nav::PageUp), "page up"),
        Binding::new("top", &["g", "home"], Action::Nav(Nav::Top), "first"),
        Binding::new("bottom", &["G", "end"], Action::Nav(Nav::Bottom), "last"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_scrolls_only_as_far_as_the_selection_needs() {
        assert_eq!(scroll_top(0, 3, 5, 100), 0);
        assert_eq!(scroll_top(0, 5, 5, 100), 1);
        assert_eq!(scroll_top(10, 12, 5, 100), 10, "moving inside the window keeps it");
        assert_eq!(scroll_top(10, 9, 5, 100), 9);
        assert_eq!(scroll_top(50, 3, 5, 4), 0, "a shorter list pulls the window back");
    }

    #[test]
    fn a_cursor_stays_in_the_list_even_an_endless_one() {
        assert_eq!(Nav::Down.step(4, 5, 10), 4);
        assert_eq!(Nav::PageDown.step(1, 5, 10), 4);
        assert_eq!(Nav::PageUp.step(3, 5, 0), 2, "a page is at least a row");
        assert_eq!(Nav::Bottom.step(0, 0, 10), 0);
        assert_eq!(Nav::PageDown.step(usize::MAX - 1, usize::MAX, 10), usize::MAX - 1);
    }
}
