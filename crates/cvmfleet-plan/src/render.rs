//! Human renderings of a plan: the terminal text (Terraform-like) and a Markdown document for
//! pull-request comments. The JSON rendering is the plan's own serde form.

use std::fmt::Write as _;

use anstyle::{AnsiColor, Style};
use similar::{ChangeTag, TextDiff};

use crate::cost::{Cost, money};
use crate::placement::describe_passed;
use crate::plan::{AttributeChange, CreateReason, FieldChange, FleetPlan, GroupPlan, Plan};

/// GitHub rejects comments over 65,536 characters; stay clear of it.
pub const MARKDOWN_LIMIT: usize = 65_000;

/// How to render.
#[derive(Debug, Clone, Copy, Default)]
pub struct RenderOptions {
    /// Emit ANSI colour.
    pub colour: bool,
}

struct Painter {
    colour: bool,
}

impl Painter {
    fn paint(&self, style: Style, text: &str) -> String {
        if self.colour { format!("{style}{text}{style:#}") } else { text.to_owned() }
    }
    fn green(&self, t: &str) -> String {
        self.paint(AnsiColor::Green.on_default(), t)
    }
    fn red(&self, t: &str) -> String {
        self.paint(AnsiColor::Red.on_default(), t)
    }
    fn yellow(&self, t: &str) -> String {
        self.paint(AnsiColor::Yellow.on_default(), t)
    }
    fn bold(&self, t: &str) -> String {
        self.paint(Style::new().bold(), t)
    }
}

/// The one-line summary, e.g. `Plan: 2 to create, 1 to update, 1 to terminate (1 replaced), 9 unchanged.`
#[must_use]
pub fn summary_line(plan: &Plan) -> String {
    let s = &plan.summary;
    let unplaced: u32 =
        plan.fleets.iter().flat_map(|f| &f.groups).flat_map(|g| &g.unplaced).map(|u| u.count).sum();
    let unplaced = if unplaced > 0 {
        format!(" {unplaced} instance(s) cannot be placed: nothing the group accepts has stock.")
    } else {
        String::new()
    };
    if plan.is_empty() {
        return format!("No changes. {} instance(s) match the spec.{unplaced}", s.unchanged);
    }
    let replaced = if s.replace > 0 { format!(" ({} replaced)", s.replace) } else { String::new() };
    let started = if s.start > 0 { format!(", {} to start", s.start) } else { String::new() };
    let adopted = if s.adopt > 0 { format!("{} to adopt, ", s.adopt) } else { String::new() };
    format!(
        "Plan: {adopted}{} to create, {} to update{started}, {} to terminate{replaced}, {} unchanged.{unplaced}",
        s.create, s.update, s.terminate, s.unchanged
    )
}

/// The plan's cost line, when it was priced, e.g.
/// `Cost: ¥1,234.56/month → ¥1,500.12/month (+¥265.56)`; a price the cloud could not give makes
/// its amounts `unknown`.
#[must_use]
pub fn cost_line(plan: &Plan) -> Option<String> {
    let cost = plan.summary.cost.as_ref()?;
    Some(format!("Cost: {}", cost_text(cost, true)))
}

/// `before → after (delta)`, per month; `before` alone when nothing changes. `long` spells
/// `/month` after each amount.
fn cost_text(cost: &Cost, long: bool) -> String {
    let per = if long { "/month" } else { "" };
    let amount =
        |value: Option<f64>| value.map_or_else(|| "unknown".to_owned(), |v| format!("{}{per}", money(v)));
    let before = amount(cost.monthly_before);
    match cost.monthly_delta {
        Some(0.0) => format!("{before} (no change)"),
        Some(delta) => {
            let sign = if delta > 0.0 { "+" } else { "" };
            format!("{before} → {} ({sign}{})", amount(cost.monthly_after), money(delta))
        }
        None => format!("{before} → {} (change unknown)", amount(cost.monthly_after)),
    }
}

