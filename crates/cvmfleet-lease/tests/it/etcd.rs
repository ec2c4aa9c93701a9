//! `EtcdStore` against a real etcd started on loopback ports in a temporary directory: the
//! lock's four operations, expiry, password authentication and TLS with client certificates.
//! Skipped, with a message, without an `etcd` binary, unless `CVMFLEET_REQUIRE_ETCD=1` (CI).

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cvmfleet_lease::{Acquired, EtcdOptions, EtcdStore, EtcdTls, LeaseError, LeaseStore, TlsError};

const KEY: &str = "/cvmfleet/leader/test";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

fn etcd_installed() -> bool {
    if Command::new("etcd").arg("--version").output().is_ok() {
        return true;
    }
    let required = std::env::var("CVMFLEET_REQUIRE_ETCD").is_ok_and(|v| v == "1");
    assert!(!required, "CVMFLEET_REQUIRE_ETCD=1 but etcd is not installed: apt-get install etcd-server");
    eprintln!(
        "skipped: etcd is not installed (apt-get install etcd-server; set CVMFLEET_REQUIRE_ETCD=1 to require it)"
    );
    false
}

/// One etcd member; killed when dropped.
struct Etcd {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Etcd {
    /// Starts etcd with `tls` files (server cert, key, CA) for HTTPS with client certificates.
    fn start(tls: Option<&Path>) -> Etcd {
        let dir = tempfile::tempdir().expect("dir");
        let (port, peer) = (free_port(), free_port());
        let scheme = if tls.is_some() { "https" } else { "http" };
        let client = format!("{scheme}://127.0.0.1:{port}");
        let peer = format!("http://127.0.0.1:{peer}");
        let mut command = Command::new("etcd");
        command
            .args(["--name", "t", "--data-dir"])
            .arg(dir.path().join("data"))
            .args(["--listen-client-urls", &client, "--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer, "--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("t={peer}")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(certs) = tls {
            command
                .arg("--cert-file")
                .arg(certs.join("server.pem"))
                .arg("--key-file")
                .arg(certs.join("server.key"))
                .arg("--trusted-ca-file")
                .arg(certs.join("ca.pem"))
                .arg("--client-cert-auth");
        }
        let child = command.spawn().expect("spawn etcd");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "etcd did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Etcd { child, port, dir }
    }

    fn options(&self) -> EtcdOptions {
        EtcdOptions {
            endpoints: vec![format!("127.0.0.1:{}", self.port)],
            tls: None,
            user: None,
            key: KEY.into(),
            timeout: Duration::from_secs(2),
        }
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = &self.dir;
    }
}

/// Retries `op` while etcd is still starting (it listens before it serves).
async fn first<T>(op: impl AsyncFn() -> Result<T, LeaseError>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match op().await {
            Ok(value) => return value,
            Err(error) if Instant::now() < deadline => {
                let _ = error;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => panic!("etcd never answered: {}", cvmfleet_lease::error_chain(&error)),
        }
    }
}

fn held(answer: Acquired<i64>) -> i64 {
    match answer {
        Acquired::Held { lease, ttl } => {
            assert_eq!(ttl, Duration::from_secs(2), "the TTL etcd granted");
            lease
        }
        Acquired::Taken { holder } => panic!("taken by {holder}"),
    }
}

#[tokio::test]
async fn one_holder_renews_releases_and_a_watcher_sees_the_lock_free_at_once() {
    if !etcd_installed() {
        return;
    }
    let etcd = Etcd::start(None);
    let (a, b) = (EtcdStore::new(etcd.options()), EtcdStore::new(etcd.options()));
    let ttl = Duration::from_secs(2);
    let lease = held(first(async || a.acquire("a", ttl).await).await);
    assert_eq!(b.acquire("b", ttl).await.expect("answer"), Acquired::Taken { holder: "a".into() });
    assert_eq!(a.renew(&lease).await.expect("renewed"), ttl);

    // b waits for the key's deletion; a's release wakes it within milliseconds.
    let waiting = tokio::spawn(async move {
        let started = Instant::now();
        b.wait_vacant(Duration::from_secs(10)).await;
        (b, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    a.release(&lease).await.expect("released");
    let (b, waited) = waiting.await.expect("waited");
    assert!(waited < Duration::from_secs(2), "woke after {waited:?}");
    let next = held(b.acquire("b", ttl).await.expect("answer"));
    assert_ne!(next, lease);
    assert!(matches!(a.renew(&lease).await, Err(LeaseError::Lost { .. })), "a revoked lease is gone");
    a.release(&lease).await.expect("releasing twice is fine");
}

#[tokio::test]
async fn a_lease_left_alone_expires_and_takes_the_key_with_it() {
    if !etcd_installed() {
        return;
    }
    let etcd = Etcd::start(None);
    let (a, b) = (EtcdStore::new(etcd.options()), EtcdStore::new(etcd.options()));
    let ttl = Duration::from_secs(2);
    let lease = held(first(async || a.acquire("a", ttl).await).await);
    let started = Instant::now();
    b.wait_vacant(Duration::from_secs(10)).await;
    let freed = started.elapsed();
    assert!(freed >= Duration::from_millis(1500) && freed < Duration::from_secs(4), "freed after {freed:?}");
    assert!(matches!(b.acquire("b", ttl).await, Ok(Acquired::Held { .. })));
    let lost = a.renew(&lease).await;
    assert!(matches!(lost, Err(LeaseError::Lost { .. })), "{lost:?}");
}

#[tokio::test]
async fn password_authentication_is_used_and_a_wrong_password_is_refused() {
    if !etcd_installed() {
        return;
    }
    let etcd = Etcd::start(None);
    let options = etcd.options();
    // Set-up through the same HTTP gateway the store speaks: a root user, then authentication on.
    // reqwest is built without a default crypto provider (issue 23 §2).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let admin = reqwest::Client::new();
    let post = async |path: &str, body: serde_json::Value| {
        let url = format!("http://127.0.0.1:{}/v3/{path}", etcd.port);
        admin.post(url).json(&body).send().await.and_then(reqwest::Response::error_for_status)
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while post("auth/user/add", serde_json::json!({"name": "root", "password": "s3cret-root"})).await.is_err()
    {
        assert!(Instant::now() < deadline, "etcd never answered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    post("auth/user/grant", serde_json::json!({"user": "root", "role": "root"})).await.expect("grant");
    post("auth/enable", serde_json::json!({})).await.expect("auth on");

    let ttl = Duration::from_secs(2);
    let anonymous = EtcdStore::new(options.clone());
    assert!(matches!(anonymous.acquire("a", ttl).await, Err(LeaseError::Refused { .. })));
    let wrong =
        EtcdStore::new(EtcdOptions { user: Some(("root".into(), "wrong".into())), ..options.clone() });
    let refused = wrong.acquire("a", ttl).await.expect_err("refused");
    assert!(matches!(refused, LeaseError::Refused { .. }), "{refused:?}");
    let shown = format!("{refused} {refused:?} {:?}", wrong);
    assert!(!shown.contains("wrong"), "the password never shows: {shown}");
    let right = EtcdStore::new(EtcdOptions { user: Some(("root".into(), "s3cret-root".into())), ..options });
    let lease = held(right.acquire("a", ttl).await.expect("authenticated"));
    right.renew(&lease).await.expect("renewed");
    right.release(&lease).await.expect("released");
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, made with `openssl`.
fn certificates(dir: &Path) -> bool {
    let run = |args: &[&str]| {
        Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
    };
    if run(&["version"]).is_err() {
        eprintln!("skipped: openssl is not installed");
        return false;
    }
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    let ok = |s: std::io::Result<std::process::ExitStatus>| s.is_ok_and(|s| s.success());
    assert!(ok(run(&[
        &["req", "-x509"][..],
        &ec,
        &["-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=test-ca"]
    ]
    .concat())));
    // etcd's HTTP gateway reaches its own gRPC server with the server certificate, so under
    // --client-cert-auth that certificate must allow client authentication too (etcd's TLS guide).
    for (name, usage) in [("server", "serverAuth,clientAuth"), ("client", "clientAuth")] {
        let (key, csr, pem, ext) =
            (format!("{name}.key"), format!("{name}.csr"), format!("{name}.pem"), format!("{name}.ext"));
        std::fs::write(dir.join(&ext), format!("subjectAltName=IP:127.0.0.1\nextendedKeyUsage={usage}\n"))
            .expect("ext");
        assert!(ok(run(&[
            &["req"][..],
            &ec,
            &["-keyout", &key, "-out", &csr, "-subj", &format!("/CN={name}")]
        ]
        .concat())));
        assert!(ok(run(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &pem,
            "-days",
            "1",
            "-extfile",
            &ext,
        ])));
    }
    true
}

#[tokio::test]
async fn tls_with_a_client_certificate_is_used_and_required() {
    if !etcd_installed() {
        return;
    }
    let certs = tempfile::tempdir().expect("dir");
    if !certificates(certs.path()) {
        return;
    }
    let etcd = Etcd::start(Some(certs.path()));
    let read = |name: &str| std::fs::read(certs.path().join(name)).expect("cert");
    let (ca, cert, key) = (read("ca.pem"), read("client.pem"), read("client.key"));
    let tls = EtcdTls::from_pem(&ca, Some((&cert, &key)), None).expect("valid material");
    let store = EtcdStore::new(EtcdOptions { tls: Some(tls.clone()), ..etcd.options() });
    assert!(store.describe().starts_with("etcds://127.0.0.1:"), "{}", store.describe());
    let ttl = Duration::from_secs(2);
    let lease = held(first(async || store.acquire("a", ttl).await).await);
    store.release(&lease).await.expect("released");

    let plain = EtcdStore::new(etcd.options());
    assert!(plain.acquire("b", ttl).await.is_err(), "plain gRPC to a TLS port");
    let anonymous = EtcdTls::from_pem(&ca, None, None).expect("valid CA");
    let anonymous = EtcdStore::new(EtcdOptions { tls: Some(anonymous), ..etcd.options() });
    assert!(anonymous.acquire("b", ttl).await.is_err(), "no client certificate");
    // The certificate is for 127.0.0.1: checked against another name, the handshake fails;
    // against its own, it passes whatever the endpoint is called.
    let named = |name: &str| EtcdTls::from_pem(&ca, Some((&cert, &key)), Some(name.into())).expect("valid");
    let wrong = EtcdStore::new(EtcdOptions { tls: Some(named("etcd.example")), ..etcd.options() });
    assert!(matches!(wrong.acquire("b", ttl).await, Err(LeaseError::Unavailable { .. })));
    let right = EtcdStore::new(EtcdOptions { tls: Some(named("127.0.0.1")), ..etcd.options() });
    let lease = held(right.acquire("b", ttl).await.expect("the certificate's own name"));
    right.release(&lease).await.expect("released");
    // A key that is not the certificate's is refused when the material is read.
    let other = read("server.key");
    let mismatch = EtcdTls::from_pem(&ca, Some((&cert, &other)), None).expect_err("mismatch");
    assert!(matches!(mismatch, TlsError::KeyMismatch { .. }), "{mismatch}");
}
