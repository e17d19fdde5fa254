//! The rollout fields of the RPC form, next to the submit key: limit and its seed, batch and its
//! sleep, canary and max failures. They are typed as the CLI's flags are and parsed by the CLI's
//! own [`RolloutArgs`] (the same value checks and the same `rollout()`), so a request run from the
//! console is staged by the client core exactly like `fleet rpc --batch 2 --canary 1 ...`.

use clap::Parser;
use clap::error::ContextKind;
use fleet_client::Rollout;

use crate::cli::args::RolloutArgs;
use crate::console::action::TextEdit;
use crate::console::widgets::input::TextInput;

/// One rollout field: the CLI flag it stands for and what the admin typed.
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutField {
    /// The flag without its dashes: `batch-sleep`.
    pub flag: &'static str,
    /// What the form shows before the value.
    pub label: &'static str,
    /// What an empty field means, shown in its place.
    pub empty: &'static str,
    /// One line of help under the form while the field has the cursor.
    pub help: &'static str,
    pub input: TextInput,
}

/// The six fields, in the order the form shows them.
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutFields {
    pub fields: Vec<RolloutField>,
}

/// Only the rollout flags, so a field's text goes through the CLI's parsers and nothing else.
#[derive(Parser, Debug)]
#[command(no_binary_name = true)]
struct Flags {
    #[command(flatten)]
    rollout: RolloutArgs,
}

impl Default for RolloutFields {
    fn default() -> RolloutFields {
        let field = |flag, label, empty, help| RolloutField { flag, label, empty, help, input: TextInput::default() };
        RolloutFields {
            fields: vec![
                field("limit", "limit", "all", "ask only N (or N%) of the matching nodes, picked at random"),
                field("limit-seed", "seed", "random", "the seed of the limit's pick: the same seed picks the same nodes"),
                field("batch", "batch", "all at once", "never more than N (or N%) requests in flight"),
                field("batch-sleep", "sleep (s)", "0", "seconds a freed slot waits before it asks the next node"),
                field("canary", "canary", "none", "ask N (or N%) nodes first and wait for all their replies"),
                field("max-failures", "max failures", "no limit", "stop once more than K (or K%) nodes failed or gave no reply"),
            ],
        }
    }
}

impl RolloutFields {
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn get(&self, i: usize) -> Option<&RolloutField> {
        self.fields.get(i)
    }

    pub fn edit(&mut self, i: usize, edit: TextEdit) {
        if let Some(f) = self.fields.get_mut(i) {
            f.input.apply(edit);
        }
    }

    /// Puts `text` back into field `i` (undoing an edit).
    pub fn set(&mut self, i: usize, text: &str) {
        if let Some(f) = self.fields.get_mut(i) {
            f.input.set(text);
        }
    }

    /// The rollout the fields ask for (`None`: every node at once), or each bad field with why,
    /// as `(index, message)`. Each field is parsed on its own so every mistake is named.
    pub fn rollout(&self) -> Result<Option<Rollout>, Vec<(usize, String)>> {
        let mut words = Vec::new();
        let mut errors = Vec::new();
        for (i, f) in self.fields.iter().enumerate() {
            let text = f.input.text().trim();
            if text.is_empty() {
                continue;
            }
            // `--flag=value`, so a value such as `-1` is read as a value, not as a flag.
            let word = format!("--{}={text}", f.flag);
            match Flags::try_parse_from([word.as_str()]) {
                Ok(_) => words.push(word),
                Err(e) => errors.push((i, format!("{} {}", f.label, why(&e, text)))),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let flags = Flags::try_parse_from(&words).map_err(|e| vec![(0, why(&e, ""))])?;
        Ok(flags.rollout.rollout())
    }

    /// One line for the request's summary: `batch 2, canary 1, max failures 0`.
    pub fn describe(&self) -> String {
        let set: Vec<String> = self
            .fields
            .iter()
            .filter(|f| !f.input.text().trim().is_empty())
            .map(|f| format!("{} {}", f.label, f.input.text().trim()))
            .collect();
        if set.is_empty() { "every node at once".to_string() } else { set.join(", ") }
    }
}

/// Why clap refused a value, in the words of the CLI's own value parser when it has some
/// (`'0' refused: 0 nodes would ask no node`), without clap's usage lines.
fn why(e: &clap::Error, text: &str) -> String {
    if let Some(source) = std::error::Error::source(e) {
        return format!("'{text}' refused: {source}");
    }
    match e.get(ContextKind::InvalidValue) {
        Some(v) => format!("'{v}' refused"),
        None => e.render().to_string().lines().next().unwrap_or("refused").trim_start_matches("error: ").to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleet_client::Count;
    use std::time::Duration;

    fn typed(values: &[(&str, &str)]) -> RolloutFields {
        let mut r = RolloutFields::default();
        for (flag, text) in values {
            let i = r.fields.iter().position(|f| f.flag == *flag).expect("a rollout flag");
            r.set(i, text);
        }
        r
    }

    #[test]
    fn empty_fields_ask_every_node_at_once() {
        assert_eq!(RolloutFields::default().rollout(), Ok(None));
        assert_eq!(RolloutFields::default().describe(), "every node at once");
    }

    #[test]
    fn fields_parse_as_the_cli_flags_do() {
        let r =
            typed(&[("limit", "50%"), ("limit-seed", "7"), ("batch", "2"), ("batch-sleep", "0.5"), ("canary", "1"), ("max-failures", "0")]);
        let rollout = r.rollout().unwrap().unwrap();
        assert_eq!((rollout.limit, rollout.seed, rollout.batch), (Some(Count::Percent(50.0)), 7, Some(Count::Nodes(2))));
        assert_eq!((rollout.canary, rollout.max_failures), (Some(Count::Nodes(1)), Some(Count::Nodes(0))));
        assert_eq!(rollout.batch_sleep, Duration::from_millis(500));
        assert_eq!(r.describe(), "limit 50%, seed 7, batch 2, sleep (s) 0.5, canary 1, max failures 0");
        // A limit alone is not staged; a batch alone is.
        assert!(!typed(&[("limit", "3")]).rollout().unwrap().unwrap().is_staged());
        assert!(typed(&[("batch", " 2 ")]).rollout().unwrap().unwrap().is_staged());
    }

    #[test]
    fn bad_values_are_refused_with_the_field_and_the_reason() {
        let r = typed(&[("batch", "0"), ("limit", "0%"), ("canary", "x"), ("batch-sleep", "-1"), ("limit-seed", "seven")]);
        let errors = r.rollout().unwrap_err();
        let by_index: Vec<(usize, &str)> = errors.iter().map(|(i, m)| (*i, m.as_str())).collect();
        assert_eq!(by_index.len(), 5, "{errors:?}");
        assert_eq!(by_index[0], (0, "limit '0%' refused: '0%' is not a share between 0% and 100%"));
        assert!(by_index[1].0 == 1 && by_index[1].1.starts_with("seed 'seven' refused: "), "{errors:?}");
        assert_eq!(by_index[2], (2, "batch '0' refused: 0 nodes would ask no node"));
        assert_eq!(by_index[3], (3, "sleep (s) '-1' refused: '-1' is not a number of seconds"));
        assert_eq!(by_index[4].0, 4);
        assert!(by_index[4].1.contains("'x' is not a number of nodes (N) or a share (N%)"), "{errors:?}");
        let max = typed(&[("max-failures", "101%")]).rollout().unwrap_err();
        assert_eq!(max, vec![(5, "max failures '101%' refused: '101%' is not a share between 0% and 100%".to_string())]);
    }
}
