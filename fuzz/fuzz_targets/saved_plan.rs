//! Fuzz target: any bytes as a saved plan (`cvmfleet apply plan.json`, issue 10). Reading must
//! not panic; a document that deserializes as a plan must render in every format without
//! panicking. Run: `cargo +nightly fuzz run saved_plan` from the repository root (seed the
//! corpus with a few `cvmfleet plan --out` files).
#![no_main]

use cvmfleet_plan::plan::Plan;
use cvmfleet_plan::render::{RenderOptions, render_markdown, render_text};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = Plan::read_saved(data, None);
    if let Ok(plan) = serde_json::from_slice::<Plan>(data) {
        let _ = render_text(&plan, "fuzz", RenderOptions::default());
        let _ = render_markdown(&plan, "fuzz");
        let _ = cvmfleet_plan::drift_report::render_text(&plan, "fuzz");
        let _ = cvmfleet_plan::drift_report::render_markdown(&plan, "fuzz");
    }
});
