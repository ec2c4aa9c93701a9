//! `cvmfleet drift`: one pass that observes the fleets and reports every difference from the
//! specs, by kind, with what `apply` would do about it under each group's drift policy. Made
//! for cron jobs and scheduled CI: exit 0 without drift, 2 with drift, 1 on error.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use cvmfleet_plan::drift_report::{render_markdown, render_text};

use super::plan::{PlanFlags, observe_and_plan};
use super::target::{TargetArgs, connect};
use crate::commands::exit::Exit;

/// Output formats of a drift report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum DriftFormat {
    /// Readable text.
    Human,
    /// JSON: `{"format_version", "drift": [...], "summary": {...}}`.
    Json,
    /// Markdown for an issue or a pull-request comment (under 65,000 characters).
    Markdown,
}

/// Arguments of `cvmfleet drift`.
#[derive(Debug, Args)]
pub(crate) struct DriftArgs {
    /// Spec files or directories (read recursively for *.yaml / *.yml); default `specs/`.
    #[arg(value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = DriftFormat::Human)]
    format: DriftFormat,
    #[command(flatten)]
    flags: PlanFlags,
    #[command(flatten)]
    target: TargetArgs,
}

pub(crate) fn run(args: DriftArgs) -> anyhow::Result<Exit> {
    let Some(desired) = super::specs::load(&args.paths, args.target.project())? else {
        return Ok(Exit::Failure);
    };
    super::runtime()?.block_on(async {
        let target = connect(&args.target).await?;
        let prices = cvmfleet_reconcile::PriceCache::new();
        let result =
            observe_and_plan(&target, &desired, args.flags.options(), &args.flags.unavailable(), &prices)
                .await;
        let header = target.description.clone();
        let closed = target.close().await;
        let plan = result?;
        closed?;
        match args.format {
            DriftFormat::Human => anstream::print!("{}", render_text(&plan, &header)),
            DriftFormat::Json => {
                let document = serde_json::json!({
                    "format_version": cvmfleet_plan::plan::FORMAT_VERSION,
                    "target": header,
                    "drift": plan.drift,
                    "refusals": plan.refusals,
                    "summary": plan.summary,
                });
                println!("{}", serde_json::to_string_pretty(&document)?);
            }
            DriftFormat::Markdown => print!("{}", render_markdown(&plan, &header)),
        }
        Ok(if plan.drift.is_empty() { Exit::Success } else { Exit::Pending })
    })
}