/// Renders the plan for a terminal. `header` names the cloud and endpoint targeted.
#[must_use]
pub fn render_text(plan: &Plan, header: &str, options: RenderOptions) -> String {
    let p = Painter { colour: options.colour };
    let mut out = String::new();
    let _ = writeln!(out, "{header}\n");
    for fleet in &plan.fleets {
        render_fleet(&mut out, &p, fleet);
    }
    for refusal in &plan.refusals {
        let scope = refusal
            .group
            .as_ref()
            .map_or(fleet_scope(&refusal.fleet), |g| format!("fleet {} group {g}", refusal.fleet));
        let _ = writeln!(out, "{} {scope}: {}", p.red("refused:"), refusal.message);
    }
    for warning in &plan.warnings {
        let _ = writeln!(out, "{} {warning}", p.yellow("warning:"));
    }
    if !plan.refusals.is_empty() || !plan.warnings.is_empty() {
        out.push('\n');
    }
    let _ = writeln!(out, "{}", p.bold(&summary_line(plan)));
    if let Some(line) = cost_line(plan) {
        let _ = writeln!(out, "{line}");
    }
    out
}

fn fleet_scope(fleet: &str) -> String {
    format!("fleet {fleet}")
}

fn group_has_changes(g: &GroupPlan) -> bool {
    !(g.creates.is_empty()
        && g.adoptions.is_empty()
        && g.terminations.is_empty()
        && g.updates.is_empty()
        && g.blocked.is_empty()
        && g.launch_failed.is_empty()
        && g.starts.is_empty()
        && g.rollout.is_none()
        && g.unplaced.is_empty()
        && g.on_fallback.is_empty())
}

fn render_fleet(out: &mut String, p: &Painter, fleet: &FleetPlan) {
    let _ = writeln!(out, "{} ({})", p.bold(&format!("fleet {}", fleet.name)), fleet.region);
    if fleet.orphan_fleet {
        let _ = writeln!(out, "  {}", p.yellow("orphan fleet: no spec declares it in this region"));
    }
    for g in &fleet.groups {
        let _ = writeln!(out, "  group {}: {} wanted, {} present", g.name, g.desired, g.present);
        if !group_has_changes(g) {
            let _ = writeln!(out, "    (no changes)");
            continue;
        }
        render_group(out, p, g);
    }
    if !fleet.orphans.is_empty() {
        let verb = if fleet.prune { "terminated (prune is on)" } else { "kept (prune is off)" };
        let _ = writeln!(out, "  orphans, {verb}:");
        for o in &fleet.orphans {
            let line = format!("{} ({}, {}, {})", o.instance_id, o.name, o.state, o.zone);
            if fleet.prune {
                let _ = writeln!(out, "    {} {line}: {}", p.red("- terminate"), o.reason.describe());
            } else {
                let _ = writeln!(out, "    {} {line}", p.yellow("! orphan"));
            }
        }
    }
    out.push('\n');
}

