//! The widgets every panel shares, each written once: the one-line text input and the keys that
//! edit it, the `/` search of a list, list movement and scrolling, bordered panes and popups, and
//! text cut to a width.

pub mod block;
pub mod input;
pub mod list;
pub mod search;
pub mod text;
