//! Where a field lives in a DDL's source text, so every load error can name the line and the field.
//! TOML uses the spans of `toml`'s own parse tree; serde_json keeps no spans, so JSON is scanned
//! here (only ever after serde_json has accepted the text, so the scanner can assume it is valid).

use std::fmt;

/// One step of a path into a DDL document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
}

impl From<&str> for Seg {
    fn from(k: &str) -> Self {
        Seg::Key(k.to_string())
    }
}

impl From<String> for Seg {
    fn from(k: String) -> Self {
        Seg::Key(k)
    }
}

impl From<usize> for Seg {
    fn from(i: usize) -> Self {
        Seg::Index(i)
    }
}

/// A path such as `actions.kill.input.signal` (TOML) or `actions[1].input.signal` (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct FieldPath(pub Vec<Seg>);

impl FieldPath {
    pub fn child(&self, seg: impl Into<Seg>) -> FieldPath {
        let mut p = self.0.clone();
        p.push(seg.into());
        FieldPath(p)
    }
}

/// Builds a [`FieldPath`] from keys and indexes: `fpath!["actions", 3, "input"]`.
macro_rules! fpath {
    ($($seg:expr),* $(,)?) => { $crate::locate::FieldPath(vec![$($crate::locate::Seg::from($seg)),*]) };
}
pub(crate) use fpath;

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if i == 0 => write!(f, "{k}")?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// 1-based line of a byte offset.
pub(crate) fn line_at(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())].iter().filter(|b| **b == b'\n').count() + 1
}

// ---------------------------------------------------------------- TOML

type TomlTable<'i> = toml::de::DeTable<'i>;
type TomlValue<'i> = toml::de::DeValue<'i>;

/// Line of the deepest part of `path` that exists in the TOML text (the key's line, or the table
/// header that holds it); line 1 when not even the first step exists.
pub(crate) fn toml_line(text: &str, path: &FieldPath) -> usize {
    let Ok(doc) = TomlTable::parse(text) else { return 1 };
    let mut offset = None;
    let mut here: Option<&TomlValue> = None;
    let mut table: Option<&TomlTable> = Some(doc.get_ref());
    for seg in &path.0 {
        match (seg, table, here) {
            (Seg::Key(k), Some(t), _) => {
                let Some((key, value)) = t.iter().find(|(key, _)| key.get_ref().as_ref() == k.as_str()) else { break };
                offset = Some(key.span().start);
                here = Some(value.get_ref());
            }
            (Seg::Index(n), _, Some(TomlValue::Array(a))) => {
                let Some(elem) = a.get(*n) else { break };
                offset = Some(elem.span().start);
                here = Some(elem.get_ref());
            }
            _ => break,
        }
        table = match here {
            Some(TomlValue::Table(t)) => Some(t),
            _ => None,
        };
    }
    offset.map(|o| line_at(text, o)).unwrap_or(1)
}

/// The path of the deepest key whose name or value covers `offset`: turns the span of a serde error
/// into the field it is about. Empty when the text is not even valid TOML.
pub(crate) fn toml_path_at(text: &str, offset: usize) -> FieldPath {
    let Ok(doc) = TomlTable::parse(text) else { return FieldPath::default() };
    let mut best = FieldPath::default();
    toml_walk(doc.get_ref(), &FieldPath::default(), offset, &mut best);
    best
}

fn covers(span: &std::ops::Range<usize>, offset: usize) -> bool {
    span.start <= offset && (offset < span.end || span.start == span.end)
}

fn toml_walk(table: &TomlTable, at: &FieldPath, offset: usize, best: &mut FieldPath) {
    for (key, value) in table.iter() {
        let here = at.child(key.get_ref().as_ref());
        if (covers(&key.span(), offset) || covers(&value.span(), offset)) && here.0.len() > best.0.len() {
            *best = here.clone();
        }
        toml_walk_value(value.get_ref(), &here, offset, best);
    }
}

