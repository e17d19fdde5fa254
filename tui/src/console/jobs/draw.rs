//! Drawing the Jobs view: a status line, the jobs across the fleet, the selected job on each node,
//! and the output view. Narrow terminals get fewer columns; a short one only the focused list.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use fleet_client::format::{utc_datetime, utc_time_ms};
use fleet_client::jobs::{JobRow, state_counts};
use fleet_client::nodeset;

use super::{JobsPanel, Pane};
use crate::console::action::Scope;
use crate::console::theme::Theme;
use crate::console::widgets::block;
use crate::console::widgets::list::scroll_top;
use crate::console::widgets::text::{fit, rfit};

/// Below this width the lists drop their time columns to the clock alone.
const WIDE: u16 = 110;
/// Below this height only the focused list is shown.
const TALL: u16 = 12;

/// A time for a column: the clock when narrow, the date too when wide; `-` for none.
fn when(ms: u64, wide: bool) -> String {
    match ms {
        0 => "-".into(),
        ms if wide => utc_datetime(ms / 1000).trim_end_matches(" UTC").to_string(),
        ms => utc_time_ms(ms),
    }
}

/// The style of a job state word.
pub(crate) fn state_style(t: &Theme, state: &str) -> Style {
    match state {
        "ok" => t.status.ok.style(),
        "failed" | "cancelled" | "lost" => t.status.failed.style(),
        "running" => t.status.pending.style(),
        _ => t.label.style(),
    }
}

/// Rows of a list, the selected one marked and highlighted when its pane has the keys; the
/// header on top. Scrolls to keep the selection on screen.
pub(crate) fn draw_rows(frame: &mut Frame, area: Rect, t: &Theme, header: &str, rows: Vec<Line<'static>>, selected: usize, focused: bool) {
    let [head, body] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(area);
    frame.render_widget(Paragraph::new(Span::styled(fit(header, area.width as usize), t.table.header)), head);
    let visible = body.height as usize;
    let top = scroll_top(0, selected, visible, rows.len());
    let shown: Vec<Line> = rows
        .into_iter()
        .enumerate()
        .skip(top)
        .take(visible)
        .map(|(i, line)| {
            let marker = if i == selected { "> " } else { "  " };
            let mut spans = vec![Span::raw(marker)];
            spans.extend(line.spans);
            let line = Line::from(spans);
            if i == selected && focused { line.style(t.row.selected) } else { line }
        })
        .collect();
    frame.render_widget(Paragraph::new(shown), body);
}

impl JobsPanel {
    pub(super) fn render(&self, frame: &mut Frame, area: Rect) {
        if self.output.is_some() {
            self.draw_output(frame, area);
            return;
        }
        let [status, lists] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(area);
        frame.render_widget(Paragraph::new(self.status_line()), status);
        if lists.height < TALL {
            match self.pane {
                Pane::Jobs => self.draw_jobs(frame, lists),
                Pane::Nodes => self.draw_nodes(frame, lists),
            }
            return;
        }
        let jobs_height = (self.jobs().len() as u16 + 3).clamp(5, lists.height / 2);
        let [jobs, nodes] = Layout::vertical([Constraint::Length(jobs_height), Constraint::Min(0)]).areas(lists);
        self.draw_jobs(frame, jobs);
        self.draw_nodes(frame, nodes);
    }

