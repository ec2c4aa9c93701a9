//! `cvmfleet emulator`: runs the local cloud (CVM and the Tag service) until SIGINT or SIGTERM.
//!
//! The endpoint it listens on is printed on stdout, alone on one line, as soon as it accepts
//! requests (so `--listen 127.0.0.1:0` can be used and the port read back); everything else
//! goes to stderr. The key pair it accepts is `TENCENTCLOUD_SECRET_ID` /
//! `TENCENTCLOUD_SECRET_KEY` from the environment, or the documented development pair when
//! both are unset.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::commands::exit::Exit;
use anyhow::{Context as _, bail};
use cvmfleet_emulator::{Catalog, DEV_SECRET_ID, Emulator, EmulatorConfig, FaultConfig, TokenMode};
use cvmfleet_wire::sign::SecretKey;

/// Arguments of `cvmfleet emulator`.
#[derive(Debug, clap::Args)]
pub(crate) struct EmulatorArgs {
    /// Address to listen on; port 0 picks a free port (the endpoint is printed on stdout).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9100")]
    listen: SocketAddr,
    /// Directory of the state (snapshot and journal), created if missing; without it the
    /// state lives in memory and is gone when the emulator stops.
    #[arg(long, value_name = "DIR")]
    state: Option<PathBuf>,
    /// How long a new instance stays PENDING (and a started one STARTING): 3s, 500ms, 0.
    #[arg(long, value_name = "DURATION", default_value = "3s", value_parser = parse_duration)]
    boot_delay: Duration,
    /// How long a stopped instance stays STOPPING.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_duration)]
    stop_delay: Duration,
    /// How long a terminated instance stays TERMINATING before it disappears.
    #[arg(long, value_name = "DURATION", default_value = "3s", value_parser = parse_duration)]
    terminate_delay: Duration,
    /// JSON catalog that extends the built-in world (or replaces it, with "mode": "replace").
    #[arg(long, value_name = "FILE")]
    catalog: Option<PathBuf>,
    /// Most instances per region; more gets InstancesQuotaLimitExceeded.
    #[arg(long, value_name = "N")]
    instance_quota: Option<u32>,
    /// Do not refuse requests above Tencent's published per-action rates.
    #[arg(long)]
    no_rate_limits: bool,
    /// Refuse a ClientToken reused with different parameters (InvalidParameter) instead of
    /// replaying the original instances.
    #[arg(long)]
    strict_tokens: bool,
    /// Seed of the fault generator (faults, vanished stock, spot reclamations) and of new
    /// instance IDs.
    #[arg(long, value_name = "N", default_value_t = 0)]
    fault_seed: u64,
    /// Latency added to every API request.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    latency: Option<Duration>,
    /// Extra random latency, up to this much.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    latency_jitter: Option<Duration>,
    /// Share of requests answered InternalError (0 to 1).
    #[arg(long, value_name = "RATE", default_value_t = 0.0, value_parser = parse_rate)]
    error_rate: f64,
    /// Share of requests answered RequestLimitExceeded (0 to 1).
    #[arg(long, value_name = "RATE", default_value_t = 0.0, value_parser = parse_rate)]
    throttle_rate: f64,
    /// Share of connections reset before the request is processed (0 to 1).
    #[arg(long, value_name = "RATE", default_value_t = 0.0, value_parser = parse_rate)]
    reset_rate: f64,
    /// Share of requests processed and then left without an answer (0 to 1).
    #[arg(long, value_name = "RATE", default_value_t = 0.0, value_parser = parse_rate)]
    lose_response_rate: f64,
    /// Share of new instances that end LAUNCH_FAILED (0 to 1).
    #[arg(long, value_name = "RATE", default_value_t = 0.0, value_parser = parse_rate)]
    launch_failure_rate: f64,
    /// Share of new instances of an offering low on stock (UnderStock) that end LAUNCH_FAILED
    /// because the stock vanished after the request was accepted (0 to 1).
    #[arg(long, value_name = "RATE", default_value_t = 0.0, value_parser = parse_rate)]
    low_stock_launch_failure_rate: f64,
    /// Share of new SPOTPAID instances the cloud reclaims (0 to 1), each at a random time
    /// within --spot-reclaim-within after it runs.
    #[arg(long, value_name = "RATE", default_value_t = 0.0, value_parser = parse_rate)]
    spot_reclaim_rate: f64,
    /// The window of --spot-reclaim-rate.
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_duration)]
    spot_reclaim_within: Duration,
    /// Limit the error, throttle, reset and lost-response rates to these actions.
    #[arg(long, value_name = "ACTION,...", value_delimiter = ',')]
    fault_actions: Vec<String>,
    /// The account's uin, in the Tag service's resource names
    /// (qcs::cvm:REGION:uin/UIN:instance/ID).
    #[arg(long, value_name = "UIN", default_value = cvmfleet_emulator::DEFAULT_ACCOUNT_UIN)]
    account_uin: String,
}

