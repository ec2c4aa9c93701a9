//! The agreement property (issue 11, section 1): for generated launch templates, valid and
//! invalid, at the edges of every limit the wire crate defines once (`cvmfleet_wire::vocab`,
//! `cvmfleet_wire::names`), `cvmfleet validate` (the spec loader) accepts exactly when the
//! emulator's RunInstances with `DryRun: true` answers `DryRunOperation` for every call the
//! reconciler may send for the group: one instance, and the largest call (a zone's share, at
//! most `INSTANCE_COUNT_MAX`).
//!
//! What the generator leaves out, and why: Windows images (the spec cannot know an image's
//! platform, so it checks host names by the Linux rules); `{IP}` in host names near the length
//! limit (validate assumes the longest address, the emulator knows the real one); catalog
//! lookups (IDs that do not exist are the cloud's verdict, not a rule); `InstanceChargePrepaid`
//! on a non-PREPAID instance (validate refuses it as a likely mistake; the API ignores it); tags
//! (the reconciler adds its own five) and `TagSpecification` for disks (the emulator supports
//! instance tags only).
//!
//! The run is seeded: CI sets `PROPTEST_RNG_SEED`; a failure prints the minimal template.

use base64::Engine as _;
use cvmfleet_wire::codes;
use cvmfleet_wire::vocab::{self, DiskType, InternetChargeType};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Map, Value, json};

use crate::common::{Client, config, start};

const ZONE: &str = "ap-guangzhou-3";

/// A generated group: its replicas (one zone) and the template fields beside ImageId and
/// InstanceType.
#[derive(Debug, Clone)]
struct Case {
    replicas: u32,
    template: Map<String, Value>,
}

/// One of the values, or None.
fn maybe<T: Clone + std::fmt::Debug + 'static>(values: Vec<T>) -> impl Strategy<Value = Option<T>> {
    prop::option::weighted(0.7, prop::sample::select(values))
}

fn letters(lengths: Vec<usize>) -> impl Strategy<Value = String> {
    prop::sample::select(lengths)
        .prop_flat_map(|n| proptest::string::string_regex(&format!("[a-z]{{{n}}}")).unwrap())
}

fn pattern() -> impl Strategy<Value = String> {
    (prop::sample::select(vec![0u64, 1, 3, 9, 99, 999_999]), prop::option::of(0u32..=9)).prop_map(|(x, f)| {
        match f {
            Some(y) => format!("{{R:{x},F:{y}}}"),
            None => format!("{{R:{x}}}"),
        }
    })
}

fn instance_name() -> impl Strategy<Value = String> {
    prop_oneof![
        letters(vec![1, 8, 56, 57, 58, 59, 60, 61, 127, 128, 129]),
        (letters(vec![0, 4, 50, 52, 54, 55, 56]), pattern()).prop_map(|(a, p)| format!("{a}{p}")),
        (letters(vec![0, 2, 120, 123]), pattern(), pattern()).prop_map(|(a, p, q)| format!("{a}{p}-{q}")),
        // CJK: 3 bytes a character, so 20 fit and 21 do not.
        (prop::sample::select(vec![17usize, 18, 19, 20, 21]), prop::option::of(pattern()))
            .prop_map(|(n, p)| format!("{}{}", "名".repeat(n), p.unwrap_or_default())),
        Just(String::new()),
        Just("x{}y".to_owned()),
    ]
}

fn host_name() -> impl Strategy<Value = String> {
    prop_oneof![
        letters(vec![1, 2, 3, 57, 58, 59, 60, 61]),
        (letters(vec![1, 2, 50, 54, 55, 56, 58]), pattern()).prop_map(|(a, p)| format!("{a}{p}")),
        (letters(vec![1, 3]), letters(vec![1, 20, 40])).prop_map(|(a, b)| format!("{a}.{b}")),
        prop::sample::select(vec![
            "web_1",
            "-web",
            "web.",
            "web-",
            "a..b",
            "a.-b",
            "Web.Example-1",
            "node-{IP}",
            "n-{IP}-{R:1}",
            "{R:1}",
            "{R:10}",
            "ab{R:1,F:9}",
            "ä-b",
            "123",
        ])
        .prop_map(str::to_owned),
    ]
}

