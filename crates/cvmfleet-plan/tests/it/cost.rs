//! Priced plans (issue 14): the cost line, the Markdown cost column and the JSON `cost` fields,
//! and the Markdown limit with costs for a hundred fleets.

use std::collections::BTreeMap;

use cvmfleet_plan::cost::{PriceBook, Quote, monthly_price, quotes};
use cvmfleet_plan::render::{MARKDOWN_LIMIT, RenderOptions, render_markdown, render_text};
use cvmfleet_plan::{DesiredFleet, ObservedFleet, Plan, PlanOptions, plan, plan_priced};
use cvmfleet_wire::model::{ItemPrice, Price};
use cvmfleet_wire::vocab::ChargeUnit;

use crate::world::{CURRENT, OLD, fleet, group, observed, running};

/// The emulator's built-in on-demand prices of two types in ap-guangzhou (yuan per hour).
fn book(needed: &[Quote]) -> PriceBook {
    let mut book = PriceBook::new();
    for quote in needed {
        let hour = match quote.request.instance_type.as_deref() {
            Some("S5.MEDIUM2") => 0.206,
            Some("S5.LARGE8") => 0.544,
            _ => {
                book.insert(quote.key.clone(), Err("FailedOperation.InquiryPriceFailed".into()));
                continue;
            }
        };
        let answer = Price {
            instance_price: ItemPrice::pay_as_you_go(hour, hour, ChargeUnit::Hour),
            bandwidth_price: ItemPrice::pay_as_you_go(0.0, 0.0, ChargeUnit::Hour),
        };
        book.insert(quote.key.clone(), monthly_price(&quote.request, &answer));
    }
    book
}

fn priced(desired: &[DesiredFleet], seen: &BTreeMap<String, ObservedFleet>) -> Plan {
    // As the reconciler's round does: plan, quote what that plan needs, plan with the prices.
    let needed = quotes(&plan(desired, seen, PlanOptions::default()), desired, seen);
    plan_priced(desired, seen, &book(&needed), PlanOptions::default())
}

#[test]
fn a_priced_plan_ends_with_its_cost_line_and_carries_cost_in_json() {
    // `app` doubles; `api` moves from S5.MEDIUM2 to S5.LARGE8 (a replacement in two steps).
    let app = group(&[("ap-guangzhou-3", 4)]);
    let mut api = group(&[("ap-guangzhou-3", 2)]);
    api.name = "api".into();
    api.template.instance_type = Some("S5.LARGE8".into());
    let desired = [fleet(vec![app, api])];
    let mut instances: Vec<_> =
        (0..2).map(|i| running(&format!("ins-app0000{i}"), "ap-guangzhou-3", CURRENT)).collect();
    for i in 0..2 {
        let mut old = running(&format!("ins-api0000{i}"), "ap-guangzhou-3", OLD);
        old.group = Some("api".into());
        instances.push(old);
    }
    let plan = priced(&desired, &observed(instances));
    let text = render_text(&plan, "Target: test cloud", RenderOptions::default());
    assert_eq!(
        text.lines().last(),
        Some("Cost: ¥601.52/month → ¥1,395.76/month (+¥794.24)"),
        "the human output ends with the cost line"
    );
    insta::assert_snapshot!("priced_text", text);
    insta::assert_snapshot!("priced_markdown", render_markdown(&plan, "Target: test cloud"));
    let json = serde_json::to_value(&plan).unwrap();
    let costs = serde_json::json!({
        "summary": json["summary"]["cost"],
        "fleet": json["fleets"][0]["cost"],
        "groups": json["fleets"][0]["groups"].as_array().unwrap().iter().map(|g| &g["cost"]).collect::<Vec<_>>(),
        "replaced_later": json["fleets"][0]["groups"][1]["replaced_later"],
    });
    insta::assert_json_snapshot!("priced_json_costs", costs);
    // A plan read back keeps its costs; one made before prices has none, and says nothing.
    let back: Plan = serde_json::from_value(json).unwrap();
    assert_eq!(back, plan);
    let unpriced = cvmfleet_plan::plan(&desired, &BTreeMap::new(), PlanOptions::default());
    assert!(!render_text(&unpriced, "t", RenderOptions::default()).contains("Cost:"));
    assert!(serde_json::to_value(&unpriced).unwrap()["summary"].get("cost").is_none());
}

#[test]
fn an_unknown_cost_reads_unknown() {
    let mut gpu = group(&[("ap-guangzhou-3", 1)]);
    gpu.template.instance_type = Some("GN10X.2XLARGE40".into());
    let plan = priced(&[fleet(vec![gpu])], &observed(vec![]));
    let text = render_text(&plan, "Target: test cloud", RenderOptions::default());
    assert_eq!(text.lines().last(), Some("Cost: ¥0.00/month → unknown (change unknown)"));
    let md = render_markdown(&plan, "Target: test cloud");
    assert!(md.contains("| svc | app | 1 | 0 | 1 | 0 | 0 | 0 | ¥0.00 → unknown (change unknown) |"), "{md}");
}

#[test]
fn markdown_with_costs_stays_under_the_comment_limit_for_a_hundred_fleets() {
    // 100 fleets × 100 instances, every one replaced by a larger type: long details, and a
    // cost cell in every row.
    let mut desired = Vec::new();
    let mut seen = BTreeMap::new();
    for f in 0..100 {
        let mut g = group(&[("ap-guangzhou-3", 50), ("ap-guangzhou-4", 50)]);
        g.template.instance_type = Some("S5.LARGE8".into());
        let mut spec = fleet(vec![g]);
        spec.name = format!("fleet-{f:03}");
        let instances = (0..100)
            .map(|i| {
                let zone = if i % 2 == 0 { "ap-guangzhou-3" } else { "ap-guangzhou-4" };
                let mut instance = running(&format!("ins-{f:03}{i:05}"), zone, OLD);
                instance.fleet = Some(spec.name.clone());
                instance
            })
            .collect();
        seen.insert(spec.name.clone(), ObservedFleet { instances, ..Default::default() });
        desired.push(spec);
    }
    let plan = priced(&desired, &seen);
    let md = render_markdown(&plan, "Target: test cloud");
    assert!(md.len() <= MARKDOWN_LIMIT, "{}", md.len());
    assert!(md.contains("were cut to fit"));
    // 100 × 100 × (0.544 − 0.206) × 730
    assert!(
        md.contains("**Cost: ¥1,503,800.00/month → ¥3,971,200.00/month (+¥2,467,400.00)**"),
        "{}",
        &md[..600]
    );
    assert_eq!(md.matches("| ¥15,038.00 → ¥39,712.00 (+¥24,674.00) |").count(), 100);
}
