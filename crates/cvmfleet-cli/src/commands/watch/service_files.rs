//! The service files under `deploy/` start `cvmfleet watch` with flags: each command line is
//! parsed here by the CLI's own parser (clap's `Command`, not a copy of its flag list), so a
//! renamed or removed flag breaks this test rather than a deployment. What they claim about each
//! other (ports, probes, the Secret's keys, the specs' mount) is checked too.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Parser as _;
use saphyr::{LoadableYamlNode as _, Scalar, Yaml};
use serde_json::{Value, json};

use super::WatchArgs;
use crate::commands::{Cli, Command};

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

/// `cvmfleet ARGS...` through the real parser; the arguments of `watch`.
fn parse_watch(args: &[String]) -> WatchArgs {
    let argv = std::iter::once("cvmfleet".to_owned()).chain(args.iter().cloned());
    match Cli::try_parse_from(argv) {
        Ok(Cli { command: Command::Watch(watch) }) => watch,
        Ok(other) => panic!("{args:?} is not `watch`: {other:?}"),
        Err(error) => panic!("{args:?} does not parse: {error}"),
    }
}

/// A YAML node as JSON, for easy navigation.
fn to_json(node: &Yaml) -> Value {
    match node {
        Yaml::Value(Scalar::Null) => Value::Null,
        Yaml::Value(Scalar::Boolean(b)) => json!(b),
        Yaml::Value(Scalar::Integer(i)) => json!(i),
        Yaml::Value(Scalar::FloatingPoint(f)) => json!(f.into_inner()),
        Yaml::Value(Scalar::String(s)) => json!(s),
        Yaml::Sequence(items) => Value::Array(items.iter().map(to_json).collect()),
        Yaml::Mapping(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let key = match to_json(k) {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
        Yaml::Tagged(_, inner) => to_json(inner),
        other => panic!("unexpected YAML node {other:?}"),
    }
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

/// Every document of every `*.yaml` in `deploy/kubernetes`, by kind, and the file names.
fn manifests() -> (BTreeMap<String, Value>, Vec<String>) {
    let mut by_kind = BTreeMap::new();
    let mut files = Vec::new();
    let dir = deploy().join("kubernetes");
    for entry in std::fs::read_dir(&dir).expect("deploy/kubernetes") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        let text = std::fs::read_to_string(&path).expect("read manifest");
        let docs = Yaml::load_from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        for doc in &docs {
            let doc = to_json(doc);
            let kind = doc["kind"]
                .as_str()
                .unwrap_or_else(|| panic!("{name}: a document without a kind"))
                .to_owned();
            assert!(by_kind.insert(kind.clone(), doc).is_none(), "two {kind}s");
        }
        files.push(name);
    }
    files.sort();
    (by_kind, files)
}

#[test]
fn kubernetes_manifests_run_two_electing_replicas_with_real_flags() {
    let (docs, files) = manifests();
    let mut listed = strings(&docs["Kustomization"]["resources"]);
    listed.push("kustomization.yaml".into());
    listed.sort();
    assert_eq!(listed, files, "the kustomization lists every manifest");

    let deployment = &docs["Deployment"];
    assert_eq!(deployment["spec"]["replicas"], 2);
    let pod = &deployment["spec"]["template"];
    let container = &pod["spec"]["containers"][0];
    let watch = parse_watch(&strings(&container["args"]));
    assert!(watch.election.leader_election.is_some(), "the replicas elect a leader");
    assert!(watch.auto_apply);
    assert_eq!(watch.paths, [PathBuf::from("/specs")]);

    // Metrics and probes on the port the watch serves.
    let port = &container["ports"][0];
    assert_eq!(port["name"], "metrics");
    assert_eq!(Some(port["containerPort"].as_u64()), Some(watch.metrics_addr.map(|a| u64::from(a.port()))));
    for probe in ["readinessProbe", "livenessProbe"] {
        assert_eq!(container[probe]["httpGet"]["path"], "/healthz", "{probe}");
        assert_eq!(container[probe]["httpGet"]["port"], "metrics", "{probe}");
    }
    // Non-root, as the image is.
    assert_eq!(pod["spec"]["securityContext"]["runAsNonRoot"], true);
    assert!(pod["spec"]["securityContext"]["runAsUser"].as_u64().is_some_and(|u| u != 0));

    // The specs: a ConfigMap mounted where the watch reads, holding specs that validate.
    let mount = &container["volumeMounts"][0];
    assert_eq!(mount["mountPath"], "/specs");
    let volume = pod["spec"]["volumes"].as_array().into_iter().flatten().find(|v| v["name"] == mount["name"]);
    let config_map = &docs["ConfigMap"];
    assert_eq!(volume.map(|v| &v["configMap"]["name"]), Some(&config_map["metadata"]["name"]));
    let specs = config_map["data"].as_object().expect("data");
    assert!(!specs.is_empty());
    for (name, text) in specs {
        let text = text.as_str().unwrap_or_default();
        if let Err(diagnostics) = cvmfleet_spec::load_bytes(name, text.as_bytes()) {
            panic!("{name} does not validate:\n{diagnostics}");
        }
    }

    // Credentials from the Secret, with every key the flags need.
    let secret = &docs["Secret"];
    assert_eq!(container["envFrom"][0]["secretRef"]["name"], secret["metadata"]["name"]);
    let keys = secret["stringData"].as_object().expect("stringData");
    for key in ["TENCENTCLOUD_SECRET_ID", "TENCENTCLOUD_SECRET_KEY"] {
        assert!(keys.contains_key(key), "{key}");
    }
    if watch.election.etcd_user.is_some() {
        assert!(keys.contains_key("CVMFLEET_ETCD_PASSWORD"), "--etcd-user needs its password");
    }

    // The Service selects the pods; the ServiceMonitor selects the Service and scrapes /metrics.
    let labels = pod["metadata"]["labels"].as_object().expect("pod labels");
    let service = &docs["Service"];
    for (k, v) in service["spec"]["selector"].as_object().expect("selector") {
        assert_eq!(labels.get(k), Some(v), "service selector {k}");
    }
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "metrics");
    let monitor = &docs["ServiceMonitor"];
    let service_labels = service["metadata"]["labels"].as_object().expect("service labels");
    for (k, v) in monitor["spec"]["selector"]["matchLabels"].as_object().expect("matchLabels") {
        assert_eq!(service_labels.get(k), Some(v), "monitor selector {k}");
    }
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], service["spec"]["ports"][0]["name"]);
    assert_eq!(monitor["spec"]["endpoints"][0]["path"], "/metrics");
}

