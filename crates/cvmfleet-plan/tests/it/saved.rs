//! Saved plans are artifacts that travel (issue 10): reading one never panics on any bytes,
//! an edited one is refused by its seal, and a plan that does deserialize renders safely.

use cvmfleet_plan::plan::{Plan, SavedPlanError};
use cvmfleet_plan::render::{RenderOptions, render_markdown, render_text};
use cvmfleet_plan::{PlanOptions, drift_report, plan};
use proptest::prelude::*;

use crate::world::{CURRENT, fleet, group, observed, running};

fn saved() -> (Plan, Vec<u8>) {
    let desired = [fleet(vec![group(&[("ap-guangzhou-3", 3)])])];
    let mut p = plan(
        &desired,
        &observed(vec![running("ins-aaaaaaa1", "ap-guangzhou-3", CURRENT)]),
        PlanOptions::default(),
    );
    p.seal(None);
    let bytes = serde_json::to_vec_pretty(&p).unwrap();
    (p, bytes)
}

#[test]
fn a_sealed_plan_reads_back_and_an_edited_one_does_not() {
    let (p, bytes) = saved();
    assert_eq!(Plan::read_saved(&bytes, None).unwrap(), p);
    let edited = String::from_utf8(bytes.clone()).unwrap().replace("S5.MEDIUM2", "S5.LARGE8");
    assert_eq!(Plan::read_saved(edited.as_bytes(), None), Err(SavedPlanError::Seal));
    // Sealed under a key, it needs the key.
    let mut keyed = p.clone();
    keyed.seal(Some(b"ci-secret"));
    let keyed = serde_json::to_vec(&keyed).unwrap();
    assert!(Plan::read_saved(&keyed, Some(b"ci-secret")).is_ok());
    assert_eq!(Plan::read_saved(&keyed, None), Err(SavedPlanError::Seal));
    assert_eq!(Plan::read_saved(&keyed, Some(b"other")), Err(SavedPlanError::Seal));
}

/// Regression test for issue 10, item 13: a fingerprint with multi-byte characters made
/// `apply plan.json` panic (a string sliced inside a character). It is refused as malformed.
#[test]
fn issue_10_a_non_hex_fingerprint_is_refused_not_sliced() {
    let (mut p, _) = saved();
    p.fingerprint = format!("a{}", "é".repeat(40));
    p.seal(None);
    let bytes = serde_json::to_vec(&p).unwrap();
    assert!(matches!(Plan::read_saved(&bytes, None), Err(SavedPlanError::Malformed(_))));
}

fn render_all(p: &Plan) {
    let _ = render_text(p, "t", RenderOptions::default());
    let _ = render_markdown(p, "t");
    let _ = drift_report::render_text(p, "t");
    let _ = drift_report::render_markdown(p, "t");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    /// Any byte edits of a saved plan: reading never panics, and whatever deserializes renders.
    #[test]
    fn mutated_saved_plans_never_panic(edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let (_, mut bytes) = saved();
        for (at, byte) in edits {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        let _ = Plan::read_saved(&bytes, None);
        if let Ok(p) = serde_json::from_slice::<Plan>(&bytes) {
            render_all(&p);
        }
    }

    /// Arbitrary strings in the fields a person would edit render without panicking.
    #[test]
    fn hostile_field_values_render(text in "\\PC{0,80}", count in any::<u32>()) {
        let (mut p, _) = saved();
        p.fingerprint = text.clone();
        let g = &mut p.fleets[0].groups[0];
        g.name = text.clone();
        if let Some(c) = g.creates.first_mut() {
            c.count = count;
            c.zone = text.clone();
        }
        render_all(&p);
        let bytes = serde_json::to_vec(&p).unwrap();
        prop_assert!(Plan::read_saved(&bytes, None).is_err());
    }
}