fn toml_walk_value(value: &TomlValue, at: &FieldPath, offset: usize, best: &mut FieldPath) {
    match value {
        TomlValue::Table(t) => toml_walk(t, at, offset, best),
        TomlValue::Array(a) => {
            for (i, elem) in a.iter().enumerate() {
                let here = at.child(i);
                if covers(&elem.span(), offset) && here.0.len() > best.0.len() {
                    *best = here.clone();
                }
                toml_walk_value(elem.get_ref(), &here, offset, best);
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------- JSON

/// Line of the deepest part of `path` that exists in the (valid) JSON text: the line of the key for
/// an object member, of the element for an array item; line 1 for the document itself.
pub(crate) fn json_line(text: &str, path: &FieldPath) -> usize {
    let mut scan = JsonScan { s: text.as_bytes(), i: 0 };
    scan.find(&path.0).map(|o| line_at(text, o)).unwrap_or(1)
}

struct JsonScan<'a> {
    s: &'a [u8],
    i: usize,
}

impl JsonScan<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    /// A string token, decoded (keys may use escapes); the cursor ends after the closing quote.
    fn string(&mut self) -> Option<String> {
        let start = self.i;
        self.i += 1;
        while let Some(b) = self.peek() {
            self.i += 1;
            match b {
                b'\\' => self.i += 1,
                b'"' => break,
                _ => {}
            }
        }
        let raw = std::str::from_utf8(self.s.get(start..self.i)?).ok()?;
        serde_json::from_str(raw).ok()
    }

    fn skip_value(&mut self) {
        self.ws();
        match self.peek() {
            Some(b'"') => {
                self.string();
            }
            Some(open @ (b'{' | b'[')) => {
                let close = if open == b'{' { b'}' } else { b']' };
                self.i += 1;
                loop {
                    self.ws();
                    match self.peek() {
                        None => return,
                        Some(c) if c == close => {
                            self.i += 1;
                            return;
                        }
                        Some(b',') => self.i += 1,
                        Some(b'"') if open == b'{' => {
                            self.string();
                            self.ws();
                            self.i += 1; // ':'
                            self.skip_value();
                        }
                        Some(_) => self.skip_value(),
                    }
                }
            }
            Some(_) => {
                while matches!(self.peek(), Some(c) if !matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')) {
                    self.i += 1;
                }
            }
            None => {}
        }
    }

    /// Offset of the deepest part of `path` found from the value at the cursor; None when not even
    /// its first step exists here.
    fn find(&mut self, path: &[Seg]) -> Option<usize> {
        self.ws();
        let Some(seg) = path.first() else { return Some(self.i) };
        match (seg, self.peek()) {
            (Seg::Key(want), Some(b'{')) => {
                self.i += 1;
                loop {
                    self.ws();
                    match self.peek() {
                        Some(b'"') => {
                            let key_at = self.i;
                            let key = self.string();
                            self.ws();
                            self.i += 1; // ':'
                            if key.as_deref() == Some(want.as_str()) {
                                if path.len() == 1 {
                                    return Some(key_at);
                                }
                                return Some(self.find(&path[1..]).unwrap_or(key_at));
                            }
                            self.skip_value();
                        }
                        Some(b',') => self.i += 1,
                        _ => return None,
                    }
                }
            }
            (Seg::Index(want), Some(b'[')) => {
                self.i += 1;
                let mut n = 0;
                loop {
                    self.ws();
                    match self.peek() {
                        Some(b']') | None => return None,
                        Some(b',') => self.i += 1,
                        Some(_) if n == *want => {
                            let elem_at = self.i;
                            return Some(self.find(&path[1..]).unwrap_or(elem_at));
                        }
                        Some(_) => {
                            self.skip_value();
                            n += 1;
                        }
                    }
                }
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JSON: &str = r#"{
  "metadata": {"name": "x",
    "timeout": 5},
  "actions": [
    {"action": "a", "input": {}},
    {
      "action": "b",
      "input": {
        "m\u0073g": {"type": "string"}
      },
      "aggregate": [{"function": "sum", "args": ["n", {"format": "%d"}]}]
    }
  ]
}"#;

    #[test]
    fn json_lines_follow_the_path() {
        assert_eq!(json_line(JSON, &fpath![]), 1);
        assert_eq!(json_line(JSON, &fpath!["metadata"]), 2);
        assert_eq!(json_line(JSON, &fpath!["metadata", "timeout"]), 3);
        assert_eq!(json_line(JSON, &fpath!["actions", 1]), 6);
        assert_eq!(json_line(JSON, &fpath!["actions", 1, "action"]), 7);
        assert_eq!(json_line(JSON, &fpath!["actions", 1, "input", "msg", "type"]), 9, "escaped keys are decoded");
        assert_eq!(json_line(JSON, &fpath!["actions", 1, "aggregate", 0, "args", 1, "format"]), 11);
        // Missing parts fall back to the deepest part that exists.
        assert_eq!(json_line(JSON, &fpath!["metadata", "version"]), 2);
        assert_eq!(json_line(JSON, &fpath!["actions", 7]), 4);
    }

    const TOML: &str = "[metadata]\nname = \"x\"\n\n[actions.echo]\ndescription = \"d\"\n[actions.echo.input.msg]\nprompt = \"p\"\n[[actions.echo.aggregate]]\noutput = \"a\"\n[[actions.echo.aggregate]]\noutput = \"b\"\n";

    #[test]
    fn toml_lines_follow_the_path() {
        assert_eq!(toml_line(TOML, &fpath!["metadata", "name"]), 2);
        assert_eq!(toml_line(TOML, &fpath!["metadata", "version"]), 1);
        assert_eq!(toml_line(TOML, &fpath!["actions", "echo"]), 4);
        assert_eq!(toml_line(TOML, &fpath!["actions", "echo", "input", "msg", "prompt"]), 7);
        assert_eq!(toml_line(TOML, &fpath!["actions", "echo", "input", "msg", "validation"]), 6);
        assert_eq!(toml_line(TOML, &fpath!["actions", "echo", "aggregate", 1, "output"]), 11);
        assert_eq!(toml_line(TOML, &fpath!["nothing"]), 1);
    }

    #[test]
    fn toml_offsets_map_back_to_fields() {
        let at = TOML.find("\"p\"").unwrap();
        assert_eq!(toml_path_at(TOML, at).to_string(), "actions.echo.input.msg.prompt");
        let at = TOML.rfind("\"b\"").unwrap();
        assert_eq!(toml_path_at(TOML, at).to_string(), "actions.echo.aggregate[1].output");
    }
}
