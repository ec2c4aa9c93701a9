//! A mutation fuzzer for the loader that runs in the normal test suite: valid and invalid specs
//! are mutated (bytes flipped, YAML punctuation inserted, lines duplicated, cut short) and fed
//! to `load_bytes`, which must never panic and must position every diagnostic.
//!
//! Bounded by default (`CVMFLEET_FUZZ_CASES`, 3000). For a long run:
//! `CVMFLEET_FUZZ_SECONDS=600 cargo test -p cvmfleet-spec --release --test it fuzz -- --nocapture`.
//! `CVMFLEET_FUZZ_SEED` picks the sequence. A panicking input is written to
//! `target/fuzz-crash-<seed>-<case>.yaml`. The cargo-fuzz target in `fuzz/` runs the same check.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { usize::try_from(self.next() % n as u64).unwrap_or(0) }
    }
}

fn seeds() -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<PathBuf> = Vec::new();
    for dir in ["../../examples", "../../specs", "tests/corpus/invalid"] {
        if let Ok(entries) = std::fs::read_dir(root.join(dir)) {
            files.extend(entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()));
        }
    }
    files.sort();
    files.iter().filter_map(|f| std::fs::read(f).ok()).collect()
}

const TOKENS: &[&[u8]] = &[
    b":",
    b"- ",
    b"[",
    b"]",
    b"{",
    b"}",
    b",",
    b"&a ",
    b"*a",
    b"<<: ",
    b"!!str ",
    b"!t ",
    b"---\n",
    b"...\n",
    b"\t",
    b"\r\n",
    b"\n",
    b"  ",
    b"'",
    b"\"",
    b"#",
    b"? ",
    b"|\n",
    b">-\n",
    b"\xef\xbb\xbf",
    b"\xff",
    b"\xc3",
    b"~",
    b"null",
    b".inf",
    b"0x1F",
    b"1e999",
    b"-1",
    b"99999999999999999999",
    b"\\u0000",
    b"%YAML 1.2\n",
    b"InstanceCount: 1\n",
    b"Password: x\n",
    b"zones: []\n",
    b"replicas: 3\n",
    b"PrivateIpAddresses: [10.0.0.1]\n",
];

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..=rng.below(4) {
        let pos = rng.below(out.len() + 1);
        match rng.below(7) {
            0 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] = u8::try_from(rng.below(256)).unwrap_or(0);
            }
            1 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                out.splice(pos..pos, token.iter().copied());
            }
            2 if !out.is_empty() => {
                let end = (pos + rng.below(40)).min(out.len());
                out.drain(pos.min(end)..end);
            }
            3 => out.truncate(pos),
            4 => {
                // Duplicate a line (duplicate keys, extra items).
                let start = out[..pos].iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
                let end = out[pos..].iter().position(|b| *b == b'\n').map_or(out.len(), |i| pos + i + 1);
                let line = out[start..end].to_vec();
                out.splice(start..start, line);
            }
            5 => {
                // Deep nesting.
                let depth = rng.below(200);
                let nest: Vec<u8> =
                    std::iter::repeat_n(b'[', depth).chain(std::iter::repeat_n(b']', depth)).collect();
                out.splice(pos..pos, nest);
            }
            _ => {
                let token = TOKENS[rng.below(TOKENS.len())];
                out.extend_from_slice(token);
            }
        }
    }
    out
}

fn check(bytes: &[u8]) -> Result<(), String> {
    let outcome = catch_unwind(AssertUnwindSafe(|| cvmfleet_spec::load_bytes("fuzz.yaml", bytes)));
    match outcome {
        Err(_) => Err("the loader panicked".to_owned()),
        Ok(Ok(_)) => Ok(()),
        Ok(Err(diagnostics)) => {
            if diagnostics.is_empty() {
                return Err("an error without diagnostics".to_owned());
            }
            // YAML ends a line at `\n`, `\r\n` or a lone `\r`.
            let text = String::from_utf8_lossy(bytes);
            let lines = text.replace("\r\n", "\n").replace('\r', "\n").lines().count().max(1);
            for d in &diagnostics {
                if d.line == 0 || d.column == 0 || d.line > lines + 1 {
                    return Err(format!("diagnostic out of range ({lines} lines): {d}"));
                }
                let _ = d.to_string();
            }
            Ok(())
        }
    }
}

#[test]
fn loader_survives_mutated_specs() {
    let cases: u64 = std::env::var("CVMFLEET_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(3000);
    let budget =
        std::env::var("CVMFLEET_FUZZ_SECONDS").ok().and_then(|v| v.parse().ok()).map(Duration::from_secs);
    let seed: u64 =
        std::env::var("CVMFLEET_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(0x5eed_cafe);
    let corpus = seeds();
    assert!(!corpus.is_empty());
    let mut rng = Rng(seed | 1);
    let start = Instant::now();
    let mut case = 0u64;
    let mut accepted = 0u64;
    loop {
        let done = match budget {
            Some(b) => start.elapsed() >= b,
            None => case >= cases,
        };
        if done {
            break;
        }
        let base = &corpus[rng.below(corpus.len())];
        let input = if rng.below(20) == 0 {
            (0..rng.below(256)).map(|_| u8::try_from(rng.below(256)).unwrap_or(0)).collect()
        } else {
            mutate(&mut rng, base)
        };
        if let Err(problem) = check(&input) {
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(format!("../../target/fuzz-crash-{seed}-{case}.yaml"));
            let _ = std::fs::write(&path, &input);
            panic!("case {case}: {problem}; input saved to {}", path.display());
        }
        if cvmfleet_spec::load_bytes("fuzz.yaml", &input).is_ok() {
            accepted += 1;
        }
        case += 1;
    }
    if budget.is_some() {
        println!("fuzz: {case} cases in {:.0?}, {accepted} accepted, no failure", start.elapsed());
    }
}