#[test]
fn the_systemd_unit_starts_watch_with_real_flags() {
    let unit = std::fs::read_to_string(deploy().join("systemd/cvmfleet-watch.service")).expect("unit");
    let exec = unit.lines().find_map(|l| l.strip_prefix("ExecStart=")).expect("ExecStart");
    let words: Vec<String> = exec.split_whitespace().map(str::to_owned).collect();
    assert_eq!(words[0], "/usr/local/bin/cvmfleet");
    let watch = parse_watch(&words[1..]);
    assert!(watch.election.leader_election.is_some());
    assert!(watch.metrics_addr.is_some_and(|a| a.ip().is_loopback()), "metrics stay on the host");
    assert!(unit.contains("ExecReload=/bin/kill -HUP $MAINPID"), "reload starts a cycle now");
    assert!(unit.contains("KillSignal=SIGTERM"), "SIGTERM resigns the lease");
}

#[test]
fn the_container_image_is_multi_stage_non_root_and_holds_only_the_binary() {
    let text = std::fs::read_to_string(deploy().join("Dockerfile")).expect("Dockerfile");
    let lines: Vec<&str> =
        text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    let stages: Vec<usize> =
        lines.iter().enumerate().filter(|(_, l)| l.starts_with("FROM ")).map(|(i, _)| i).collect();
    assert!(stages.len() >= 2, "multi-stage");
    let last = &lines[stages[stages.len() - 1]..];
    let copies: Vec<&&str> = last.iter().filter(|l| l.starts_with("COPY") || l.starts_with("ADD")).collect();
    assert_eq!(copies, [&"COPY --from=build /cvmfleet /usr/local/bin/cvmfleet"], "the binary only");
    let user = last.iter().find_map(|l| l.strip_prefix("USER ")).expect("USER in the final stage");
    assert!(!matches!(user.split(':').next(), Some("0" | "root")), "non-root: {user}");
    assert!(lines.iter().any(|l| l.contains("cargo build --release --locked")), "the release binary");
    let cmd = last.iter().find_map(|l| l.strip_prefix("CMD ")).expect("CMD");
    let args: Vec<String> = serde_json::from_str(cmd).expect("CMD in exec form");
    let watch = parse_watch(&args);
    assert!(watch.metrics_addr.is_some());
}