/// Reads `3s`, `500ms`, `2m`, `1h`, `1.5s` or `0`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => text.split_at(i),
        None => (text, ""),
    };
    let value: f64 = number.parse().map_err(|_| format!("`{text}` is not a duration such as 3s or 500ms"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        "" if value == 0.0 => 0.0,
        _ => return Err(format!("`{text}` needs a unit: ms, s, m or h")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("`{text}` is out of range"))
}

/// Reads a probability between 0 and 1.
fn parse_rate(text: &str) -> Result<f64, String> {
    let rate: f64 = text.parse().map_err(|_| format!("`{text}` is not a number"))?;
    if (0.0..=1.0).contains(&rate) { Ok(rate) } else { Err(format!("`{text}` is not between 0 and 1")) }
}

/// The key pair from the environment, or `None` for the development pair.
fn credentials_from_env() -> anyhow::Result<Option<(String, SecretKey)>> {
    let id = std::env::var("TENCENTCLOUD_SECRET_ID").ok().filter(|v| !v.is_empty());
    let key = std::env::var("TENCENTCLOUD_SECRET_KEY").ok().filter(|v| !v.is_empty());
    match (id, key) {
        (Some(id), Some(key)) => Ok(Some((id, SecretKey::new(key)))),
        (None, None) => Ok(None),
        _ => bail!("set both TENCENTCLOUD_SECRET_ID and TENCENTCLOUD_SECRET_KEY, or neither"),
    }
}

/// Largest catalog read: the built-in world is about 40 KB of JSON; a world of every region,
/// image and instance type Tencent sells is well under a megabyte.
const MAX_CATALOG_BYTES: u64 = 16 * 1024 * 1024;

fn config(args: EmulatorArgs) -> anyhow::Result<EmulatorConfig> {
    let catalog = match &args.catalog {
        Some(path) => {
            let text = cvmfleet_spec::read_flag_text("--catalog", path, MAX_CATALOG_BYTES)?;
            Catalog::builtin().apply_json(&text, path)?
        }
        None => Catalog::builtin(),
    };
    let faults = FaultConfig {
        latency_ms: args.latency.map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        latency_jitter_ms: args
            .latency_jitter
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        error_rate: args.error_rate,
        throttle_rate: args.throttle_rate,
        reset_rate: args.reset_rate,
        lose_response_rate: args.lose_response_rate,
        launch_failure_rate: args.launch_failure_rate,
        low_stock_launch_failure_rate: args.low_stock_launch_failure_rate,
        spot_reclaim_rate: args.spot_reclaim_rate,
        spot_reclaim_within_ms: u64::try_from(args.spot_reclaim_within.as_millis()).unwrap_or(u64::MAX),
        actions: args.fault_actions.into_iter().collect(),
        seed: None,
    };
    let mut config = EmulatorConfig::default()
        .listen(args.listen)
        .boot_delay(args.boot_delay)
        .stop_delay(args.stop_delay)
        .terminate_delay(args.terminate_delay)
        .catalog(catalog)
        .instance_quota(args.instance_quota)
        .rate_limits(!args.no_rate_limits)
        .token_mode(if args.strict_tokens { TokenMode::Strict } else { TokenMode::Lenient })
        .faults(faults)
        .seed(args.fault_seed)
        .account_uin(args.account_uin);
    if let Some(dir) = args.state {
        config = config.state_path(dir);
    }
    if let Some((id, key)) = credentials_from_env()? {
        config = config.credentials(id, key);
    }
    Ok(config)
}

/// SIGINT and SIGTERM, listened for from creation on: the handlers are installed before the
/// endpoint is printed, so a signal sent as soon as the endpoint is read is never lost.
struct StopSignals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn install() -> anyhow::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(StopSignals {
                interrupt: signal(SignalKind::interrupt()).context("listening for SIGINT")?,
                terminate: signal(SignalKind::terminate()).context("listening for SIGTERM")?,
            })
        }
        #[cfg(not(unix))]
        Ok(StopSignals {})
    }

    async fn wait(mut self) -> anyhow::Result<()> {
        #[cfg(unix)]
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
        #[cfg(not(unix))]
        tokio::signal::ctrl_c().await.context("listening for Ctrl-C")?;
        Ok(())
    }
}

/// Runs the emulator until a stop signal; exits 0 after a clean shutdown.
pub(crate) fn run(args: EmulatorArgs) -> anyhow::Result<Exit> {
    // Request logs go to stderr when CVMFLEET_LOG asks for them (e.g. CVMFLEET_LOG=debug).
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CVMFLEET_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
    let state = args.state.clone();
    let config = config(args)?;
    let key_note = if config.credentials.iter().any(|(id, _)| id == DEV_SECRET_ID) {
        format!("the development key pair (SecretId {DEV_SECRET_ID})")
    } else {
        "the key pair of TENCENTCLOUD_SECRET_ID / TENCENTCLOUD_SECRET_KEY".to_owned()
    };
    super::runtime()?.block_on(async move {
        let signals = StopSignals::install()?;
        let emulator = Emulator::start(config).await.context("starting the emulator")?;
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{}", emulator.endpoint())?;
        stdout.flush()?;
        drop(stdout);
        let where_ = state.map_or_else(|| "in memory".to_owned(), |d| format!("in {}", d.display()));
        anstream::eprintln!(
            "cvmfleet emulator: listening on {}, state {where_}, accepting {key_note}; stop with Ctrl-C",
            emulator.endpoint()
        );
        signals.wait().await?;
        emulator.shutdown().await.context("stopping the emulator")?;
        anstream::eprintln!("cvmfleet emulator: stopped");
        Ok(Exit::Success)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_rates() {
        assert_eq!(parse_duration("3s"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        for bad in ["3", "s", "3d", "-1s", ""] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_rate("0.25"), Ok(0.25));
        assert!(parse_rate("1.5").is_err() && parse_rate("x").is_err());
    }
}
