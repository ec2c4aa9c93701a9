//! Conformance with an independent client: the official Python SDK runs the seed's five
//! RunInstances examples (`tests/conformance/seed_examples.py`) and the reference's stock and
//! price examples (`tests/conformance/market_examples.py`) against the emulator, and its Tag
//! client the Tag service and DescribeRegions (`tests/conformance/tag_examples.py`).
//!
//! Skipped, with a message, when `python3` or the SDK is missing, unless
//! `CVMFLEET_REQUIRE_PYTHON_SDK=1`, which makes a missing SDK a failure (CI sets it).

use std::path::Path;
use std::process::Command;

use cvmfleet_emulator::{DEV_SECRET_ID, DEV_SECRET_KEY};

use crate::common::{config, start};

fn sdk_available() -> bool {
    Command::new("python3")
        .args([
            "-c",
            "import tencentcloud.common, tencentcloud.cvm.v20170312.cvm_client, tencentcloud.tag.v20180813.tag_client",
        ])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Whether the SDK is there; a missing one fails the test when CVMFLEET_REQUIRE_PYTHON_SDK=1.
fn sdk_or_skip() -> bool {
    if sdk_available() {
        return true;
    }
    let required = std::env::var("CVMFLEET_REQUIRE_PYTHON_SDK").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "CVMFLEET_REQUIRE_PYTHON_SDK=1 but the Python SDK is missing: \
         pip install -r crates/cvmfleet-emulator/tests/conformance/requirements.txt"
    );
    eprintln!(
        "skipped: the Tencent Cloud Python SDK is not installed (set CVMFLEET_REQUIRE_PYTHON_SDK=1 to require it)"
    );
    false
}

/// Runs a conformance script against the emulator and returns its JSON report.
async fn run_script(name: &str, host: String) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance").join(name);
    let output = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(script)
            .arg(host)
            .env("TENCENTCLOUD_SECRET_ID", DEV_SECRET_ID)
            .env("TENCENTCLOUD_SECRET_KEY", DEV_SECRET_KEY)
            .env_remove("HTTP_PROXY")
            .env_remove("HTTPS_PROXY")
            .env_remove("http_proxy")
            .env_remove("https_proxy")
            .output()
    })
    .await
    .expect("join")
    .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the SDK check {name} failed:\n{stdout}\n{stderr}");
    serde_json::from_str(stdout.trim()).expect("a JSON report")
}

#[tokio::test]
async fn official_python_sdk_runs_the_seed_examples() {
    if !sdk_or_skip() {
        return;
    }
    let emulator = start(config()).await;
    let report = run_script("seed_examples.py", emulator.host()).await;
    assert_eq!(report.as_array().map(Vec::len), Some(11), "{report}");
    // 5 examples + 3 more transports = 9 RunInstances, all with the SDK's own client string.
    assert_eq!(emulator.stats().requests_of("RunInstances"), 9);
    assert_eq!(emulator.stats().instances, 9);
}

/// Issue 12: the SDK's Tag client, unmodified, against the same port as its CVM client.
#[tokio::test]
async fn issue_12_official_python_sdk_tag_client_works() {
    if !sdk_or_skip() {
        return;
    }
    let emulator = start(config()).await;
    let report = run_script("tag_examples.py", emulator.host()).await;
    assert_eq!(report.as_array().map(Vec::len), Some(9), "{report}");
    let stats = emulator.stats();
    // Every Tag call reached the Tag service: 1 + 1 + 1 + 3 TagResources, 3 pages.
    assert_eq!(stats.requests_of("TagResources"), 5, "{stats:?}");
    assert_eq!(stats.requests_of("DescribeResourcesByTags"), 3);
    assert_eq!(stats.requests_of("DescribeRegions"), 1);
    assert_eq!(stats.errors_of("TagResources", "InvalidParameter.ReservedTagKey"), 1);
}

/// Issues 13 and 14: DescribeZoneInstanceConfigInfos and InquiryPriceRunInstances as the SDK
/// parses them, sold-out codes, MinCount and spot options from the SDK's models.
#[tokio::test]
async fn official_python_sdk_reads_stock_and_prices_issue_13_14() {
    if !sdk_or_skip() {
        return;
    }
    let emulator = start(config()).await;
    let report = run_script("market_examples.py", emulator.host()).await;
    assert_eq!(report.as_array().map(Vec::len), Some(4), "{report}");
    // Every type of the built-in catalog but the GPU one (ap-guangzhou-3 only) sells in gz-6.
    assert_eq!(report[0]["items"], 20, "{report}");
    assert_eq!(report[2]["code"], "ResourcesSoldOut.SpecifiedInstanceType");
    assert_eq!(report[3]["delivered"], 2);
    let stats = emulator.stats();
    assert_eq!(stats.requests_of("InquiryPriceRunInstances"), 3);
    assert_eq!(stats.instances_created, 2);
}
