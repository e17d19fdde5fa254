//! The filter language's lexer and recursive-descent parser: `-S` compound expressions and `-F`
//! fact terms into [`FilterExpr`] trees, with the column of every error.

use super::*;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LParen,
    RParen,
    Not,
    And,
    Or,
    Op(Op, bool), // bool: the operator was `=~`
    Word(String),
    Quoted(String),
    Regex(String),
}

struct Lexer<'a> {
    input: &'a str,
    chars: Vec<(usize, char)>,
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn new(input: &'a str) -> Self {
        Lexer { input, chars: input.char_indices().collect(), pos: 0 }
    }

    /// 1-based column (in characters) of the char at index `i`.
    fn col(&self, i: usize) -> usize {
        i + 1
    }

    fn tokens(mut self) -> Result<Vec<(usize, Tok)>, FilterError> {
        let mut out = Vec::new();
        let mut after_op = false;
        while self.pos < self.chars.len() {
            let (_, c) = self.chars[self.pos];
            let col = self.col(self.pos);
            if c.is_whitespace() {
                self.pos += 1;
                continue;
            }
            let tok = match c {
                '(' => {
                    self.pos += 1;
                    Tok::LParen
                }
                ')' => {
                    self.pos += 1;
                    Tok::RParen
                }
                '!' if self.peek(1) != Some('=') => {
                    self.pos += 1;
                    Tok::Not
                }
                '=' | '!' | '<' | '>' => self.op()?,
                '/' => self.regex()?,
                '"' | '\'' => self.quoted(c)?,
                _ => {
                    let w = self.word(after_op);
                    match w.to_ascii_lowercase().as_str() {
                        "and" if !after_op => Tok::And,
                        "or" if !after_op => Tok::Or,
                        "not" if !after_op => Tok::Not,
                        _ => Tok::Word(w),
                    }
                }
            };
            after_op = matches!(tok, Tok::Op(..));
            out.push((col, tok));
        }
        Ok(out)
    }

    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.pos + ahead).map(|&(_, c)| c)
    }

    fn op(&mut self) -> Result<Tok, FilterError> {
        let c = self.chars[self.pos].1;
        let next = self.peek(1);
        let (op, len, tilde) = match (c, next) {
            ('=', Some('=')) => (Op::Eq, 2, false),
            ('=', Some('~')) => (Op::Eq, 2, true),
            ('=', _) => (Op::Eq, 1, false),
            ('!', Some('=')) => (Op::Ne, 2, false),
            ('<', Some('=')) => (Op::Le, 2, false),
            ('<', _) => (Op::Lt, 1, false),
            ('>', Some('=')) => (Op::Ge, 2, false),
            ('>', _) => (Op::Gt, 1, false),
            _ => return Err(FilterError::new(self.input, self.col(self.pos), format!("unexpected '{c}'"))),
        };
        self.pos += len;
        Ok(Tok::Op(op, tilde))
    }

    fn regex(&mut self) -> Result<Tok, FilterError> {
        let start = self.pos;
        self.pos += 1;
        let mut pat = String::new();
        while self.pos < self.chars.len() {
            let c = self.chars[self.pos].1;
            if c == '\\' && self.peek(1) == Some('/') {
                pat.push('/');
                self.pos += 2;
                continue;
            }
            if c == '/' {
                self.pos += 1;
                compile_regex(&pat, self.input, self.col(start) + 1)?;
                return Ok(Tok::Regex(pat));
            }
            pat.push(c);
            self.pos += 1;
        }
        Err(FilterError::new(self.input, self.col(start), "regex is missing its closing '/'"))
    }

    fn quoted(&mut self, q: char) -> Result<Tok, FilterError> {
        let start = self.pos;
        self.pos += 1;
        let mut s = String::new();
        while self.pos < self.chars.len() {
            let c = self.chars[self.pos].1;
            self.pos += 1;
            if c == q {
                return Ok(Tok::Quoted(s));
            }
            s.push(c);
        }
        Err(FilterError::new(self.input, self.col(start), "unterminated quoted string"))
    }

    fn word(&mut self, after_op: bool) -> String {
        let mut w = String::new();
        while self.pos < self.chars.len() {
            let c = self.chars[self.pos].1;
            let stop = c.is_whitespace() || c == '(' || c == ')' || (!after_op && matches!(c, '=' | '!' | '<' | '>'));
            if stop {
                break;
            }
            w.push(c);
            self.pos += 1;
        }
        w
    }
}

