//! Drawing the Concat view: the targets; an open target's nodes with their state (and, on a wide
//! terminal, the selected node's diff beside them); one node's diff on its own.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use fleet_client::concat::{NodeResult, State};
use fleet_client::nodeset;

use super::{ConcatView, Opened};
use crate::console::action::Scope;
use crate::console::jobs::draw_rows;
use crate::console::theme::Theme;
use crate::console::widgets::block;
use crate::console::widgets::text::fit;

/// From this width the selected node's diff is shown beside the node list.
const SIDE_BY_SIDE: u16 = 120;

/// A node's state in a word or three.
fn state_word(state: State, dry_run: bool) -> &'static str {
    match (state, dry_run) {
        (State::Changed, true) => "would change",
        (State::Changed, false) => "changed",
        (State::AttributesOnly, _) => "attributes",
        (State::InSync, _) => "in sync",
        (State::Failed, _) => "failed",
    }
}

/// What the state word does not say: the error, the owner/group/mode changes, or how many lines
/// the diff adds and removes (and whether the file is new, and how a notify went).
fn detail(r: &NodeResult) -> String {
    match r.state {
        State::Failed => r.error.clone(),
        State::AttributesOnly => r.attributes.join(", "),
        State::InSync => String::new(),
        State::Changed => {
            let count = |sign: char, header: &str| r.diff.lines().filter(|l| l.starts_with(sign) && !l.starts_with(header)).count();
            // The headline after its first word says whether the file is new and how a notify went.
            let headline = r.headline(false);
            format!("+{} -{} line(s){}", count('+', "+++"), count('-', "---"), headline.trim_start_matches("changed"))
        }
    }
}

fn state_style(t: &Theme, state: State) -> Style {
    match state {
        State::Changed | State::AttributesOnly => t.status.pending.style(),
        State::InSync => t.status.ok.style(),
        State::Failed => t.status.failed.style(),
    }
}

/// A node's diff as colored lines: additions, removals and hunk headers apart; the owner, group
/// and mode changes and the node's error above it.
fn diff_lines(t: &Theme, r: &NodeResult) -> Vec<Line<'static>> {
    let mut lines: Vec<Line> = r.attributes.iter().map(|a| Line::from(Span::styled(a.clone(), t.status.pending))).collect();
    if !r.error.is_empty() {
        lines.push(Line::from(Span::styled(r.error.clone(), t.error)));
    }
    for l in r.diff.lines() {
        let style = if l.starts_with("+++") || l.starts_with("---") {
            t.title.style()
        } else if l.starts_with('+') {
            t.status.ok.style()
        } else if l.starts_with('-') {
            t.status.failed.style()
        } else if l.starts_with("@@") {
            t.table.header.style()
        } else {
            t.text.style()
        };
        lines.push(Line::from(Span::styled(l.to_string(), style)));
    }
    if lines.is_empty() {
        lines.push(Line::from(Span::styled("no difference: the file is as its fragments make it", t.label)));
    }
    lines
}

impl ConcatView {
    pub(super) fn render(&self, frame: &mut Frame, area: Rect) {
        let [status, body] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(area);
        frame.render_widget(Paragraph::new(self.status_line()), status);
        match &self.opened {
            None => self.draw_targets(frame, body),
            Some(o) if o.diff.is_some() => self.draw_diff(frame, body, o),
            Some(o) if body.width >= SIDE_BY_SIDE => {
                let [nodes, diff] = Layout::horizontal([Constraint::Percentage(45), Constraint::Min(0)]).areas(body);
                self.draw_nodes(frame, nodes, o);
                self.draw_diff(frame, diff, o);
            }
            Some(o) => self.draw_nodes(frame, body, o),
        }
    }

