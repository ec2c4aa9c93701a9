//! `watch --leader-election`: the flags, turned once into an [`Elector`] on etcd, and the two
//! names an election needs: its key (which spec set) and this replica's identity.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Args;
use sha2::{Digest as _, Sha256};

use cvmfleet_lease::{ElectionOptions, Elector, EtcdOptions, EtcdStore, EtcdTls, TlsPart};
use cvmfleet_spec::files::read_bounded;
use cvmfleet_wire::redact_url;

/// Shortest lease: etcd's own minimum with its default settings (1.5 × the 1 s election
/// timeout, rounded up to whole seconds); a shorter one would silently be granted as 2 s.
const MIN_TTL: Duration = Duration::from_secs(2);

/// Longest lease: 10 minutes. A dead leader blocks its standbys for one TTL; longer than that
/// is an outage, not a lease.
const MAX_TTL: Duration = Duration::from_secs(600);

/// Where the lease is kept, as given by `--leader-election`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LeaseUrl {
    /// `host:port` of each etcd member.
    pub(crate) endpoints: Vec<String>,
    /// `etcds://`: TLS.
    pub(crate) tls: bool,
}

/// The most read of a password file: a password, not a document.
const MAX_PASSWORD_BYTES: u64 = 4 * 1024;

/// The most read of a PEM file: a CA bundle of a few hundred certificates fits.
const MAX_PEM_BYTES: u64 = 1024 * 1024;

/// Parses `etcd://HOST:PORT[,HOST:PORT...]` (or `etcds://` for TLS). Errors show the URL only
/// through [`redact_url`], and credentials, a path, a query or a fragment are refused before any
/// part of the URL is quoted (issue 25, item 3): the user and password have flags of their own.
fn parse_lease_url(text: &str) -> Result<LeaseUrl, String> {
    let shown = redact_url(text);
    let (tls, rest) = if let Some(rest) = text.strip_prefix("etcd://") {
        (false, rest)
    } else if let Some(rest) = text.strip_prefix("etcds://") {
        (true, rest)
    } else {
        return Err(format!("`{shown}` is not etcd://HOST:PORT[,HOST:PORT...] (or etcds:// for TLS)"));
    };
    if rest.contains('@') {
        return Err(format!(
            "`{shown}` carries credentials; give the user with --etcd-user and the password with \
             CVMFLEET_ETCD_PASSWORD or --etcd-password-file"
        ));
    }
    if rest.contains(['/', '?', '#']) {
        return Err(format!(
            "`{shown}` has a path, query or fragment; it is etcd://HOST:PORT[,HOST:PORT...]"
        ));
    }
    let text = shown.as_str();
    let mut endpoints = Vec::new();
    for member in rest.split(',') {
        let (host, port) = member
            .rsplit_once(':')
            .ok_or_else(|| format!("`{member}` in `{text}` has no port (HOST:PORT)"))?;
        let host_ok = !host.is_empty()
            && (host.starts_with('[') && host.ends_with(']')
                || host.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-'));
        if !host_ok {
            return Err(format!("`{host}` in `{text}` is not a host name or address"));
        }
        if port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(format!("`{port}` in `{text}` is not a port"));
        }
        endpoints.push(member.to_owned());
    }
    Ok(LeaseUrl { endpoints, tls })
}

/// Parses a lease TTL: whole seconds (`15s`, `15`, `1m`), from [`MIN_TTL`] to [`MAX_TTL`].
fn parse_ttl(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: u64 = number.parse().map_err(|_| format!("`{t}` is not a duration like 15s or 1m"))?;
    let ttl = match unit {
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        _ => {
            return Err(format!(
                "unknown unit `{unit}` in `{t}`; a lease is whole seconds (s) or minutes (m)"
            ));
        }
    };
    if !(MIN_TTL..=MAX_TTL).contains(&ttl) {
        return Err(format!(
            "the lease TTL must be from {}s to {}s (etcd's minimum is {}s)",
            MIN_TTL.as_secs(),
            MAX_TTL.as_secs(),
            MIN_TTL.as_secs()
        ));
    }
    Ok(ttl)
}

/// `--leader-election`'s parser: clap's own error would quote the value as given, credentials
/// and all, so the refusal is worded here with the value redacted.
#[derive(Debug, Clone, Copy)]
struct LeaseUrlParser;

impl clap::builder::TypedValueParser for LeaseUrlParser {
    type Value = LeaseUrl;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<LeaseUrl, clap::Error> {
        let text = value.to_string_lossy();
        parse_lease_url(&text).map_err(|why| {
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!("invalid --leader-election: {why}\n"),
            )
            .with_cmd(cmd)
        })
    }
}

