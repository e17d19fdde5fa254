//! The contract every panel and popup follows: keys in, actions out; state changes only in
//! `update`; drawing cannot change state.

use crossterm::event::KeyEvent;
use ratatui::Frame;
use ratatui::layout::Rect;

use super::action::Action;

pub trait Component {
    /// Turns a key into an action, or `None` when this component does not use the key.
    fn handle_key(&mut self, key: KeyEvent) -> Option<Action>;
    /// Applies an action; may return a follow-up action for the loop to apply next.
    fn update(&mut self, action: Action) -> Option<Action>;
    fn draw(&self, frame: &mut Frame, area: Rect);
}
