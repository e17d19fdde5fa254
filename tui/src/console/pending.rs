//! Stand-ins for the Processes and Xen panels, which are written in their own issues. They have
//! exactly the shape the contract in `mod.rs` asks of the real modules, so the shell compiles and
//! shows a tab for each; swapping in the real module is one line in `mod.rs`.
//!
//! TODO(lead): delete this file once `processes.rs` and `xen.rs` exist, and replace
//! `pub use pending::{processes, xen};` in `mod.rs` with `pub mod processes; pub mod xen;`.

macro_rules! placeholder_panel {
    ($module:ident, $panel:ident, $title:literal) => {
        pub mod $module {
            use crossterm::event::KeyEvent;
            use ratatui::Frame;
            use ratatui::layout::Rect;
            use ratatui::text::Span;
            use ratatui::widgets::{Block, Paragraph};
            use tokio::sync::mpsc::UnboundedSender;

            use crate::console::action::Action;
            use crate::console::component::{Component, PanelContext};
            use crate::console::keys::Binding;
            use crate::console::theme::Theme;

            /// The panel's own actions (none: it is a stand-in).
            #[derive(Debug, Clone, PartialEq)]
            pub enum Msg {}

            /// The panel's network work (none).
            #[derive(Debug, Clone, PartialEq)]
            pub enum Cmd {}

            pub async fn execute(cmd: Cmd, _client: &mut crate::client::Client, _tx: &UnboundedSender<Action>) {
                match cmd {}
            }

            pub fn key_table() -> Vec<Binding> {
                Vec::new()
            }

            pub struct $panel {
                theme: Theme,
            }

            impl $panel {
                pub fn new(ctx: &PanelContext) -> $panel {
                    $panel { theme: ctx.theme.clone() }
                }
            }

            impl Component for $panel {
                fn handle_key(&mut self, _key: KeyEvent) -> Option<Action> {
                    None
                }

                fn update(&mut self, action: Action) -> Option<Action> {
                    if let Action::ThemeChanged(theme) = action {
                        self.theme = *theme;
                    }
                    None
                }

                fn draw(&self, frame: &mut Frame, area: Rect) {
                    let t = &self.theme;
                    let block = Block::bordered().border_style(t.border).title(Span::styled(concat!(" ", $title, " "), t.title));
                    let text = Span::styled(concat!($title, ": not available in this build"), t.label);
                    frame.render_widget(Paragraph::new(text).block(block), area);
                }
            }
        }
    };
}

placeholder_panel!(processes, ProcessesPanel, "Processes");
placeholder_panel!(xen, XenPanel, "Xen");
