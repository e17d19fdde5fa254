//! The contract every panel and popup follows: keys in, actions out; state changes only in
//! `update`; drawing cannot change state. [`PanelContext`] is what a panel is built from.

use std::sync::Arc;

use crossterm::event::KeyEvent;
use ratatui::Frame;
use ratatui::layout::Rect;

use super::action::{Action, Scope};
use super::keys::Keymap;
use super::theme::Theme;

pub trait Component {
    /// Turns a key into an action, or `None` when this component does not use the key (the shell
    /// then tries its global keys: tab, 1-6, ?, :, q, esc).
    fn handle_key(&mut self, key: KeyEvent) -> Option<Action>;
    /// Applies an action; may return a follow-up action for the loop to apply next.
    fn update(&mut self, action: Action) -> Option<Action>;
    fn draw(&self, frame: &mut Frame, area: Rect);
}

/// What every panel is built from.
#[derive(Debug, Clone)]
pub struct PanelContext {
    pub theme: Theme,
    /// The key tables in force (defaults plus the user's `keys.toml`).
    pub keys: Arc<Keymap>,
    /// `--read-only`: every destructive key is disabled.
    pub read_only: bool,
    /// The nodes the next request goes to; later changes arrive as `Action::ScopeChanged`.
    pub scope: Scope,
}
