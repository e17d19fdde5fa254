//! Drawing the Xen panel: the status line, the dom0s with their load trend, the domUs of the
//! selected one, the migration history, and the destination and plan popups.

use fleet_client::format::{last_line, mib, utc_time_ms as hms};
use fleet_client::xen::PolicySource;
use fleet_client::xen::balancer::{self, Plan, Sample};
use fleet_protocol::DomainRow;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Sparkline, SparklineBar};

use super::{MoveOutcome, MovedBy, Pane, Popup, XenPanel};
use crate::console::action::Scope;
use crate::console::keys::Mode;
use crate::console::widgets::block;
use crate::console::widgets::list::scroll_top;
use crate::console::widgets::text::{fit, rfit};

impl XenPanel {
    /// Draws the panel in `area` (the Component's `draw`).
    pub(super) fn render(&self, frame: &mut Frame, area: Rect) {
        let t = &self.theme;
        let mut title = vec![Span::styled(" Xen ", t.title)];
        if let Some(sim) = self.simulated_label() {
            title.push(Span::styled(format!(" {sim} "), t.note));
        }
        if self.read_only {
            title.push(Span::styled(" read-only ", t.label));
        }
        let pane = Block::bordered().border_style(t.border_focused).title(Line::from(title));
        let inner = pane.inner(area);
        frame.render_widget(pane, area);
        if inner.height == 0 || inner.width == 0 {
            return;
        }
        let h = inner.height;
        let n0 = self.dom0s().len().max(1) as u16;
        let dom0_rows = n0.min((h / 3).max(2));
        // The domUs of the selected dom0 come first; the history has what is left, up to 10 rows.
        let domus_need = self.selected_domus().len().max(1) as u16 + 2;
        let history_room = h.saturating_sub(1 + dom0_rows + 1 + domus_need + 1).clamp(1, 10);
        let history_rows = (self.history.len() as u16).clamp(1, history_room);
        let [status, dom0s, domus, history] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(dom0_rows + 1),
            Constraint::Min(2),
            Constraint::Length(history_rows + 1),
        ])
        .areas(inner);
        frame.render_widget(Paragraph::new(self.status_line(status.width as usize)), status);
        self.draw_dom0s(frame, dom0s);
        self.draw_domus(frame, domus);
        self.draw_history(frame, history);
        match &self.popup {
            Some(Popup::Destinations { domu, from, choices, selected }) => {
                self.draw_destinations(frame, area, domu, from, choices, *selected)
            }
            Some(Popup::Plan { plan, scroll }) => self.draw_plan(frame, area, plan, *scroll),
            None => {}
        }
    }
}

/// A domU's state in a word, the most telling flag first.
pub fn state_word(r: &DomainRow) -> &'static str {
    if r.dying {
        "dying"
    } else if r.crashed() {
        "crashed"
    } else if r.shutdown {
        "shutdown"
    } else if r.paused {
        "paused"
    } else if r.running {
        "running"
    } else if r.blocked {
        "blocked"
    } else {
        "-"
    }
}

impl XenPanel {
    pub(super) fn simulated_label(&self) -> Option<String> {
        if let Some(note) = &self.simulated_note {
            return Some(note.clone());
        }
        self.dom0s().iter().any(|d| d.simulated).then(|| "simulated hypervisor".to_string())
    }

    fn key_label(&self, name: &str) -> String {
        self.keys.key_of(Mode::Xen, name).map(|k| k.to_string()).unwrap_or_else(|| "?".into())
    }

