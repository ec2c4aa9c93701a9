//! Fuzz target: any bytes through the spec loader. It must not panic, and every diagnostic must
//! carry a position. Run: `cargo +nightly fuzz run load_spec` from the repository root (seed
//! the corpus with `examples/`, `specs/` and `crates/cvmfleet-spec/tests/corpus/invalid/`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(diagnostics) = cvmfleet_spec::load_bytes("fuzz.yaml", data) {
        assert!(!diagnostics.is_empty());
        for d in &diagnostics {
            assert!(d.line >= 1 && d.column >= 1);
            let _ = d.to_string();
        }
    }
});
