//! Text made to fit a width (cut with a mark, padded to a column), and times as the console
//! shows them.

use std::time::{SystemTime, UNIX_EPOCH};

use ratatui::text::{Line, Span};

/// `text` in at most `width` characters; when it does not fit, its end gives way to `mark`.
pub fn cut(text: &str, width: usize, mark: char) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut out: String = text.chars().take(width.saturating_sub(1)).collect();
    out.push(mark);
    out
}

/// `text` cut or padded to exactly `w` columns; a cut ends in `…`.
pub fn fit(text: &str, w: usize) -> String {
    let text = if w == 0 { String::new() } else { cut(text, w, '…') };
    format!("{text:<w$}")
}

/// [`fit`], right-aligned when it is not cut.
pub fn rfit(text: &str, w: usize) -> String {
    if text.chars().count() <= w { format!("{text:>w$}") } else { fit(text, w) }
}

/// `spans` as one line of at most `width` characters; when they do not fit, the last one that
/// does is cut and ends in `…` (the spans after it are dropped).
pub fn fit_line(spans: Vec<Span<'static>>, width: usize) -> Line<'static> {
    let total: usize = spans.iter().map(|s| s.content.chars().count()).sum();
    if total <= width {
        return Line::from(spans);
    }
    let mut out = Vec::new();
    let mut room = width;
    for span in spans {
        let n = span.content.chars().count();
        if n < room {
            room -= n;
            out.push(span);
            continue;
        }
        // This span reaches the edge: it ends in the ellipsis.
        if room > 0 {
            let kept: String = span.content.chars().take(room - 1).chain(['…']).collect();
            out.push(Span::styled(kept, span.style));
        }
        break;
    }
    Line::from(out)
}

/// A reply's round trip: `12.3 ms`.
pub fn ms_text(ms: f64) -> String {
    format!("{ms:.1} ms")
}

/// The first line of a (possibly multi-line) message.
pub fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or_default()
}

/// `HH:MM:SS UTC`. UTC because the local offset cannot be read soundly from a multi-threaded
/// process without a time-zone database crate.
pub fn clock_text(now: SystemTime) -> String {
    let ms = now.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
    format!("{} UTC", fleet_client::format::utc_time_ms(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_and_fit() {
        assert_eq!(cut("abcdef", 4, '~'), "abc~");
        assert_eq!(cut("abc", 4, '~'), "abc");
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(fit("ab", 4), "ab  ");
        assert_eq!(fit("ab", 0), "");
        assert_eq!(rfit("ab", 4), "  ab");
        assert_eq!(rfit("abcdef", 4), "abc…");
    }

    #[test]
    fn a_line_of_spans_is_cut_with_an_ellipsis() {
        let spans = || vec![Span::raw("abc"), Span::raw("def"), Span::raw("ghi")];
        assert_eq!(fit_line(spans(), 9).to_string(), "abcdefghi");
        assert_eq!(fit_line(spans(), 5).to_string(), "abcd…");
        assert_eq!(fit_line(spans(), 6).to_string(), "abcde…");
        assert_eq!(fit_line(spans(), 0).to_string(), "");
    }
}