/// Leader election flags of `cvmfleet watch`.
#[derive(Debug, Args)]
pub(crate) struct ElectionArgs {
    /// Elect one leader among the replicas watching these specs, through a lease in etcd:
    /// etcd://HOST:PORT[,HOST:PORT...] (etcds:// for TLS). Only the leader talks to the cloud;
    /// the others stand by, serve /metrics and /healthz, and take over within a TTL.
    #[arg(long, value_name = "URL", value_parser = LeaseUrlParser)]
    pub(crate) leader_election: Option<LeaseUrl>,
    /// How long the lease outlives its holder's last renewal (whole seconds, from 2s to 10m):
    /// the longest a dead or hung leader keeps its standbys waiting. Renewed every third.
    #[arg(long, value_name = "TTL", default_value = "15s", value_parser = parse_ttl, requires = "leader_election")]
    pub(crate) lease_ttl: Duration,
    /// Keep trying when etcd is unreachable at start, instead of exiting 1.
    #[arg(long, requires = "leader_election")]
    pub(crate) wait_for_lease: bool,
    /// CA certificate (PEM) that signed the etcd servers' certificates; needed with etcds://.
    #[arg(long, value_name = "FILE", requires = "leader_election")]
    pub(crate) etcd_cacert: Option<PathBuf>,
    /// Client certificate (PEM) for etcd servers that ask for one (with --etcd-key).
    #[arg(long, value_name = "FILE", requires_all = ["leader_election", "etcd_key"])]
    pub(crate) etcd_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, value_name = "FILE", requires_all = ["leader_election", "etcd_cert"])]
    pub(crate) etcd_key: Option<PathBuf>,
    /// Name to check the etcd servers' certificates against, when not the endpoints' host.
    #[arg(long, value_name = "NAME", requires = "leader_election")]
    pub(crate) etcd_server_name: Option<String>,
    /// etcd user, for etcd's authentication; the password comes from CVMFLEET_ETCD_PASSWORD or
    /// --etcd-password-file, never from the command line.
    #[arg(
        long,
        value_name = "NAME",
        env = "CVMFLEET_ETCD_USER",
        hide_env_values = true,
        requires = "leader_election"
    )]
    pub(crate) etcd_user: Option<String>,
    /// File holding the etcd user's password (a mounted Secret, say); trailing newlines are
    /// ignored.
    #[arg(long, value_name = "FILE", requires = "etcd_user")]
    pub(crate) etcd_password_file: Option<PathBuf>,
}

/// The election's key: one per spec set, so that watchers of different spec sets elect
/// separately and replicas of the same one share it. Today the spec set is named by the
/// canonical form of the paths watched (the same mount path in every replica of a Deployment);
/// this is the one place to change when the set has a name of its own.
pub(crate) fn election_key(paths: &[PathBuf]) -> String {
    let mut canonical: Vec<String> = paths
        .iter()
        .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()).display().to_string())
        .collect();
    canonical.sort();
    canonical.dedup();
    let digest = Sha256::digest(canonical.join("\n").as_bytes());
    let label: String = paths
        .first()
        .and_then(|p| p.file_stem())
        .map(|s| {
            s.to_string_lossy().chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').take(40).collect()
        })
        .filter(|s: &String| !s.is_empty())
        .unwrap_or_else(|| "specs".into());
    format!("/cvmfleet/leader/{label}-{}", &hex::encode(digest)[..16])
}

/// The election's key of a named project (`--project` / `CVMFLEET_PROJECT`): replicas of one
/// project elect together wherever their specs are mounted (issue 12's project name).
pub(crate) fn project_election_key(project: &str) -> String {
    format!("/cvmfleet/leader/project/{project}")
}

/// This replica's name in the lease: host name and process ID (a pod's name in Kubernetes).
pub(crate) fn identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "cvmfleet".into());
    format!("{host}/{}", std::process::id())
}

/// Reads a file a flag names through the one bounded reader (regular files only, at most `max`
/// bytes): a FIFO cannot hang start-up nor `/dev/zero` exhaust memory (issue 25, items 4-5).
fn read(path: &Path, flag: &str, max: u64) -> anyhow::Result<Vec<u8>> {
    read_bounded(path, max).with_context(|| format!("{flag} {}: cannot read it", path.display()))
}

/// The TLS material the flags name, checked now: an error names the flag, the file and what is
/// wrong with it (issue 25, item 6).
fn tls(args: &ElectionArgs, ca: &Path) -> anyhow::Result<EtcdTls> {
    let ca_pem = read(ca, "--etcd-cacert", MAX_PEM_BYTES)?;
    let client = match (&args.etcd_cert, &args.etcd_key) {
        (Some(cert), Some(key)) => Some((
            (cert, read(cert, "--etcd-cert", MAX_PEM_BYTES)?),
            (key, read(key, "--etcd-key", MAX_PEM_BYTES)?),
        )),
        _ => None,
    };
    let pems = client.as_ref().map(|((_, cert), (_, key))| (cert.as_slice(), key.as_slice()));
    EtcdTls::from_pem(&ca_pem, pems, args.etcd_server_name.clone()).map_err(|error| {
        let (flag, path) = match (error.part(), &client) {
            (TlsPart::ClientCertificate, Some(((cert, _), _))) => ("--etcd-cert", cert.as_path()),
            (TlsPart::ClientKey, Some((_, (key, _)))) => ("--etcd-key", key.as_path()),
            _ => ("--etcd-cacert", ca),
        };
        anyhow::anyhow!("{flag} {}: {error}", path.display())
    })
}

