//! `cvmfleet plan`: observe, diff, and show what `apply` would do.

use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, ValueEnum};

use cvmfleet_plan::desired::PasswordSource;
use cvmfleet_plan::render::{RenderOptions, render_markdown, render_text};
use cvmfleet_plan::{DesiredFleet, Plan, PlanOptions};

use super::target::{Target, TargetArgs, connect};
use crate::commands::exit::Exit;

/// The key that seals saved plans, when the jobs that plan and apply share one
/// (`CVMFLEET_PLAN_KEY`); without it a seal is a plain digest.
pub(crate) fn plan_key() -> Option<Vec<u8>> {
    std::env::var_os("CVMFLEET_PLAN_KEY").filter(|k| !k.is_empty()).map(|k| k.as_encoded_bytes().to_vec())
}

/// Output formats of a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum PlanFormat {
    /// Readable text, coloured on a terminal.
    Human,
    /// The versioned plan document.
    Json,
    /// Markdown for a pull-request comment (under 65,000 characters).
    Markdown,
}

/// Flags that shape a plan, shared by `plan` and `apply`.
#[derive(Debug, Clone, Args)]
pub(crate) struct PlanFlags {
    /// Terminate orphans (instances of groups no longer in the specs) even where the fleet's
    /// policy does not prune.
    #[arg(long)]
    pub(crate) prune: bool,
    /// Allow plans that terminate more than a group's limit, or a whole fleet.
    #[arg(long)]
    pub(crate) allow_mass_termination: bool,
    /// How long an offering (zone, instance type, charge type) that a launch found short of
    /// stock is not tried again: `300ms`, `30s`, `3m`, `1h`.
    #[arg(long, value_name = "DURATION", default_value = "3m", value_parser = super::watch::parse_interval)]
    pub(crate) unavailable_ttl: std::time::Duration,
    /// Allow plans that add more to a fleet's or group's monthly cost than its
    /// `policies.maxMonthlyCostIncrease`.
    #[arg(long)]
    pub(crate) allow_cost_increase: bool,
}

impl PlanFlags {
    /// A fresh memory of unavailable offerings with this TTL.
    pub(crate) fn unavailable(&self) -> cvmfleet_reconcile::Unavailable {
        cvmfleet_reconcile::Unavailable::new(self.unavailable_ttl)
    }

    pub(crate) fn options(&self) -> PlanOptions {
        PlanOptions {
            prune: self.prune,
            allow_mass_termination: self.allow_mass_termination,
            max_terminations_per_group: None,
            allow_cost_increase: self.allow_cost_increase,
        }
    }
}

/// Arguments of `cvmfleet plan`.
#[derive(Debug, Args)]
pub(crate) struct PlanArgs {
    /// Spec files or directories (read recursively for *.yaml / *.yml); default `specs/`.
    #[arg(value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = PlanFormat::Human)]
    format: PlanFormat,
    /// Save the plan to this file, for `cvmfleet apply FILE`.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Send every planned RunInstances with DryRun, so quota, stock and parameter errors show
    /// up in the plan.
    #[arg(long)]
    preflight: bool,
    #[command(flatten)]
    flags: PlanFlags,
    #[command(flatten)]
    target: TargetArgs,
}

/// One round ([`cvmfleet_reconcile::Round`]) over the fleets, in their regions and wherever
/// else the project has instances: observe, read stock where a create is needed, plan, and
/// price through `prices` (one quote per configuration, see `cvmfleet_reconcile::prices`; a
/// price the cloud cannot give is shown as unknown).
pub(crate) async fn observe_and_plan(
    target: &Target,
    desired: &[DesiredFleet],
    options: PlanOptions,
    unavailable: &cvmfleet_reconcile::Unavailable,
    prices: &cvmfleet_reconcile::PriceCache,
) -> anyhow::Result<Plan> {
    let round = cvmfleet_reconcile::Round::new(options, prices).memory(unavailable).everywhere();
    Ok(round.plan(&target.client, desired).await?)
}

/// Whether colour is wanted on stdout (a terminal, and NO_COLOR unset).
pub(crate) fn colour_stdout() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