fn render_group(out: &mut String, p: &Painter, g: &GroupPlan) {
    for a in &g.adoptions {
        let _ = writeln!(
            out,
            "    {} {} ({}, {}, {}): ownership tags written, nothing created or terminated",
            p.green("+ adopt"),
            a.instance_id,
            a.name,
            a.state,
            a.zone
        );
        for d in &a.differences {
            let _ = writeln!(out, "        {}: {:?} -> {:?}", d.field, d.observed, d.desired);
        }
    }
    for c in &g.creates {
        let why = match c.reason {
            CreateReason::Missing => "missing",
            CreateReason::Replacement => "replacement",
        };
        let ips = c
            .request
            .virtual_private_cloud
            .as_ref()
            .and_then(|v| v.private_ip_addresses.as_ref())
            .map(|ips| format!(" [{}]", ips.join(", ")))
            .unwrap_or_default();
        let wait = if c.wait_for_gone.is_empty() {
            String::new()
        } else {
            format!(", after {} are gone", c.wait_for_gone.join(", "))
        };
        // What is created, as Terraform shows a new resource's attributes; the ClientToken is
        // in `--format json`.
        let r = &c.request;
        let mut attributes: Vec<String> = Vec::new();
        for (key, value) in [
            ("type", r.instance_type.as_deref()),
            ("image", r.image_id.as_deref()),
            (
                "subnet",
                r.virtual_private_cloud.as_ref().map(|v| v.subnet_id.as_str()).filter(|s| !s.is_empty()),
            ),
            ("name", r.instance_name.as_deref()),
        ] {
            if let Some(value) = value {
                attributes.push(format!("{key}={value}"));
            }
        }
        // A group with `instanceTypes` chooses the billing per create too (spot first, on
        // demand when spot is short): shown unless by the hour.
        if let Some(offering) = c
            .offering
            .as_ref()
            .filter(|o| o.charge_type != cvmfleet_wire::vocab::InstanceChargeType::PostpaidByHour.as_str())
        {
            attributes.insert(attributes.len().min(1), format!("charge={}", offering.charge_type));
        }
        if c.password.is_some() {
            attributes.push("password=(sensitive)".into());
        }
        let _ = writeln!(
            out,
            "    {} {} in {}{ips} ({why}{wait}) {}",
            p.green("+ create"),
            c.count,
            c.zone,
            attributes.join(" ")
        );
        if !c.passed_over.is_empty() {
            let passed = describe_passed(&c.passed_over);
            let chosen = c.offering.as_ref().map_or_else(
                || c.request.instance_type.clone().unwrap_or_default(),
                cvmfleet_spec::Offering::label,
            );
            let _ = writeln!(out, "        {} → {chosen} in {}", passed, c.zone);
        }
    }
    for u in &g.unplaced {
        let passed = describe_passed(&u.passed_over);
        let _ = writeln!(
            out,
            "    {} {} in {}: nothing the group accepts has stock ({})",
            p.red("! unplaced"),
            u.count,
            u.zone,
            passed
        );
    }
    let mut fallbacks: std::collections::BTreeMap<(&str, &str), usize> = std::collections::BTreeMap::new();
    for f in &g.on_fallback {
        *fallbacks.entry((f.placement.as_str(), f.preferred.as_str())).or_default() += 1;
    }
    for ((placement, preferred), count) in fallbacks {
        let _ = writeln!(
            out,
            "    {} {count} on {placement}; the preferred {preferred} has stock{}",
            p.yellow("~ fallback"),
            if g.terminations.iter().any(|t| t.reason == crate::plan::TerminateReason::Rebalance) {
                " (rebalancing)"
            } else {
                " (kept: rebalance is off)"
            }
        );
    }
    if let Some(r) = &g.rollout {
        let _ = writeln!(
            out,
            "    rolling replacement: {} of {} instance(s) in this step (maxSurge {}, maxUnavailable {}){}",
            r.replacing,
            r.remaining,
            r.max_surge,
            r.max_unavailable,
            if g.await_running.is_empty() {
                String::new()
            } else {
                format!(", once {} run", g.await_running.join(", "))
            }
        );
    }
    for st in &g.starts {
        let _ =
            writeln!(out, "    {} {} ({}): stopped", p.green("~ start"), st.instance_ids.join(", "), st.zone);
    }
    for t in &g.launch_failed {
        let _ = writeln!(
            out,
            "    {} {} ({}, {}): {}",
            p.yellow("x launch failed"),
            t.instance_id,
            t.name,
            t.zone,
            t.reason.describe()
        );
    }
    for t in &g.terminations {
        let sign = if t.reason.reduces_capacity() { p.red("- terminate") } else { p.yellow("-/+ replace") };
        let _ = writeln!(
            out,
            "    {sign} {} ({}, {}, {}): {}",
            t.instance_id,
            t.name,
            t.state,
            t.zone,
            t.reason.describe()
        );
    }
    if g.terminations.iter().any(|t| t.reason.is_replacement()) && !g.replacement_diff.is_empty() {
        for line in field_diff(&g.replacement_diff) {
            let painted = match line.0 {
                ChangeTag::Delete => p.red(&format!("- {}", line.1)),
                ChangeTag::Insert => p.green(&format!("+ {}", line.1)),
                ChangeTag::Equal => format!("  {}", line.1),
            };
            let _ = writeln!(out, "        {painted}");
        }
    }
    for u in &g.updates {
        let ids = u.instance_ids.join(", ");
        let change = match &u.change {
            AttributeChange::InstanceName { from, to } => format!("InstanceName: {from:?} -> {to:?}"),
            AttributeChange::SecurityGroups { from, to } => {
                format!("SecurityGroupIds: [{}] -> [{}]", from.join(", "), to.join(", "))
            }
        };
        let _ = writeln!(out, "    {} {ids} ({}): {change}", p.yellow("~ update"), u.zone);
    }
    for b in &g.blocked {
        let _ = writeln!(out, "    {} {}: {}", p.yellow("! blocked"), b.instance_id, b.reason);
    }
}