    fn status_line(&self, width: usize) -> Line<'static> {
        let t = &self.theme;
        if let Some(find) = &self.find {
            let text = find.input.text().to_string();
            let mut spans = vec![Span::styled("find domU: ", t.label), Span::styled(text.clone(), t.input), Span::styled("_", t.input)];
            match self.best_match(&text) {
                Some(p) => spans.push(Span::styled(format!("  -> {} on {}", p.domu.name, p.dom0), t.text)),
                None if !text.trim().is_empty() => spans.push(Span::styled("  not in this picture: enter asks every dom0", t.label)),
                None => {}
            }
            return Line::from(spans);
        }
        let mut left = Vec::new();
        match &self.view {
            None if self.refresh_error.is_none() => left.push(Span::styled("asking the dom0s (nodes with the xen agent) ...", t.label)),
            None => {}
            Some(v) => {
                left.push(Span::styled(format!("{} dom0(s), {} domU(s)", v.dom0s.len(), v.domus.len()), t.text));
                if let Some(at) = self.refreshed_at {
                    left.push(Span::styled(format!("  at {} UTC", hms(at)), t.label));
                }
                if self.scope != Scope::default() {
                    left.push(Span::styled(format!("  in {}", self.scope.describe()), t.label));
                }
                if !v.no_reply.is_empty() {
                    left.push(Span::styled(format!("  no reply: {}", v.no_reply.join(", ")), t.status.no_reply));
                }
            }
        }
        if let Some(e) = &self.refresh_error {
            left.push(Span::styled(format!("  refresh failed: {e}"), t.error));
        }
        let policy = match &self.policy_source {
            PolicySource::Default => Span::styled("policy: defaults", t.label),
            PolicySource::File(p) => Span::styled(format!("policy: {}", p.display()), t.label),
            PolicySource::Invalid { .. } => Span::styled("policy: INVALID (b shows why)", t.error),
        };
        let used: usize = left.iter().map(|s| s.width()).sum();
        let room = width.saturating_sub(used);
        if policy.width() + 2 <= room {
            left.push(Span::raw(" ".repeat(room - policy.width())));
            left.push(policy);
        }
        Line::from(left)
    }

    fn draw_dom0s(&self, frame: &mut Frame, area: Rect) {
        let t = &self.theme;
        let width = area.width as usize;
        let dom0s = self.dom0s();
        let name_w = dom0s.iter().map(|d| d.name.chars().count()).max().unwrap_or(4).clamp(4, 20);
        // marker, name, load, trend, used, free, domUs, then the flag ("over 1.0 for 5.5 min")
        let fixed = 2 + name_w + 2 + 5 + 2 + 2 + 9 + 2 + 9 + 2 + 6 + 2;
        let trend_w = width.saturating_sub(fixed + 20).clamp(8, 60);
        let header = format!(
            "  {}  {}  {}  {}  {}  {}",
            fit("DOM0", name_w),
            rfit("LOAD", 5),
            fit(if trend_w >= 10 { "LOAD TREND" } else { "TREND" }, trend_w),
            rfit("MEM USED", 9),
            rfit("FREE", 9),
            fit("DOMUS", 6)
        );
        let [head, rows] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(area);
        frame.render_widget(Paragraph::new(Line::from(Span::styled(fit(&header, width), t.table.header))), head);
        if dom0s.is_empty() {
            if self.view.is_some() {
                let text = if self.scope == Scope::default() {
                    "  No dom0 answered: no node runs the xen agent.".to_string()
                } else {
                    format!("  No dom0 answered: no node with the xen agent in {}.", self.scope.describe())
                };
                frame.render_widget(Paragraph::new(Span::styled(text, t.label)), rows);
            }
            return;
        }
        let visible = rows.height as usize;
        let selected = self.dom0_index();
        let top = scroll_top(0, selected, visible, dom0s.len());
        let max = self.trends.values().flat_map(|v| v.iter().copied()).fold(self.policy.load_threshold * 2.0, f64::max);
        let no_reply = self.view.as_ref().map(|v| v.no_reply.as_slice()).unwrap_or(&[]);
        for (i, d) in dom0s.iter().enumerate().skip(top).take(visible) {
            let y = rows.y + (i - top) as u16;
            let line_area = Rect { x: rows.x, y, width: rows.width, height: 1 };
            let is_selected = i == selected;
            let base = if is_selected && self.pane == Pane::Dom0s { t.row.selected.style() } else { Style::default() };
            let over = d.load[0] > self.policy.load_threshold;
            let marker = if is_selected { "> " } else { "  " };
            let mut spans = vec![
                Span::styled(marker.to_string(), base),
                Span::styled(fit(&d.name, name_w), base.patch(t.xen.dom0.style())),
                Span::styled("  ", base),
            ];
            let answered = d.error.is_none() && !no_reply.contains(&d.name);
            if answered {
                let load_style = if over { t.xen.overloaded.style() } else { t.text.style() };
                spans.push(Span::styled(rfit(&format!("{:.2}", d.load[0]), 5), base.patch(load_style)));
            } else {
                spans.push(Span::styled(rfit("-", 5), base));
            }
            spans.push(Span::styled(format!("  {}  ", " ".repeat(trend_w)), base));
            let used = d.total_memory.saturating_sub(d.free_memory);
            let (used, free) = if d.total_memory > 0 { (mib(used), mib(d.free_memory)) } else { ("-".into(), "-".into()) };
            let count = if answered || d.domu_count > 0 { d.domu_count.to_string() } else { "-".into() };
            // `4/10` against a policy's limit; without a policy file there is no limit to show.
            let domus = match self.max_label() {
                Some(max) => format!("{count}/{max}"),
                None => count,
            };
            spans.push(Span::styled(format!("{}  {}  {}  ", rfit(&used, 9), rfit(&free, 9), fit(&domus, 6)), base.patch(t.text.style())));
            let flag = if let Some(e) = &d.error {
                Span::styled(format!("! {e}"), base.patch(t.status.failed.style()))
            } else if no_reply.contains(&d.name) {
                Span::styled("no reply", base.patch(t.status.no_reply.style()))
            } else if over {
                let over_for = self.obs.dom0s.get(&d.name).map(|s| over_since(s, self.policy.load_threshold)).unwrap_or(0);
                let threshold = balancer::fmt_load(self.policy.load_threshold);
                // One sample over says nothing about how long: no `for 0 s`.
                let text = if over_for < 1000 {
                    format!("over {threshold}")
                } else {
                    format!("over {threshold} for {}", balancer::fmt_duration(over_for))
                };
                Span::styled(text, base.patch(t.xen.overloaded.style()))
            } else {
                Span::styled("", base)
            };
            spans.push(flag);
            let used_w: usize = spans.iter().map(|s| s.width()).sum();
            if used_w < width {
                spans.push(Span::styled(" ".repeat(width - used_w), base));
            }
            frame.render_widget(Paragraph::new(Line::from(spans)), line_area);
            // The trend: the latest loads, scaled so the threshold sits at half height.
            let trend_x = rows.x + (2 + name_w + 2 + 5 + 2) as u16;
            if let Some(loads) = self.trends.get(&d.name)
                && trend_x < rows.x + rows.width
            {
                let w = (trend_w as u16).min(rows.x + rows.width - trend_x);
                let skip = loads.len().saturating_sub(w as usize);
                let bars: Vec<SparklineBar> = loads
                    .iter()
                    .skip(skip)
                    .map(|l| {
                        let bar = SparklineBar::from((l * 100.0).round() as u64);
                        if *l > self.policy.load_threshold { bar.style(Some(t.xen.overloaded.style())) } else { bar }
                    })
                    .collect();
                let spark = Sparkline::default().data(bars).max((max * 100.0).round() as u64).style(base.patch(t.status.ok.style()));
                frame.render_widget(spark, Rect { x: trend_x, y, width: w, height: 1 });
            }
        }
    }

    fn draw_domus(&self, frame: &mut Frame, area: Rect) {
        let t = &self.theme;
        let width = area.width as usize;
        let [title, head, rows] = Layout::vertical([Constraint::Length(1), Constraint::Length(1), Constraint::Min(0)]).areas(area);
        let Some(d) = self.selected_dom0() else {
            frame.render_widget(Paragraph::new(Span::styled("domUs", t.table.header)), title);
            return;
        };
        let domus = self.domus_on(&d.name);
        let mut title_spans = vec![
            Span::styled("domUs on ", t.label),
            Span::styled(d.name.clone(), t.xen.dom0),
            Span::styled(format!("  {}", self.of_max(domus.len())), t.label),
        ];
        if self.pane == Pane::Dom0s {
            title_spans.push(Span::styled(format!("   ({} to move in here)", self.key_label("domus")), t.label));
        }
        frame.render_widget(Paragraph::new(Line::from(title_spans)), title);
        let rest = 2 + 2 + 4 + 2 + 6 + 2 + 10 + 2 + 9 + 2 + 5 + 2 + 10;
        let name_w = domus.iter().map(|p| p.domu.name.chars().count()).max().unwrap_or(4).max(4).min(width.saturating_sub(rest).max(4));
        let header = format!(
            "  {}  {}  {}  {}  {}  {}  {}",
            fit("NAME", name_w),
            rfit("ID", 4),
            fit("STATE", 6),
            fit("FLAGS", 10),
            rfit("MEM", 9),
            rfit("VCPUS", 5),
            rfit("CPU TIME", 10)
        );
        frame.render_widget(Paragraph::new(Span::styled(fit(&header, width), t.table.header)), head);
        if let Some(e) = &d.error {
            frame.render_widget(Paragraph::new(Span::styled(format!("  {e}"), t.status.failed)), rows);
            return;
        }
        if domus.is_empty() {
            frame.render_widget(Paragraph::new(Span::styled("  no domU runs here", t.label)), rows);
            return;
        }
        let visible = rows.height as usize;
        let selected = self.domu_index();
        let top = scroll_top(0, selected, visible, domus.len());
        let lines: Vec<Line> = domus
            .iter()
            .enumerate()
            .skip(top)
            .take(visible)
            .map(|(i, p)| {
                let r = &p.domu;
                let is_selected = i == selected;
                let base = if is_selected && self.pane == Pane::Domus { t.row.selected.style() } else { Style::default() };
                let (flags, style) = match self.migrating(&r.name) {
                    Some(h) => (format!("-> {}", h.to), t.xen.migrating.style()),
                    None => {
                        let word = state_word(r);
                        let style = match word {
                            "paused" => t.xen.paused.style(),
                            "crashed" | "dying" => t.status.failed.style(),
                            _ => t.xen.domu.style(),
                        };
                        (word.to_string(), style)
                    }
                };
                let text = format!(
                    "{}{}  {}  {}  {}  {}  {}  {}",
                    if is_selected { "> " } else { "  " },
                    fit(&r.name, name_w),
                    rfit(&r.id.to_string(), 4),
                    fit(&r.state, 6),
                    fit(&flags, 10),
                    rfit(&mib(r.mem), 9),
                    rfit(&r.vcpus.to_string(), 5),
                    rfit(&format!("{:.1} s", r.cpu_time), 10)
                );
                Line::from(Span::styled(fit(&text, width), base.patch(style)))
            })
            .collect();
        frame.render_widget(Paragraph::new(lines), rows);
    }

    fn draw_history(&self, frame: &mut Frame, area: Rect) {
        let t = &self.theme;
        let width = area.width as usize;
        let [title, rows] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(area);
        let running = self.history.iter().filter(|h| h.outcome == MoveOutcome::Running).count();
        let mut spans = vec![Span::styled("Migrations", t.table.header)];
        if running > 0 {
            spans.push(Span::styled(format!("  {running} running"), t.xen.migrating));
        }
        frame.render_widget(Paragraph::new(Line::from(spans)), title);
        if self.history.is_empty() {
            frame.render_widget(Paragraph::new(Span::styled("  none made from this console yet", t.label)), rows);
            return;
        }
        let lines: Vec<Line> = self
            .history
            .iter()
            .rev()
            .take(rows.height as usize)
            .map(|h| {
                let (outcome, style) = match &h.outcome {
                    MoveOutcome::Running => ("migrating ...".to_string(), t.xen.migrating.style()),
                    MoveOutcome::Done { elapsed_s } => (format!("ok in {elapsed_s:.1} s"), t.status.ok.style()),
                    MoveOutcome::Failed(why) => (format!("FAILED: {}", last_line(why)), t.status.failed.style()),
                };
                let by = if h.by == MovedBy::Balancer { "  (balancer)" } else { "" };
                let head = format!("  {}  {}  {} -> {}  ", hms(h.at_ms), h.domu, h.from, h.to);
                let rest = width.saturating_sub(head.chars().count());
                Line::from(vec![Span::styled(head, t.text), Span::styled(fit(&format!("{outcome}{by}"), rest), style)])
            })
            .collect();
        frame.render_widget(Paragraph::new(lines), rows);
    }

    fn draw_destinations(&self, frame: &mut Frame, area: Rect, domu: &str, from: &str, choices: &[String], selected: usize) {
        let t = &self.theme;
        let rows: Vec<String> = choices.iter().map(|c| format!("{c}{}", self.dom0_brief(c))).collect();
        let key = |name: &str| self.keys.key_text(Mode::XenDestinations, name);
        let hint = format!("{} migrate there   {} cancel", key("select"), key("close"));
        let title = format!(" Migrate {domu} from {from} to ... ");
        let width = rows.iter().map(|r| r.chars().count() + 2).chain([hint.len(), title.len()]).max().unwrap_or(20) as u16 + 4;
        let popup = block::centered(area, width.min(area.width.saturating_sub(2)), choices.len() as u16 + 4);
        let frame_block = block::popup(t, t.border_focused, Span::styled(title, t.title));
        let inner = frame_block.inner(popup);
        frame.render_widget(Clear, popup);
        frame.render_widget(frame_block, popup);
        let mut lines: Vec<Line> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let style = if i == selected { t.row.selected.style() } else { t.popup.style() };
                Line::from(Span::styled(fit(&format!("{}{r}", if i == selected { "> " } else { "  " }), inner.width as usize), style))
            })
            .collect();
        lines.push(Line::raw(""));
        lines.push(Line::from(Span::styled(hint, t.label)));
        frame.render_widget(Paragraph::new(lines), inner);
    }

    fn draw_plan(&self, frame: &mut Frame, area: Rect, plan: &Plan, scroll: usize) {
        let t = &self.theme;
        let p = &self.policy;
        let samples = self.obs.dom0s.values().map(Vec::len).max().unwrap_or(0);
        let mut lines: Vec<Line> = Vec::new();
        let source = match &self.policy_source {
            PolicySource::Default => "default policy".to_string(),
            PolicySource::File(f) => format!("policy {}", f.display()),
            PolicySource::Invalid { file, .. } => format!("default policy ({} is invalid)", file.display()),
        };
        lines.push(Line::from(Span::styled(
            format!(
                "{source}: over {} for {} min moves a domU to a dom0 under {} with fewer than {} VMs; {samples} sample(s) seen",
                balancer::fmt_load(p.load_threshold),
                p.max_over,
                balancer::fmt_load(p.max_load_candidate),
                p.max_vm_per_host
            ),
            t.label,
        )));
        if let PolicySource::Invalid { error, .. } = &self.policy_source {
            lines.push(Line::from(Span::styled(error.clone(), t.error)));
        }
        lines.push(Line::raw(""));
        for l in fleet_client::xen::plan_lines(plan) {
            let style = if l.starts_with("Plan:") || l.starts_with("Dom0s:") || l.starts_with("Considered") {
                t.table.header.style()
            } else if l.ends_with("OVERLOADED") {
                t.xen.overloaded.style()
            } else if l.starts_with("  ") && l.trim_start().chars().next().is_some_and(|c| c.is_ascii_digit()) {
                t.xen.migrating.style()
            } else {
                t.popup.style()
            };
            lines.push(Line::from(Span::styled(l, style)));
        }
        // As large as the text, within the panel: width first, then the rows the wrapping takes.
        let widest = lines.iter().map(Line::width).max().unwrap_or(0) as u16;
        let width = (widest + 4).max(40).min(area.width.saturating_sub(4)).max(1);
        let text_w = width.saturating_sub(4).max(1) as usize;
        let rows: usize = lines.iter().map(|l| l.width().max(1).div_ceil(text_w)).sum();
        let height = (rows as u16 + 3).min(area.height.saturating_sub(2).max(1));
        let popup = Rect { x: area.x + (area.width.saturating_sub(width)) / 2, y: area.y + 1, width: width.min(area.width), height }
            .intersection(area);
        let frame_block = block::popup(t, t.border_focused, Span::styled(format!(" Balancer plan at {} UTC ", hms(plan.at_ms)), t.title));
        let inner = frame_block.inner(popup);
        frame.render_widget(Clear, popup);
        frame.render_widget(frame_block, popup);
        let [body, footer] = Layout::vertical([Constraint::Min(0), Constraint::Length(1)]).areas(inner);
        let max_scroll = rows.saturating_sub(body.height as usize);
        let scroll = scroll.min(max_scroll);
        let visible: Vec<Line> = lines.into_iter().skip(scroll).collect();
        frame.render_widget(Paragraph::new(visible).wrap(ratatui::widgets::Wrap { trim: false }), body);
        let apply = if self.read_only { String::new() } else { format!("{} apply   ", self.key_label("apply")) };
        let hint = format!(
            "{apply}{} / {} close   {} {} scroll",
            self.key_label("plan"),
            self.key_label("close"),
            self.key_label("down"),
            self.key_label("up")
        );
        frame.render_widget(Paragraph::new(Span::styled(hint, t.label)), footer);
    }
}

/// How long the latest run of samples above `threshold` has lasted, in ms.
fn over_since(samples: &[Sample], threshold: f64) -> u64 {
    let Some(last) = samples.last() else { return 0 };
    if last.load <= threshold {
        return 0;
    }
    let from = samples.iter().rposition(|s| s.load <= threshold).map_or(0, |i| i + 1);
    last.at_ms.saturating_sub(samples[from].at_ms)
}