    fn status_line(&self) -> Line<'static> {
        let t = &self.theme;
        let mut spans = Vec::new();
        match &self.listing {
            None if self.list_error.is_none() => spans.push(Span::styled("asking the nodes with the jobs agent ...", t.label)),
            None => {}
            Some(l) => {
                spans.push(Span::styled(format!("{} job(s) on {} node(s)", l.jobs.len(), l.answered), t.text));
                if let Some(at) = self.listed_at {
                    spans.push(Span::styled(format!("  at {} UTC", utc_time_ms(at)), t.label));
                }
                if self.scope != Scope::default() {
                    spans.push(Span::styled(format!("  in {}", self.scope.describe()), t.label));
                }
                if !l.no_reply.is_empty() {
                    spans.push(Span::styled(format!("  no reply: {}", nodeset::fold(&l.no_reply)), t.status.no_reply));
                }
            }
        }
        if let Some(e) = &self.list_error {
            spans.push(Span::styled(format!("  listing failed: {e}"), t.error));
        }
        Line::from(spans)
    }

    fn draw_jobs(&self, frame: &mut Frame, area: Rect) {
        let t = &self.theme;
        let pane = block::pane(t, " Jobs ", self.pane == Pane::Jobs);
        let inner = pane.inner(area);
        frame.render_widget(pane, area);
        if self.jobs().is_empty() {
            if self.listing.is_some() {
                let text = "No jobs on these nodes. Start one with: fleet job run AGENT ACTION k=v ...";
                frame.render_widget(Paragraph::new(Span::styled(text, t.label)), inner);
            }
            return;
        }
        let wide = area.width >= WIDE;
        let (tw, aw) = (if wide { 19 } else { 8 }, if wide { 22 } else { 16 });
        let mut header = format!("  {} {} {} ", fit("JOB", 22), fit("ACTION", aw), fit("NODES", 14));
        if wide {
            header.push_str(&format!("{} {} {} ", fit("CALLER", 10), fit("CREATED", tw), fit("NEXT RUN", tw)));
        }
        header.push_str("STATES");
        let rows = self
            .jobs()
            .iter()
            .map(|j| {
                let nodes: Vec<&str> = j.nodes.keys().map(String::as_str).collect();
                let mut spans = vec![
                    Span::styled(format!("{} ", fit(&j.id, 22)), t.text),
                    Span::styled(format!("{} ", fit(&format!("{}#{}", j.agent, j.action), aw)), t.text),
                    Span::styled(format!("{} ", fit(&nodeset::fold(&nodes), 14)), t.text),
                ];
                if wide {
                    spans.push(Span::styled(
                        format!("{} {} {} ", fit(&j.caller, 10), fit(&when(j.created, true), tw), fit(&when(j.next_run, true), tw)),
                        t.label,
                    ));
                }
                let mut states = state_counts(j.nodes.values());
                if self.cancelling.contains(&j.id) {
                    states.push_str(" (cancelling)");
                }
                spans.push(Span::styled(states, t.text));
                Line::from(spans)
            })
            .collect();
        draw_rows(frame, inner, t, &header, rows, self.job_index(), self.pane == Pane::Jobs);
    }

    fn draw_nodes(&self, frame: &mut Frame, area: Rect) {
        let t = &self.theme;
        let title = match self.selected() {
            Some(j) if j.every > 0 => format!(" Job {} on each node (every {} s) ", j.id, j.every),
            Some(j) => format!(" Job {} on each node ", j.id),
            None => " Nodes ".into(),
        };
        let pane = block::pane(t, title, self.pane == Pane::Nodes);
        let inner = pane.inner(area);
        frame.render_widget(pane, area);
        let rows = self.node_rows();
        if rows.is_empty() {
            return;
        }
        let wide = area.width >= WIDE;
        let tw = if wide { 19 } else { 8 };
        let header =
            format!("  {} {} {} {} {} LAST RUN", fit("NODE", 14), fit("STATE", 9), rfit("RUNS", 4), fit("STARTED", tw), fit("ENDED", tw));
        let lines = rows
            .iter()
            .map(|(node, row)| {
                let last = row.last.clone().unwrap_or_default();
                Line::from(vec![
                    Span::styled(format!("{} ", fit(node, 14)), t.text),
                    Span::styled(format!("{} ", fit(&row.state, 9)), state_style(t, &row.state)),
                    Span::styled(format!("{} ", rfit(&row.runs.to_string(), 4)), t.text),
                    Span::styled(format!("{} {} ", fit(&when(last.started, wide), tw), fit(&when(last.ended, wide), tw)), t.label),
                    Span::styled(last_run(row, wide), t.text),
                ])
            })
            .collect();
        draw_rows(frame, inner, t, &header, lines, self.node.min(rows.len() - 1), self.pane == Pane::Nodes);
    }

    fn draw_output(&self, frame: &mut Frame, area: Rect) {
        let t = &self.theme;
        let Some(out) = &self.output else { return };
        let pane = block::pane(t, format!(" Output of job {} ", out.id), true);
        let inner = pane.inner(area);
        frame.render_widget(pane, area);
        let lines: Vec<Line> = match &out.result {
            None => vec![Line::from(Span::styled("asking the nodes that have the job ...", t.label))],
            Some(Err(e)) => vec![Line::from(Span::styled(format!("output failed: {e}"), t.error))],
            Some(Ok(outputs)) if outputs.is_empty() => vec![Line::from(Span::styled("no node answered", t.label))],
            Some(Ok(outputs)) => {
                let mut lines = Vec::new();
                for o in outputs {
                    lines.push(Line::from(vec![Span::styled(o.node.clone(), t.title), Span::styled(format!("  {}", o.headline), t.label)]));
                    let text = if o.data.is_null() {
                        "(no output)".to_string()
                    } else {
                        serde_json::to_string_pretty(&o.data).unwrap_or_default()
                    };
                    lines.extend(text.lines().map(|l| Line::from(Span::styled(format!("   {l}"), t.text))));
                    lines.push(Line::raw(""));
                }
                lines
            }
        };
        let scroll = out.scroll.min(lines.len().saturating_sub(inner.height as usize));
        frame.render_widget(Paragraph::new(lines).scroll((scroll as u16, 0)), inner);
    }
}

/// The last run in words: `ok`, `failed: exit 3`, `next run 14:30:00`, or nothing yet.
fn last_run(row: &JobRow, wide: bool) -> String {
    let last = row.last.clone().unwrap_or_default();
    match (last.status.as_str(), row.state.as_str()) {
        ("", "scheduled" | "queued") => format!("next run {}", when(row.next_run, wide)),
        ("", _) => String::new(),
        (status, _) if last.message.is_empty() || last.message == "OK" => status.to_string(),
        (status, _) => format!("{status}: {}", last.message),
    }
}