/// A line diff of `field: value` lines, observed against desired.
fn field_diff(changes: &[FieldChange]) -> Vec<(ChangeTag, String)> {
    let observed: String = changes.iter().map(|c| format!("{}: {}\n", c.field, c.observed)).collect();
    let desired: String = changes.iter().map(|c| format!("{}: {}\n", c.field, c.desired)).collect();
    TextDiff::from_lines(&observed, &desired)
        .iter_all_changes()
        .map(|change| (change.tag(), change.value().trim_end().to_owned()))
        .collect()
}

/// Renders the plan as Markdown for a pull-request comment, kept under [`MARKDOWN_LIMIT`]
/// characters: when the details do not fit, they are cut and the summary says so.
#[must_use]
pub fn render_markdown(plan: &Plan, header: &str) -> String {
    let mut head = String::new();
    let _ = writeln!(head, "### cvmfleet plan\n\n{header}\n");
    let _ = writeln!(head, "**{}**\n", summary_line(plan));
    if let Some(line) = cost_line(plan) {
        let _ = writeln!(head, "**{line}**\n");
    }
    // The cost column when the plan was priced: each group's monthly cost, before → after.
    let priced = plan.summary.cost.is_some();
    let cost_cell = |cost: Option<&Cost>| match cost {
        Some(cost) if priced => format!(" {} |", cost_text(cost, false)),
        _ if priced => " |".to_owned(),
        _ => String::new(),
    };
    let (cost_head, cost_rule) = if priced { (" monthly cost |", "---:|") } else { ("", "") };
    let _ = writeln!(
        head,
        "| fleet | group | wanted | present | create | update | start | terminate |{cost_head}"
    );
    let _ = writeln!(head, "|---|---|---:|---:|---:|---:|---:|---:|{cost_rule}");
    for fleet in &plan.fleets {
        if fleet.orphan_fleet {
            let going = if fleet.prune { fleet.orphans.len() } else { 0 };
            let _ = writeln!(
                head,
                "| {} (orphan fleet, {}) | (no spec) | 0 | {} | 0 | 0 | 0 | {going} |{}",
                fleet.name,
                fleet.region,
                fleet.orphans.len(),
                cost_cell(fleet.cost.as_ref())
            );
        }
        for g in &fleet.groups {
            let create: u32 = g.creates.iter().map(|c| c.count).sum();
            let update: usize = g.updates.iter().map(|u| u.instance_ids.len()).sum();
            let start: usize = g.starts.iter().map(|st| st.instance_ids.len()).sum();
            let _ = writeln!(
                head,
                "| {} | {} | {} | {} | {create} | {update} | {start} | {} |{}",
                fleet.name,
                g.name,
                g.desired,
                g.present,
                g.terminations.len(),
                cost_cell(g.cost.as_ref())
            );
        }
    }
    for refusal in &plan.refusals {
        let _ = writeln!(head, "\n> **Refused** ({}): {}", refusal.fleet, refusal.message);
    }
    for warning in &plan.warnings {
        let _ = writeln!(head, "\n> Warning: {warning}");
    }
    let details = render_text(plan, header, RenderOptions { colour: false });
    let opening = "\n<details><summary>Details</summary>\n\n```diff\n";
    let closing = "```\n</details>\n";
    let budget = MARKDOWN_LIMIT.saturating_sub(head.len() + opening.len() + closing.len() + 200);
    let mut body = String::new();
    let mut cut = 0usize;
    for line in details.lines() {
        if body.len() + line.len() + 1 > budget {
            cut += 1;
            continue;
        }
        body.push_str(line);
        body.push('\n');
    }
    let mut out = head;
    out.push_str(opening);
    out.push_str(&body);
    out.push_str(closing);
    if cut > 0 {
        let _ = writeln!(
            out,
            "\n_{cut} more line(s) of detail were cut to fit a comment; run `cvmfleet plan` for all._"
        );
    }
    out
}