fn disk_type() -> impl Strategy<Value = Option<String>> {
    let mut names: Vec<String> = DiskType::ALL.iter().map(|t| t.as_str().to_owned()).collect();
    names.push("CLOUD_FLOPPY".into());
    maybe(names)
}

const DISK_SIZES: [i64; 12] = [9, 10, 11, 15, 19, 20, 21, 30, 100, 32_000, 32_001, 32_010];

fn data_disks() -> impl Strategy<Value = Vec<Value>> {
    let disk = (disk_type(), prop::sample::select(DISK_SIZES.to_vec())).prop_map(|(t, size)| {
        let mut d = json!({"DiskSize": size});
        if let Some(t) = t {
            d["DiskType"] = json!(t);
        }
        d
    });
    prop_oneof![
        3 => prop::collection::vec(disk, 0..4),
        // The counts: at most 21, of which 1 local and 20 cloud.
        1 => (0usize..=2, 19usize..=22).prop_map(|(local, cloud)| {
            let mut v: Vec<Value> = (0..local).map(|_| json!({"DiskSize": 50})).collect();
            v.extend((0..cloud).map(|_| json!({"DiskType": "CLOUD_PREMIUM", "DiskSize": 10})));
            v
        }),
    ]
}

fn internet() -> impl Strategy<Value = Value> {
    let charges: Vec<&str> = InternetChargeType::ALL.iter().map(|t| t.as_str()).collect();
    let max = i64::from(vocab::INTERNET_MAX_BANDWIDTH_OUT_MAX);
    (
        maybe(charges),
        maybe(vec![0, 1, 100, max - 1, max, max + 1, 65_535]),
        maybe(vec![true, false]),
        maybe(vec!["bwp-0a1b2c3d"]),
    )
        .prop_map(|(charge, bandwidth, public, package)| {
            let mut v = Map::new();
            if let Some(c) = charge {
                v.insert("InternetChargeType".into(), json!(c));
            }
            if let Some(b) = bandwidth {
                v.insert("InternetMaxBandwidthOut".into(), json!(b));
            }
            if let Some(p) = public {
                v.insert("PublicIpAssigned".into(), json!(p));
            }
            if let Some(id) = package {
                v.insert("BandwidthPackageId".into(), json!(id));
            }
            Value::Object(v)
        })
}

fn user_data() -> impl Strategy<Value = String> {
    let max = vocab::USER_DATA_MAX_BYTES;
    prop_oneof![
        prop::sample::select(vec![0, 1, 2, 3, max - 2, max - 1, max, max + 1, max + 2])
            .prop_map(|n| base64::engine::general_purpose::STANDARD.encode(vec![b'#'; n])),
        // Right length, missing padding: 21,848 characters decode to 16,386 bytes.
        Just("QUJD".repeat(vocab::USER_DATA_MAX_BASE64_CHARS / 4)),
        prop::sample::select(vec!["aGVsbG8", "aGVsbG9=", "not base64!", "====", "aGVsbG8="])
            .prop_map(str::to_owned),
    ]
}

