//! A mutation fuzzer for the argument parsers of `import` and `watch` (issue 25), run in the
//! normal test suite like the spec loader's (`crates/cvmfleet-spec/tests/it/fuzz.rs`): command
//! lines that parse are mutated (arguments replaced, inserted, dropped, cut, joined with `=`,
//! bytes flipped into line breaks, YAML punctuation and non-ASCII) and fed to the same clap
//! parser `main` uses. It must never panic, every error must render, and whatever parses
//! must hold the typed promises: an `import --fleet`/`--project` obeys the spec's name rule,
//! and the spec `import` would print from it validates as exactly that fleet.
//!
//! Bounded by default (`CVMFLEET_FUZZ_CASES`, 2000 per command); `CVMFLEET_FUZZ_SEED` picks
//! the sequence. A longer run:
//! `CVMFLEET_FUZZ_CASES=200000 cargo test -p cvmfleet-cli --bin cvmfleet args_fuzz -- --nocapture`.

use std::ffi::OsString;
use std::panic::{AssertUnwindSafe, catch_unwind};

use clap::Parser as _;
use proptest::prelude::Rng as _;
use proptest::test_runner::{RngAlgorithm, TestRng};

use super::{Cli, Command};

/// Proptest's seeded generator (the sequence is fixed by the seed).
struct Rng(TestRng);

impl Rng {
    fn new(seed: u64) -> Rng {
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&seed.to_le_bytes());
        Rng(TestRng::from_seed(RngAlgorithm::ChaCha, &bytes))
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { usize::try_from(self.0.next_u64() % n as u64).unwrap_or(0) }
    }
}

/// Flags, values and hostile fragments the mutations draw from.
const TOKENS: &[&str] = &[
    "--fleet",
    "--project",
    "--tag",
    "--region",
    "--endpoint",
    "--profile",
    "--state-dir",
    "--interval",
    "--auto-apply",
    "--max-terminations",
    "--metrics-addr",
    "--prune",
    "--log-format",
    "--unavailable-ttl",
    "--",
    "-",
    "=",
    "",
    "web",
    "Bad_Name",
    "a:b",
    "1web",
    "web-",
    "wéb",
    "web\nfleets: []",
    "web\r\n  - name: evil",
    "{a: b}",
    "[x]",
    "'",
    "\"",
    "#",
    "&a",
    "*a",
    "ins-aaaaaaa1",
    "app=web",
    "=web",
    "k=",
    "ap-guangzhou",
    "ap-guangzhou\nfleets: []",
    "0",
    "0ms",
    "99999999999999999999h",
    "18446744073709551615",
    "1e999",
    "-1",
    "json",
    "127.0.0.1:0",
    "http://AKID:KEY@127.0.0.1:9",
    "\u{feff}",
    "\u{0}",
];

fn seeds() -> Vec<Vec<String>> {
    let line = |text: &str| text.split(' ').map(str::to_owned).collect();
    vec![
        line("cvmfleet import --region ap-guangzhou ins-aaaaaaa1"),
        line("cvmfleet import --region ap-guangzhou --fleet web --project shop ins-aaaaaaa1 ins-aaaaaaa2"),
        line("cvmfleet import --region ap-guangzhou --tag app=web --tag tier=front"),
        line(
            "cvmfleet import --region=ap-guangzhou --fleet=web --endpoint http://127.0.0.1:9100 ins-aaaaaaa1",
        ),
        line("cvmfleet watch specs --interval 30s --auto-apply --max-terminations 3"),
        line(
            "cvmfleet watch --metrics-addr 127.0.0.1:9464 --log-format json --unavailable-ttl 3m specs/web.yaml",
        ),
        line("cvmfleet watch --project shop --state-dir .cvmfleet --interval=300ms"),
    ]
}

fn mutate(rng: &mut Rng, input: &[String]) -> Vec<String> {
    let mut out = input.to_vec();
    for _ in 0..=rng.below(3) {
        // Never the program name or the subcommand: the fuzzer aims at the command's flags.
        let pos = 2 + rng.below(out.len().saturating_sub(1));
        let token = TOKENS[rng.below(TOKENS.len())].to_owned();
        match rng.below(7) {
            0 if pos < out.len() => out[pos] = token,
            1 => out.insert(pos.min(out.len()), token),
            2 if pos < out.len() => {
                out.remove(pos);
            }
            3 if pos < out.len() => {
                // Cut an argument at a character boundary.
                let arg = &out[pos];
                let cut = arg.char_indices().map(|(i, _)| i).nth(rng.below(arg.chars().count() + 1));
                out[pos] = arg[..cut.unwrap_or(arg.len())].to_owned();
            }
            4 if pos + 1 < out.len() => {
                let value = out.remove(pos + 1);
                out[pos] = format!("{}={value}", out[pos]);
            }
            5 if pos < out.len() => {
                // A fragment into the middle of an argument.
                let arg = &out[pos];
                let at = arg.char_indices().map(|(i, _)| i).nth(rng.below(arg.chars().count() + 1));
                let at = at.unwrap_or(arg.len());
                out[pos].insert_str(at, &token);
            }
            _ => {
                let long = "a".repeat(rng.below(5000));
                out.insert(pos.min(out.len()), long);
            }
        }
    }
    out
}

/// Parses `args` as `main` does and checks what parsed; `Err` says what broke.
fn check(args: &[String]) -> Result<bool, String> {
    let argv: Vec<OsString> = args.iter().map(OsString::from).collect();
    let outcome = catch_unwind(AssertUnwindSafe(|| match Cli::try_parse_from(argv) {
        Ok(cli) => {
            let _ = format!("{cli:?}");
            match &cli.command {
                Command::Import(import) => import.fuzz_check().map(|()| true),
                _ => Ok(true),
            }
        }
        Err(error) => {
            let _ = error.render().to_string();
            Ok(false)
        }
    }));
    outcome.unwrap_or_else(|_| Err("the argument parser panicked".into()))
}

/// Issue 25: the argument parsers of `import` and `watch` never panic, and what they accept
/// keeps its typed promises.
#[test]
fn issue_25_import_and_watch_arguments_survive_mutation() {
    let cases: usize = std::env::var("CVMFLEET_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
    let seed: u64 = std::env::var("CVMFLEET_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(25);
    let mut rng = Rng::new(seed);
    let seeds = seeds();
    for seed_line in &seeds {
        assert_eq!(check(seed_line), Ok(true), "a seed must parse: {seed_line:?}");
    }
    let mut parsed = 0;
    for case in 0..cases * 2 {
        let pick = rng.below(seeds.len());
        let input = mutate(&mut rng, &seeds[pick]);
        match check(&input) {
            Ok(ok) => parsed += usize::from(ok),
            Err(why) => panic!("case {case} (seed {seed}): {why}: {input:?}"),
        }
    }
    // The mutations must leave enough command lines whole for the checks after parsing to run.
    assert!(parsed > cases / 10, "only {parsed} of {} cases parsed", cases * 2);
}