/// The etcd password: from the file, or the environment; empty is an error, as for every other
/// secret (issue 25, item 7).
fn password(args: &ElectionArgs) -> anyhow::Result<Option<String>> {
    let (text, source) = match (&args.etcd_password_file, std::env::var("CVMFLEET_ETCD_PASSWORD")) {
        (Some(file), _) => {
            let bytes = read(file, "--etcd-password-file", MAX_PASSWORD_BYTES)?;
            let text = String::from_utf8(bytes)
                .map_err(|_| anyhow::anyhow!("--etcd-password-file {}: it is not UTF-8", file.display()))?;
            (text, format!("--etcd-password-file {}", file.display()))
        }
        (None, Ok(text)) => (text, "CVMFLEET_ETCD_PASSWORD".to_owned()),
        (None, Err(_)) => return Ok(None),
    };
    let password = text.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        bail!("{source}: the etcd password is empty");
    }
    Ok(Some(password.to_owned()))
}

/// The elector the flags ask for, or `None` without `--leader-election`. Reads the TLS and
/// password files now, so a missing one is a start-up error.
pub(crate) fn elector(
    args: &ElectionArgs,
    paths: &[PathBuf],
    project: Option<&str>,
) -> anyhow::Result<Option<Elector<EtcdStore>>> {
    let Some(url) = &args.leader_election else { return Ok(None) };
    let tls = match (url.tls, &args.etcd_cacert) {
        (true, Some(ca)) => Some(tls(args, ca)?),
        (true, None) => {
            bail!("etcds:// needs --etcd-cacert (the CA that signed the etcd servers' certificates)")
        }
        (false, _)
            if args.etcd_cacert.is_some() || args.etcd_cert.is_some() || args.etcd_server_name.is_some() =>
        {
            bail!("TLS options need an etcds:// URL in --leader-election")
        }
        (false, _) => None,
    };
    let password = if args.etcd_user.is_some() { password(args)? } else { None };
    let user = match (&args.etcd_user, password) {
        (Some(name), Some(password)) => Some((name.clone(), password)),
        (Some(_), None) => {
            bail!("--etcd-user needs a password in CVMFLEET_ETCD_PASSWORD or --etcd-password-file")
        }
        (None, _) => None,
    };
    let ttl = args.lease_ttl;
    let store = EtcdStore::new(EtcdOptions {
        endpoints: url.endpoints.clone(),
        tls,
        user,
        key: project.map_or_else(|| election_key(paths), project_election_key),
        // A request that takes a third of the lease has already cost one renewal.
        timeout: (ttl / 3).clamp(Duration::from_millis(500), Duration::from_secs(5)),
    });
    Ok(Some(Elector::new(store, ElectionOptions::new(identity(), ttl))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_urls_name_members_and_tls() {
        assert_eq!(
            parse_lease_url("etcd://10.0.0.1:2379,etcd-1.etcd:2379"),
            Ok(LeaseUrl { endpoints: vec!["10.0.0.1:2379".into(), "etcd-1.etcd:2379".into()], tls: false })
        );
        assert_eq!(parse_lease_url("etcds://[::1]:2379").map(|u| u.tls), Ok(true));
        for bad in
            ["http://a:1", "etcd://a", "etcd://a:0", "etcd://a:x", "etcd://:1", "etcd://a b:1", "etcd://"]
        {
            assert!(parse_lease_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ttls_are_whole_seconds_within_etcds_bounds() {
        assert_eq!(parse_ttl("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_ttl("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_ttl("1m"), Ok(Duration::from_secs(60)));
        assert!(parse_ttl("1s").unwrap_err().contains("from 2s"));
        assert!(parse_ttl("500ms").is_err());
        assert!(parse_ttl("11m").is_err());
        assert!(parse_ttl("18446744073709551615m").is_err());
    }

    #[test]
    fn the_key_names_the_spec_set_not_the_spelling_of_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let specs = dir.path().join("specs");
        std::fs::create_dir(&specs).unwrap();
        let key = election_key(std::slice::from_ref(&specs));
        assert!(key.starts_with("/cvmfleet/leader/specs-"), "{key}");
        assert_eq!(key, election_key(&[dir.path().join("specs/../specs")]));
        assert_ne!(key, election_key(&[dir.path().to_owned()]));
        // The digest ignores order and repetition; the label is only for people reading etcd.
        let digest = |key: String| key.rsplit('-').next().map(str::to_owned);
        assert_eq!(
            digest(election_key(&[specs.clone(), dir.path().to_owned()])),
            digest(election_key(&[dir.path().to_owned(), specs, dir.path().to_owned()])),
        );
    }
}
