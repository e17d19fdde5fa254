//! The Xen panel's `/` line: the domU typed is looked for in the last picture as it is typed;
//! `enter` on a name not in it asks every dom0.

use super::{Cmd, Find, XenPanel};
use crate::console::action::{Action, Notice, SearchEdit};
use crate::console::widgets::input::TextInput;
use fleet_client::xen::PlacedDomu;

impl XenPanel {
    /// A `find` round came back: jump to the dom0 that runs `name`, once the picture has it.
    pub(super) fn on_found(&mut self, name: String, result: Result<Vec<String>, String>) -> Option<Action> {
        match result {
            Err(e) => Some(Notice::error(format!("cannot find {name}: {e}"))),
            Ok(on) if on.is_empty() => Some(Notice::error(format!("{name} runs on none of the dom0s"))),
            Ok(on) => {
                let first = on[0].clone();
                let known = self.view.as_ref().is_some_and(|v| v.domus.iter().any(|p| p.dom0 == first && p.domu.name == name));
                let also = if on.len() > 1 {
                    format!(" (and on {}: listed on {} dom0s at once)", on[1..].join(", "), on.len())
                } else {
                    String::new()
                };
                let notice = Notice::info(format!("{name} runs on {first}{also}"));
                if known {
                    self.jump_to(&first, &name);
                    Some(notice)
                } else {
                    self.jump_after_refresh = Some((first, name));
                    let mut follow = vec![notice];
                    follow.extend(self.start_refresh());
                    Some(Action::Batch(follow))
                }
            }
        }
    }

    /// The domU `text` names best: the exact name, else one that starts with it, else one that
    /// contains it (case-insensitive); ties go to the first in dom0 order.
    pub fn best_match(&self, text: &str) -> Option<&PlacedDomu> {
        let text = text.trim();
        let view = self.view.as_ref()?;
        if text.is_empty() {
            return None;
        }
        let lower = text.to_lowercase();
        let domus = &view.domus;
        domus
            .iter()
            .find(|p| p.domu.name == text)
            .or_else(|| domus.iter().find(|p| p.domu.name.to_lowercase() == lower))
            .or_else(|| domus.iter().find(|p| p.domu.name.to_lowercase().starts_with(&lower)))
            .or_else(|| domus.iter().find(|p| p.domu.name.to_lowercase().contains(&lower)))
    }

    /// `/` opens the line, typing jumps to the best match, `enter` keeps it (or asks every dom0),
    /// `esc` puts the cursor back.
    pub(super) fn find_edit(&mut self, edit: SearchEdit) -> Option<Action> {
        match edit {
            SearchEdit::Open => {
                if self.popup.is_none() {
                    self.find = Some(Find { input: TextInput::default(), before: (self.pane, self.dom0.clone(), self.domu.clone()) });
                }
                None
            }
            SearchEdit::Edit(e) => {
                let text = {
                    let find = self.find.as_mut()?;
                    find.input.apply(e);
                    find.input.text().to_string()
                };
                if let Some(p) = self.best_match(&text).map(|p| (p.dom0.clone(), p.domu.name.clone())) {
                    self.jump_to(&p.0, &p.1);
                }
                None
            }
            SearchEdit::Accept => {
                let find = self.find.take()?;
                let text = find.input.text().trim().to_string();
                if text.is_empty() {
                    return None;
                }
                if let Some(p) = self.best_match(&text).map(|p| (p.dom0.clone(), p.domu.name.clone())) {
                    self.jump_to(&p.0, &p.1);
                    return None;
                }
                // Not in the last picture: ask every dom0.
                Some(Action::Batch(vec![
                    Self::net(Cmd::Find { scope: self.scope.clone(), name: text.clone() }),
                    Notice::info(format!("asking every dom0 for {text} ...")),
                ]))
            }
            SearchEdit::Cancel => {
                if let Some(find) = self.find.take() {
                    (self.pane, self.dom0, self.domu) = find.before;
                }
                None
            }
        }
    }
}
