//! Which cloud a command talks to, decided once from flags and the environment:
//!
//! 1. `--endpoint URL` / `CVMFLEET_ENDPOINT`: that endpoint (a running `cvmfleet emulator`, or any
//!    API-compatible endpoint), with the credentials from the environment or profile, else the
//!    emulator's documented development pair;
//! 2. else credentials in the environment (`TENCENTCLOUD_SECRET_ID` / `_KEY`) or `--profile`:
//!    Tencent Cloud itself;
//! 3. else the embedded emulator, in-process, with its state in `.cvmfleet/` of the working
//!    directory, so a fresh clone can `cvmfleet apply specs/` with nothing configured.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use cvmfleet_client::{ClientConfig, Credentials, CvmClient, DEFAULT_ENDPOINT, redact_endpoint};
use cvmfleet_emulator::{DEV_SECRET_ID, DEV_SECRET_KEY, Emulator, EmulatorConfig, RunningEmulator};
use cvmfleet_wire::sign::SecretKey;

/// Flags that choose the cloud, and the project within it.
#[derive(Debug, Clone, Args)]
pub(crate) struct TargetArgs {
    /// Project (spec set) to work for: only its instances are reported or changed, and new
    /// ones carry its `cvmfleet:project` tag. Default: the specs' `project:`, else `default`.
    #[arg(long, env = "CVMFLEET_PROJECT", value_name = "NAME", value_parser = parse_name)]
    project: Option<String>,
    /// API endpoint, e.g. a running emulator at http://127.0.0.1:9100 (plain http only to
    /// loopback addresses).
    #[arg(long, env = "CVMFLEET_ENDPOINT", hide_env_values = true, value_name = "URL")]
    endpoint: Option<String>,
    /// Read credentials from this tccli profile (`~/.tccli/<profile>.credential`).
    #[arg(long, value_name = "NAME")]
    profile: Option<String>,
    /// Directory of the embedded emulator's state, used when no endpoint or credentials are set.
    #[arg(
        long,
        env = "CVMFLEET_STATE_DIR",
        hide_env_values = true,
        value_name = "DIR",
        default_value = ".cvmfleet"
    )]
    state_dir: PathBuf,
}

impl TargetArgs {
    /// The project given on the command line or in the environment, if any.
    pub(crate) fn project(&self) -> Option<&str> {
        self.project.as_deref()
    }
}

/// A name given by a flag (`--project`, `import --fleet`): the spec's one rule for names
/// ([`cvmfleet_spec::check_name`]), so a flag accepts exactly what a spec file would.
pub(crate) fn parse_name(text: &str) -> Result<String, String> {
    cvmfleet_spec::check_name(text).map(|()| text.to_owned()).map_err(str::to_owned)
}

/// A connected cloud.
pub(crate) struct Target {
    /// The client every call goes through.
    pub(crate) client: CvmClient,
    /// One line naming the cloud, for plan headers.
    pub(crate) description: String,
    /// Keeps the embedded emulator alive for as long as the target is.
    embedded: Option<RunningEmulator>,
}

impl Target {
    /// Stops the embedded emulator, if any, after its state is saved.
    pub(crate) async fn close(self) -> anyhow::Result<()> {
        if let Some(emulator) = self.embedded {
            emulator.shutdown().await.context("saving the embedded emulator's state")?;
        }
        Ok(())
    }
}

/// Largest tccli credential file read: it holds a key pair and maybe a session token (a few
/// hundred bytes to a few KB).
const MAX_PROFILE_BYTES: u64 = 64 * 1024;

fn credentials(args: &TargetArgs) -> anyhow::Result<Option<Credentials>> {
    if let Some(profile) = &args.profile {
        let read = || -> anyhow::Result<Credentials> {
            let path = Credentials::tccli_profile_file(profile)?;
            let text = cvmfleet_spec::read_flag_text("--profile", &path, MAX_PROFILE_BYTES)?;
            Ok(Credentials::from_tccli_text(&text, &path)?)
        };
        return read().map(Some).with_context(|| format!("reading tccli profile `{profile}`"));
    }
    Credentials::from_env().context("reading credentials from the environment")
}

/// Connects to the cloud the flags and environment name.
pub(crate) async fn connect(args: &TargetArgs) -> anyhow::Result<Target> {
    let found = credentials(args)?;
    if let Some(endpoint) = &args.endpoint {
        let (credentials, whose) = match found {
            Some(c) => (c, "your credentials"),
            None => (Credentials::new(DEV_SECRET_ID, DEV_SECRET_KEY), "the emulator's development key"),
        };
        // Never shown as given: it may carry a key in its userinfo or query (issue 10).
        let shown = redact_endpoint(endpoint);
        let client = CvmClient::new(ClientConfig::with_endpoint(endpoint.clone()), credentials)
            .with_context(|| format!("configuring the client for {shown}"))?;
        return Ok(Target {
            client,
            description: format!("Target: endpoint {shown} (signed with {whose})"),
            embedded: None,
        });
    }
    if let Some(credentials) = found {
        let secret_id = credentials.secret_id.clone();
        let client =
            CvmClient::new(ClientConfig::default(), credentials).context("configuring the client")?;
        let shown: String = secret_id.chars().take(8).collect();
        return Ok(Target {
            client,
            description: format!("Target: Tencent Cloud at {DEFAULT_ENDPOINT} (SecretId {shown}…)"),
            embedded: None,
        });
    }
    let config = EmulatorConfig::default()
        .listen(([127, 0, 0, 1], 0).into())
        .state_path(args.state_dir.clone())
        .credentials(DEV_SECRET_ID, SecretKey::new(DEV_SECRET_KEY));
    let emulator = Emulator::start(config).await.with_context(|| {
        format!("starting the embedded emulator with state in {}", args.state_dir.display())
    })?;
    let client = CvmClient::new(
        ClientConfig::with_endpoint(emulator.endpoint()),
        Credentials::new(DEV_SECRET_ID, DEV_SECRET_KEY),
    )
    .context("configuring the client for the embedded emulator")?;
    Ok(Target {
        client,
        description: format!(
            "Target: the embedded emulator (a local simulated cloud, state in {}/). No endpoint or \
             credentials are configured, so nothing reaches Tencent Cloud; set TENCENTCLOUD_SECRET_ID \
             and TENCENTCLOUD_SECRET_KEY to target it.",
            args.state_dir.display()
        ),
        embedded: Some(emulator),
    })
}
