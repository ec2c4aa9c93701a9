//! Cost in the plan (issue 14), end to end: the real binary against an emulator on a loopback
//! port, priced with the emulator's price table (InquiryPriceRunInstances).

use cvmfleet_emulator::{Catalog, StockSpec};
use cvmfleet_wire::Action;

use crate::common::{Cloud, Run, repo_root};

/// The run as snapshot text, the endpoint and RequestIds filtered.
fn shown(run: &Run, cloud: &Cloud) -> String {
    let text = run.snapshot(&[(cloud.emulator.endpoint().as_str(), "[ENDPOINT]")]);
    let mut out = String::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("RequestId ") {
        let (head, tail) = rest.split_at(at + "RequestId ".len());
        out.push_str(head);
        out.push_str("[ID]");
        rest = &tail[tail.find(')').unwrap_or(tail.len())..];
    }
    out.push_str(rest);
    out
}

fn spec(bound: &str, replicas: u32, instance_type: &str) -> String {
    format!(
        "fleets:
  - name: e2e
    region: ap-guangzhou
    policies: {{maxTerminatePercent: 100{bound}}}
    defaults:
      ImageId: img-pmqg1cw7
      VirtualPrivateCloud: {{VpcId: vpc-2zxc8w1p}}
    groups:
      - name: web
        replicas: {replicas}
        zones:
          - {{zone: ap-guangzhou-3, SubnetId: subnet-g3a1x7k2}}
        template: {{InstanceType: {instance_type}, InstanceName: web}}
"
    )
}

fn quotes_sent(cloud: &Cloud) -> u64 {
    cloud.emulator.stats().requests.get(Action::InquiryPriceRunInstances.as_str()).copied().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_starter_fleet_is_priced_with_the_emulators_table() {
    let cloud = Cloud::start().await;
    let starter = std::fs::read_to_string(repo_root().join("specs/starter.yaml")).expect("starter spec");
    cloud.write_spec(&starter);
    let plan = cloud.run(&["plan", "fleet.yaml"]).await;
    assert_eq!(plan.code, 2, "{}", plan.snapshot(&[]));
    insta::assert_snapshot!("starter_plan_cost", shown(&plan, &cloud));
    // web and worker share their launch settings in ap-guangzhou-4: 4 configurations, 4 quotes.
    assert_eq!(quotes_sent(&cloud), 4);

    let json = cloud.run(&["plan", "fleet.yaml", "--format", "json"]).await;
    let document: serde_json::Value = serde_json::from_str(&json.stdout).expect("plan JSON");
    let groups: Vec<(&str, &serde_json::Value)> = document["fleets"][0]["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .map(|g| (g["name"].as_str().unwrap_or_default(), &g["cost"]))
        .collect();
    insta::assert_json_snapshot!(
        "starter_plan_cost_json",
        serde_json::json!({"summary": document["summary"]["cost"], "fleet": document["fleets"][0]["cost"], "groups": groups})
    );

    // Once applied, nothing changes and nothing more is spent.
    let applied = cloud.run(&["apply", "fleet.yaml", "--auto-approve"]).await;
    assert_eq!(applied.code, 0, "{}", applied.snapshot(&[]));
    cloud.emulator.advance_clock(std::time::Duration::from_secs(5));
    let again = cloud.run(&["plan", "fleet.yaml"]).await;
    assert_eq!(again.code, 0, "{}", again.snapshot(&[]));
    let cost = document["summary"]["cost"]["monthly_after"].as_f64().expect("a known cost");
    let line = again.stdout.lines().last().unwrap_or_default();
    assert_eq!(line, format!("Cost: {}/month (no change)", cvmfleet_plan::cost::money(cost)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_budget_guard_refuses_until_allowed() {
    let cloud = Cloud::start().await;
    cloud.write_spec(&spec(", maxMonthlyCostIncrease: 200", 3, "S5.MEDIUM2"));
    let plan = cloud.run(&["plan", "fleet.yaml"]).await;
    assert_eq!(plan.code, 2);
    insta::assert_snapshot!("budget_refused_plan", shown(&plan, &cloud));
    let refused = cloud.run(&["apply", "fleet.yaml", "--auto-approve"]).await;
    assert_eq!(refused.code, 1, "{}", refused.snapshot(&[]));
    assert!(refused.stderr.contains("the plan exceeds safety limits"), "{}", refused.stderr);
    assert!(cloud.client.describe_instances_all("ap-guangzhou", vec![]).await.expect("list").is_empty());

    let allowed = cloud.run(&["apply", "fleet.yaml", "--auto-approve", "--allow-cost-increase"]).await;
    assert_eq!(allowed.code, 0, "{}", allowed.snapshot(&[]));
    assert_eq!(cloud.client.describe_instances_all("ap-guangzhou", vec![]).await.expect("list").len(), 3);

    // A saving is never refused, even under a bound of 0; a group's own bound checks it alone.
    cloud.emulator.advance_clock(std::time::Duration::from_secs(5));
    cloud.write_spec(&spec(", maxMonthlyCostIncrease: 0", 1, "S5.MEDIUM2"));
    let shrink = cloud.run(&["plan", "fleet.yaml"]).await;
    assert!(!shrink.stdout.contains("refused"), "{}", shrink.stdout);
    let own = spec("", 4, "S5.MEDIUM2")
        .replace("        template:", "        policies: {maxMonthlyCostIncrease: 10}\n        template:");
    cloud.write_spec(&own);
    let grow = cloud.run(&["plan", "fleet.yaml"]).await;
    assert!(
        grow.stdout
            .contains("refused: fleet e2e group web: would add ¥168.63/month to the group's monthly cost"),
        "{}",
        grow.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_price_is_shown_as_unknown_and_never_blocks() {
    // A catalog without S5.LARGE8's prices.
    let mut catalog = Catalog::builtin();
    catalog.prices.instances.retain(|p| p.instance_type != "S5.LARGE8");
    let cloud = Cloud::start_with(|c| c.catalog(catalog)).await;
    cloud.write_spec(&spec(", maxMonthlyCostIncrease: 1", 2, "S5.LARGE8"));
    let plan = cloud.run(&["plan", "fleet.yaml"]).await;
    assert_eq!(plan.code, 2);
    insta::assert_snapshot!("unknown_price_plan", shown(&plan, &cloud));
    let applied = cloud.run(&["apply", "fleet.yaml", "--auto-approve"]).await;
    assert_eq!(applied.code, 0, "an unknown price blocks nothing:\n{}", applied.snapshot(&[]));

    // Sold out: the quote is refused (ResourcesSoldOut.SpecifiedInstanceType), the price unknown.
    let sold_out = StockSpec {
        zone: "ap-guangzhou-3".into(),
        instance_type: "S5.MEDIUM2".into(),
        charge_type: None,
        available: Some(0),
    };
    cloud.emulator.set_stock(&[sold_out]).expect("stock");
    cloud.write_spec(&spec("", 1, "S5.MEDIUM2"));
    let json = cloud.run(&["plan", "fleet.yaml", "--format", "json"]).await;
    let document: serde_json::Value = serde_json::from_str(&json.stdout).expect("plan JSON");
    assert_eq!(document["summary"]["cost"]["monthly_after"], serde_json::Value::Null);
    let warnings = document["warnings"].to_string();
    assert!(warnings.contains("ResourcesSoldOut.SpecifiedInstanceType"), "{warnings}");
}