struct Parser<'a> {
    input: &'a str,
    toks: Vec<(usize, Tok)>,
    pos: usize,
    depth: usize,
}

/// Deep enough for any sane expression, shallow enough that recursion cannot blow the stack.
const MAX_NESTING: usize = 64;

impl<'a> Parser<'a> {
    fn end_col(&self) -> usize {
        self.input.chars().count() + 1
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(_, t)| t)
    }

    fn col(&self) -> usize {
        self.toks.get(self.pos).map(|(c, _)| *c).unwrap_or_else(|| self.end_col())
    }

    fn err(&self, msg: impl Into<String>) -> FilterError {
        FilterError::new(self.input, self.col(), msg)
    }

    fn expr(&mut self) -> Result<FilterExpr, FilterError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(self.err(format!("nested deeper than {MAX_NESTING} levels")));
        }
        let mut list = vec![self.and()?];
        while self.peek() == Some(&Tok::Or) {
            self.pos += 1;
            list.push(self.and()?);
        }
        self.depth -= 1;
        Ok(if list.len() == 1 { list.pop().unwrap() } else { FilterExpr::Or(list) })
    }

    fn and(&mut self) -> Result<FilterExpr, FilterError> {
        let mut list = vec![self.unary()?];
        while self.peek() == Some(&Tok::And) {
            self.pos += 1;
            list.push(self.unary()?);
        }
        Ok(if list.len() == 1 { list.pop().unwrap() } else { FilterExpr::And(list) })
    }

    fn unary(&mut self) -> Result<FilterExpr, FilterError> {
        match self.peek() {
            Some(Tok::Not) => {
                self.pos += 1;
                self.depth += 1;
                if self.depth > MAX_NESTING {
                    return Err(self.err(format!("nested deeper than {MAX_NESTING} levels")));
                }
                let inner = self.unary()?;
                self.depth -= 1;
                Ok(FilterExpr::Not(Box::new(inner)))
            }
            Some(Tok::LParen) => {
                self.pos += 1;
                let e = self.expr()?;
                if self.peek() != Some(&Tok::RParen) {
                    return Err(self.err("expected ')'"));
                }
                self.pos += 1;
                Ok(e)
            }
            Some(_) => self.term(),
            None => Err(self.err("expected a filter term")),
        }
    }

    fn value(&mut self) -> Result<FactValue, FilterError> {
        let col = self.col();
        let v = match self.toks.get(self.pos).map(|(_, t)| t.clone()) {
            Some(Tok::Word(w)) | Some(Tok::Quoted(w)) => FactValue::Text(w),
            Some(Tok::Regex(r)) => FactValue::Regex(Matcher::Regex(compile_regex(&r, self.input, col + 1)?)),
            _ => return Err(self.err("expected a value after the operator")),
        };
        self.pos += 1;
        Ok(v)
    }

    fn term(&mut self) -> Result<FilterExpr, FilterError> {
        let col = self.col();
        let first = self.toks[self.pos].1.clone();
        self.pos += 1;
        if let (Tok::Word(name), Some((lcol, Tok::LParen))) = (&first, self.toks.get(self.pos))
            && *lcol == col + name.chars().count()
        {
            return self.data_term(name.clone(), col);
        }
        let key = match first {
            Tok::Regex(r) => return Ok(FilterExpr::Class(Matcher::Regex(compile_regex(&r, self.input, col + 1)?))),
            Tok::Word(w) | Tok::Quoted(w) => w,
            Tok::RParen => return Err(FilterError::new(self.input, col, "unexpected ')'")),
            Tok::And | Tok::Or => return Err(FilterError::new(self.input, col, "expected a filter term before 'and'/'or'")),
            Tok::Op(..) => return Err(FilterError::new(self.input, col, "expected a fact name before the operator")),
            Tok::Not | Tok::LParen => unreachable!("handled by unary"),
        };
        let Some(Tok::Op(op, tilde)) = self.peek().cloned() else {
            // A bare word is a class, as in MCollective's compound filters.
            return Ok(FilterExpr::Class(Matcher::Exact(key)));
        };
        self.pos += 1;
        let value = self.value()?;
        let value = match (tilde, value) {
            (true, FactValue::Text(t)) => FactValue::Regex(Matcher::Regex(compile_regex(&t, self.input, col)?)),
            (_, v) => v,
        };
        let lower = key.to_ascii_lowercase();
        let special = matches!(lower.as_str(), "identity" | "class" | "agent");
        if special {
            if !matches!(op, Op::Eq | Op::Ne) {
                return Err(FilterError::new(self.input, col, format!("{lower} takes only = or !=")));
            }
            let m = match value {
                FactValue::Text(t) => Matcher::Exact(t),
                FactValue::Regex(m) => m,
            };
            let e = match lower.as_str() {
                "identity" => FilterExpr::Identity(m),
                "class" => FilterExpr::Class(m),
                _ => FilterExpr::Agent(m),
            };
            return Ok(if op == Op::Ne { FilterExpr::Not(Box::new(e)) } else { e });
        }
        if key.is_empty() {
            return Err(FilterError::new(self.input, col, "empty fact name"));
        }
        // `metric.NAME` is a node's live metric, not a fact: the data term `metric().NAME`.
        if let Some(field) = key.strip_prefix(METRIC_PREFIX).filter(|f| !f.is_empty()) {
            return Ok(FilterExpr::Data(DataTerm { plugin: "metric".into(), arg: None, field: field.to_string(), op, value }));
        }
        Ok(FilterExpr::Fact { key, op, value })
    }
}