pub(crate) fn run(args: PlanArgs) -> anyhow::Result<Exit> {
    let Some(desired) = super::specs::load(&args.paths, args.target.project())? else {
        return Ok(Exit::Failure);
    };
    super::runtime()?.block_on(async {
        let target = connect(&args.target).await?;
        let result = plan_with(&target, &desired, &args).await;
        let closed = target.close().await;
        let code = result?;
        closed?;
        Ok(code)
    })
}

/// Adds a warning to the plan for every password its creates need that cannot be read now (an
/// unset `{fromEnv}` variable, a missing `{fromFile}`), so that a plain `plan` says what `apply`
/// will stumble on (issue 10). The value is read through the one secret reader and dropped;
/// only the reference and the reason are shown.
pub(crate) fn warn_unreadable_passwords(plan: &mut Plan) {
    let mut needed: BTreeMap<String, (PasswordSource, BTreeSet<String>)> = BTreeMap::new();
    for fleet in &plan.fleets {
        for group in &fleet.groups {
            for create in &group.creates {
                if let Some(source) = &create.password {
                    let entry =
                        needed.entry(source.to_string()).or_insert_with(|| (source.clone(), BTreeSet::new()));
                    entry.1.insert(format!("{}/{}", fleet.name, group.name));
                }
            }
        }
    }
    for (shown, (source, groups)) in needed {
        if let Err(error) = source.resolve() {
            let groups: Vec<String> = groups.into_iter().collect();
            plan.warnings.push(format!(
                "the password {shown} cannot be read ({error}); apply will not create the instances of {}",
                groups.join(", ")
            ));
        }
    }
}

/// Writes a saved plan: only over a regular file or nothing ([`cvmfleet_spec::check_write_target`]),
/// through a new file beside it renamed over the target, so that no open ever waits on a FIFO
/// and a killed `plan` never leaves half a plan.
fn save(out: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    cvmfleet_spec::check_write_target("--out", out)?;
    // Through a link to the file it names, so that the link stays.
    let target = std::fs::canonicalize(out).unwrap_or_else(|_| out.to_owned());
    let name = target.file_name().context("--out names no file")?.to_string_lossy().into_owned();
    let temp = target.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temp)
        .and_then(|mut file| file.write_all(bytes).and_then(|()| file.sync_all()))
        .and_then(|()| std::fs::rename(&temp, &target));
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    Ok(written?)
}

async fn plan_with(target: &Target, desired: &[DesiredFleet], args: &PlanArgs) -> anyhow::Result<Exit> {
    let prices = cvmfleet_reconcile::PriceCache::new();
    let mut plan =
        observe_and_plan(target, desired, args.flags.options(), &args.flags.unavailable(), &prices).await?;
    warn_unreadable_passwords(&mut plan);
    // Sealed as written (after every warning): `apply plan.json` refuses a plan whose content
    // changed since.
    plan.seal(plan_key().as_deref());
    let mut preflight_failed = false;
    if args.preflight {
        let outcomes = cvmfleet_reconcile::preflight(&target.client, &plan).await;
        for outcome in &outcomes {
            match &outcome.result {
                Ok(()) => anstream::eprintln!("preflight ok: {}", outcome.step),
                Err(error) => {
                    preflight_failed = true;
                    anstream::eprintln!("preflight FAILED: {}", cvmfleet_reconcile::error_chain(error));
                }
            }
        }
    }
    match args.format {
        PlanFormat::Human => {
            anstream::print!(
                "{}",
                render_text(&plan, &target.description, RenderOptions { colour: colour_stdout() })
            );
        }
        PlanFormat::Json => println!("{}", serde_json::to_string_pretty(&plan)?),
        PlanFormat::Markdown => print!("{}", render_markdown(&plan, &target.description)),
    }
    if let Some(out) = &args.out {
        let json = serde_json::to_vec_pretty(&plan)?;
        save(out, &json).with_context(|| format!("writing the plan to {}", out.display()))?;
        anstream::eprintln!(
            "Saved the plan to {}; run `cvmfleet apply {}` to execute exactly it.",
            out.display(),
            out.display()
        );
    }
    if preflight_failed {
        return Ok(Exit::Failure);
    }
    Ok(if plan.is_empty() { Exit::Success } else { Exit::Pending })
}