    fn status_line(&self) -> Line<'static> {
        let t = &self.theme;
        let scope = if self.scope == Scope::default() { String::new() } else { format!("  in {}", self.scope.describe()) };
        let Some(o) = &self.opened else {
            return match &self.targets {
                None => Line::from(Span::styled("asking the nodes with the concat agent for their targets ...", t.label)),
                Some(Err(e)) => Line::from(Span::styled(format!("listing the targets failed: {e}"), t.error)),
                Some(Ok(rows)) => Line::from(vec![
                    Span::styled(format!("{} target(s)", rows.len()), t.text),
                    Span::styled(format!("{scope}  enter runs a dry run"), t.label),
                ]),
            };
        };
        match &o.outcome {
            None if o.dry_run => Line::from(Span::styled(format!("{}: dry run on the nodes ...", o.target), t.label)),
            None => Line::from(Span::styled(format!("{}: building ...", o.target), t.label)),
            Some(Err(e)) => Line::from(Span::styled(format!("{}: {e}", o.target), t.error)),
            Some(Ok(out)) => {
                let note = if o.dry_run { " (dry run: nothing written)" } else { "" };
                Line::from(vec![
                    Span::styled(format!("{}: ", o.target), t.title),
                    Span::styled(format!("{}{note}", out.summary.line(o.dry_run)), t.text),
                    Span::styled(scope, t.label),
                ])
            }
        }
    }

    fn draw_targets(&self, frame: &mut Frame, area: Rect) {
        let t = &self.theme;
        let pane = block::pane(t, " Concat: targets ", true);
        let inner = pane.inner(area);
        frame.render_widget(pane, area);
        let rows = self.target_rows();
        if rows.is_empty() {
            if matches!(self.targets, Some(Ok(_))) {
                let text = "No targets here. Add fragments with: fleet concat add TARGET NAME --content TEXT";
                frame.render_widget(Paragraph::new(Span::styled(text, t.label)), inner);
            }
            return;
        }
        let width = (inner.width as usize).saturating_sub(2);
        let target_w = rows.iter().map(|r| r.target.chars().count()).max().unwrap_or(6).clamp(6, width.saturating_sub(16).max(6));
        let header = format!("  {} NODES", fit("TARGET", target_w));
        // The count first: a long node set may be cut at the edge.
        let lines = rows
            .iter()
            .map(|r| {
                let nodes: Vec<&str> = r.nodes.iter().map(String::as_str).collect();
                Line::from(vec![
                    Span::styled(format!("{} ", fit(&r.target, target_w)), t.text),
                    Span::styled(format!("{:>3}  {}", nodes.len(), nodeset::fold(&nodes)), t.label),
                ])
            })
            .collect();
        draw_rows(frame, inner, t, &header, lines, self.target.min(rows.len() - 1), true);
    }

    fn draw_nodes(&self, frame: &mut Frame, area: Rect, o: &Opened) {
        let t = &self.theme;
        let pane = block::pane(t, format!(" {} on each node ", o.target), true);
        let inner = pane.inner(area);
        frame.render_widget(pane, area);
        let results = self.results();
        let no_reply = match &o.outcome {
            Some(Ok(out)) => out.no_reply.as_slice(),
            _ => &[],
        };
        if results.is_empty() && no_reply.is_empty() {
            return;
        }
        let header = format!("  {} {} DETAIL", fit("NODE", 14), fit("STATE", 12));
        let mut lines: Vec<Line> = results
            .iter()
            .map(|(node, r)| {
                Line::from(vec![
                    Span::styled(format!("{} ", fit(node, 14)), t.text),
                    Span::styled(format!("{} ", fit(state_word(r.state, o.dry_run), 12)), state_style(t, r.state)),
                    Span::styled(detail(r), t.label),
                ])
            })
            .collect();
        lines.extend(
            no_reply
                .iter()
                .map(|n| Line::from(vec![Span::styled(format!("{} ", fit(n, 14)), t.text), Span::styled("no reply", t.status.no_reply)])),
        );
        draw_rows(frame, inner, t, &header, lines, o.node.min(results.len().saturating_sub(1)), o.diff.is_none());
    }

    fn draw_diff(&self, frame: &mut Frame, area: Rect, o: &Opened) {
        let t = &self.theme;
        let Some((node, result)) = self.selected_node() else {
            frame.render_widget(block::pane(t, " Diff ", false), area);
            return;
        };
        let pane = block::pane(t, format!(" Diff on {node}: {} ", state_word(result.state, o.dry_run)), o.diff.is_some());
        let inner = pane.inner(area);
        frame.render_widget(pane, area);
        let lines = diff_lines(t, result);
        let scroll = o.diff.unwrap_or(0).min(lines.len().saturating_sub(inner.height as usize));
        frame.render_widget(Paragraph::new(lines).scroll((scroll as u16, 0)), inner);
    }
}