impl Parser<'_> {
    /// `PLUGIN(ARG).FIELD OP VALUE`, the name already read and the `(` next.
    fn data_term(&mut self, plugin: String, col: usize) -> Result<FilterExpr, FilterError> {
        if !is_plugin_name(&plugin) {
            return Err(FilterError::new(self.input, col, format!("'{plugin}' is not a data function name (lowercase a-z, 0-9 and _)")));
        }
        self.pos += 1; // (
        let arg = match self.peek().cloned() {
            Some(Tok::Quoted(a)) | Some(Tok::Word(a)) => {
                self.pos += 1;
                Some(a)
            }
            Some(Tok::Regex(r)) => {
                self.pos += 1;
                Some(format!("/{r}/"))
            }
            _ => None,
        };
        if self.peek() != Some(&Tok::RParen) {
            return Err(self.err(format!("expected ')' to close {plugin}(, e.g. {plugin}(\"ARGUMENT\")")));
        }
        let rparen_col = self.col();
        self.pos += 1;
        let example = "e.g. fstat(\"/etc/motd\").present=true";
        let field = match self.toks.get(self.pos) {
            Some((c, Tok::Word(w))) if *c == rparen_col + 1 && w.starts_with('.') && w.len() > 1 => w[1..].to_string(),
            _ => return Err(self.err(format!("expected .FIELD right after {plugin}(...) ({example})"))),
        };
        self.pos += 1;
        let Some(Tok::Op(op, tilde)) = self.peek().cloned() else {
            return Err(self.err(format!("expected an operator after {plugin}(...).{field} ({example})")));
        };
        self.pos += 1;
        let vcol = self.col();
        let value = match (tilde, self.value()?) {
            (true, FactValue::Text(t)) => FactValue::Regex(Matcher::Regex(compile_regex(&t, self.input, vcol)?)),
            (_, v) => v,
        };
        Ok(FilterExpr::Data(DataTerm { plugin, arg, field, op, value }))
    }
}

/// A data function's name: lowercase letters, digits and `_`, starting with a letter.
fn is_plugin_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase()) && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Parses a compound (`-S`) expression.
pub fn parse_compound(input: &str) -> Result<FilterExpr, FilterError> {
    let toks = Lexer::new(input).tokens()?;
    if toks.is_empty() {
        return Err(FilterError::new(input, 1, "empty expression"));
    }
    let mut p = Parser { input, toks, pos: 0, depth: 0 };
    let e = p.expr()?;
    if p.pos < p.toks.len() {
        return Err(p.err("unexpected input after the expression (missing 'and'/'or'?)"));
    }
    Ok(e)
}

/// A term on this key prefix compares a node's latest metric sample (`metric.load1>8`), which
/// only the node knows: it is the data term `metric().load1>8`, and so needs node evaluation.
pub const METRIC_PREFIX: &str = "metric.";

/// Parses one `-F` fact term: `key=value`, `key=/regex/`, `key>=3`, ... (`metric.NAME` too).
pub fn parse_fact_term(input: &str) -> Result<FilterExpr, FilterError> {
    let e = parse_compound(input)?;
    match e {
        FilterExpr::Fact { .. } => Ok(e),
        FilterExpr::Data(ref t) if t.plugin == "metric" && t.arg.is_none() => Ok(e),
        _ => Err(FilterError::new(input, 1, "expected KEY=VALUE (or KEY OP VALUE with == != < <= > >=)")),
    }
}