fn charge() -> impl Strategy<Value = Map<String, Value>> {
    let periods = vec![0u32, 1, 12, 13, 24, 36, 48];
    let flags: Vec<&str> = vocab::RenewFlag::ALL.iter().map(|f| f.as_str()).collect();
    prop_oneof![
        Just(Map::new()),
        Just(Map::from_iter([("InstanceChargeType".into(), json!("POSTPAID_BY_HOUR"))])),
        (prop::option::of((prop::sample::select(periods), maybe(flags)))).prop_map(|prepaid| {
            let mut m = Map::from_iter([("InstanceChargeType".into(), json!("PREPAID"))]);
            if let Some((period, flag)) = prepaid {
                let mut p = json!({"Period": period});
                if let Some(f) = flag {
                    p["RenewFlag"] = json!(f);
                }
                m.insert("InstanceChargePrepaid".into(), p);
            }
            m
        }),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    let system_sizes = vec![19i64, 20, 21, 50, 2047, 2048, 2049];
    (
        prop_oneof![1u32..=3, Just(9), Just(10), Just(11), Just(99), Just(100), Just(101), 120u32..=150],
        (charge(), prop::option::weighted(0.5, instance_name()), prop::option::weighted(0.5, host_name())),
        (prop::option::of((disk_type(), maybe(system_sizes))), prop::option::weighted(0.5, data_disks())),
        (prop::option::weighted(0.5, internet()), prop::option::weighted(0.4, user_data())),
    )
        .prop_map(|(replicas, (charge, name, host), (system, data), (net, user))| {
            let mut t = charge;
            if let Some(n) = name {
                t.insert("InstanceName".into(), json!(n));
            }
            if let Some(h) = host {
                t.insert("HostName".into(), json!(h));
            }
            if let Some((kind, size)) = system {
                let mut d = Map::new();
                if let Some(k) = kind {
                    d.insert("DiskType".into(), json!(k));
                }
                if let Some(s) = size {
                    d.insert("DiskSize".into(), json!(s));
                }
                t.insert("SystemDisk".into(), Value::Object(d));
            }
            if let Some(d) = data {
                t.insert("DataDisks".into(), Value::Array(d));
            }
            if let Some(n) = net {
                t.insert("InternetAccessible".into(), n);
            }
            if let Some(u) = user {
                t.insert("UserData".into(), json!(u));
            }
            Case { replicas, template: t }
        })
}

/// The spec file of a case: JSON is YAML, and the loader reads it like any spec.
fn spec_text(case: &Case) -> String {
    let mut template = case.template.clone();
    template.insert("ImageId".into(), json!("img-pmqg1cw7"));
    template.insert("InstanceType".into(), json!("S5.MEDIUM2"));
    let spec = json!({"fleets": [{
        "name": "agree",
        "region": "ap-guangzhou",
        "groups": [{"name": "g", "replicas": case.replicas, "zones": [ZONE], "template": template}],
    }]});
    serde_json::to_string_pretty(&spec).unwrap_or_default()
}

/// The RunInstances body the reconciler sends for `count` instances of the case.
fn request(case: &Case, count: u32) -> Value {
    let mut body = case.template.clone();
    body.insert("ImageId".into(), json!("img-pmqg1cw7"));
    body.insert("InstanceType".into(), json!("S5.MEDIUM2"));
    body.insert("Placement".into(), json!({"Zone": ZONE}));
    body.insert("InstanceCount".into(), json!(count));
    body.insert("DryRun".into(), json!(true));
    Value::Object(body)
}

#[test]
fn validate_accepts_exactly_what_the_emulator_dry_run_accepts() {
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let emulator = rt.block_on(start(config()));
    let client = Client::new(&emulator);
    let mut runner = TestRunner::new(Config { cases: 500, ..Config::default() });
    let seen = [std::cell::Cell::new(0usize), std::cell::Cell::new(0usize)];
    let result = runner.run(&case(), |case| {
        let diagnostics = cvmfleet_spec::load_str("agree.yaml", &spec_text(&case)).err();
        let largest = case.replicas.min(vocab::INSTANCE_COUNT_MAX);
        let mut answers = Vec::new();
        let counts = if largest == 1 { vec![1] } else { vec![1, largest] };
        for count in counts {
            let reply = rt.block_on(client.call("RunInstances", request(&case, count)));
            answers.push((count, reply.error_code().unwrap_or("(no error)").to_owned()));
        }
        let emulator_accepts = answers.iter().all(|(_, code)| code == codes::DRY_RUN_OPERATION);
        let tally = &seen[usize::from(emulator_accepts)];
        tally.set(tally.get() + 1);
        if diagnostics.is_none() != emulator_accepts {
            let said = diagnostics.map_or_else(|| "accepted".to_owned(), |d| d.to_string());
            return Err(TestCaseError::fail(format!(
                "validate and the emulator disagree on {}\nvalidate: {said}\nemulator (count, code): {answers:?}",
                serde_json::to_string(&case.template).unwrap_or_default()
            )));
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    // The generator must exercise both verdicts, or the property says little.
    let (refused, accepted) = (seen[0].get(), seen[1].get());
    assert!(refused > 30 && accepted > 30, "refused {refused}, accepted {accepted} of the cases");
}
