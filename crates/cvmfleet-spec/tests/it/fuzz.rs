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

/// Issue 10: the hardened paths under mutation. A literal password line is mangled around its
/// value (YAML punctuation, tabs, quotes, long padding) and the rest of the file mutated; the
/// loader must not panic, and no diagnostic may show the password, whether the line parses or
/// not. Long lines exercise the snippet window. Bounded like the fuzzer above
/// (`CVMFLEET_FUZZ_CASES`, default 3000 / 4).
#[test]
fn issue_10_passwords_never_show_in_mutated_specs() {
    const SECRET: &str = "Zq7SecretValue";
    const JUNK: &[&str] = &[
        ":", ": ", "[", "]", "}", "{", ",", "#", "'", "\"", "\t", " ", "&a ", "*a", "!t ", "|", ">", "- ",
        "? ", "%", "@", "`",
    ];
    let cases: u64 =
        std::env::var("CVMFLEET_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(3000) / 4;
    let mut rng = Rng(0x0155_0e10 | 1);
    let junk = |rng: &mut Rng, n: usize| -> String { (0..n).map(|_| JUNK[rng.below(JUNK.len())]).collect() };
    for case in 0..cases {
        // What comes before the value must keep it the value: not open a mapping (`{pw: ...}` is
        // shown, like any mapping keyed by a name) nor end the entry (`{Password: , pw}` makes
        // `pw` a key of its own).
        let (n_before, n_after) = (rng.below(2), rng.below(5));
        let before: String = junk(&mut rng, n_before).replace(['{', ',', '?'], "");
        let after = junk(&mut rng, n_after);
        let pad = "x".repeat(if rng.below(4) == 0 { 300 + rng.below(3000) } else { 0 });
        let line = match rng.below(3) {
            0 => format!("            Password: {before}{SECRET}{after}{pad}"),
            1 => format!("          LoginSettings: {{Password: {before}{SECRET}{after}{pad}"),
            _ => format!("          LoginSettings: {{\"Password\": {before}{SECRET}{after}, x: {pad}}}"),
        };
        let spec = format!(
            "fleets:\n  - name: web\n    region: ap-guangzhou\n    groups:\n      - name: a\n        replicas: 1\n        zones: [ap-guangzhou-3]\n        template:\n          ImageId: img-pmqg1cw7\n{}{line}\n          InstanceType: S5.MEDIUM2\n",
            if line.starts_with("            ") { "          LoginSettings:\n" } else { "" }
        );
        let mut input = spec.into_bytes();
        if rng.below(2) == 0 {
            // Mutate, but leave the password line itself to the junk above.
            let at = input.windows(8).position(|w| w == b"Password").unwrap_or(0);
            let cut = input[..at].iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            let (head, tail) = input.split_at(cut);
            let mut head = mutate(&mut rng, head);
            if !head.ends_with(b"\n") {
                head.push(b'\n');
            }
            head.extend_from_slice(tail);
            input = head;
        }
        if let Err(problem) = check(&input) {
            panic!("case {case}: {problem}\n{}", String::from_utf8_lossy(&input));
        }
        if let Err(diagnostics) = cvmfleet_spec::load_bytes("fuzz.yaml", &input) {
            let shown = diagnostics.to_string();
            assert!(!shown.contains(SECRET), "case {case}: the password is shown:\n{shown}");
        }
    }
}
