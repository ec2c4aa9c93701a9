//! The invalid-spec corpus: one file (or directory, for cross-file rules) per rule and per YAML
//! hazard. Each starts with `# expect: <code>`; the rendered diagnostics are snapshot-tested.

use std::path::{Path, PathBuf};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/invalid")
}

fn expected_code(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim_start_matches('\u{feff}');
    text.lines()
        .next()
        .and_then(|l| l.strip_prefix("# expect: "))
        .map(|c| c.trim().to_owned())
        .unwrap_or_else(|| panic!("corpus file without `# expect:` header"))
}

fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    entries
}

#[test]
fn every_invalid_spec_is_rejected_with_its_code() {
    let entries = sorted_entries(&corpus_dir());
    assert!(entries.len() >= 40, "the corpus has {} cases", entries.len());
    for path in entries {
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_owned();
        let (result, expect) = if path.is_dir() {
            let files = sorted_entries(&path);
            let texts: Vec<(String, String)> = files
                .iter()
                .map(|f| {
                    let name =
                        format!("{stem}/{}", f.file_name().and_then(|n| n.to_str()).unwrap_or_default());
                    (name, std::fs::read_to_string(f).unwrap_or_else(|e| panic!("read: {e}")))
                })
                .collect();
            let expect = expected_code(texts[0].1.as_bytes());
            let sources: Vec<(&str, &str)> = texts.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect();
            (cvmfleet_spec::load_sources(&sources), expect)
        } else {
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("read: {e}"));
            let name = format!("{stem}.yaml");
            (cvmfleet_spec::load_bytes(&name, &bytes), expected_code(&bytes))
        };
        let Err(diagnostics) = result else {
            panic!("{stem}: the spec was accepted");
        };
        assert!(
            diagnostics.iter().any(|d| d.code == expect),
            "{stem}: expected {expect}, got:\n{diagnostics}"
        );
        for d in &diagnostics {
            assert!(d.line >= 1 && d.column >= 1, "{stem}: bad position in {d}");
        }
        insta::assert_snapshot!(stem, diagnostics.to_string());
    }
}

#[test]
fn literal_passwords_never_reach_output() {
    let text = "fleets:\n  - name: web\n    region: ap-guangzhou\n    groups:\n      - name: a\n        replicas: 1\n        zones: [ap-guangzhou-3]\n        template:\n          ImageId: img-pmqg1cw7\n          LoginSettings: {Password: \"Sup3r-Secret\", Password: Other-Secret9}\n";
    let diagnostics = cvmfleet_spec::load_str("p.yaml", text).err().unwrap_or_default();
    assert!(!diagnostics.is_empty());
    let rendered = format!("{diagnostics}{}", serde_json::to_string(&diagnostics).unwrap_or_default());
    assert!(!rendered.contains("Sup3r-Secret"), "{rendered}");
    assert!(!rendered.contains("Other-Secret9"), "{rendered}");
}

#[test]
fn oversized_files_are_refused_before_parsing() {
    let big = "#".repeat(usize::try_from(cvmfleet_spec::MAX_FILE_BYTES).unwrap_or(0) + 1);
    let diagnostics = cvmfleet_spec::load_str("big.yaml", &big).err().unwrap_or_default();
    assert_eq!(diagnostics.as_slice()[0].code, "yaml.file-too-large");
    let diagnostics = cvmfleet_spec::load_bytes("big.yaml", big.as_bytes()).err().unwrap_or_default();
    assert_eq!(diagnostics.as_slice()[0].code, "yaml.file-too-large");
}

#[test]
fn directories_are_read_recursively_and_in_order() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let spec = |name: &str| format!("fleets:\n  - name: {name}\n    region: ap-guangzhou\n    groups: []\n");
    std::fs::create_dir_all(dir.path().join("b/c")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::create_dir_all(dir.path().join(".hidden")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("b/c/z.yml"), spec("zeta")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("a.yaml"), spec("alpha")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("readme.md"), "not yaml").unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join(".hidden/x.yaml"), "broken: [").unwrap_or_else(|e| panic!("{e}"));
    let specs = cvmfleet_spec::load_paths(&[dir.path().to_path_buf()]).unwrap_or_else(|d| panic!("{d}"));
    let names: Vec<&str> = specs.fleets.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["alpha", "zeta"]);

    let empty = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let d = cvmfleet_spec::load_paths(&[empty.path().to_path_buf()]).err().unwrap_or_default();
    assert_eq!(d.as_slice()[0].code, "io.no-spec-files");
}

#[test]
fn tolerated_layouts_load() {
    let cases = [
        // BOM and CRLF line ends.
        "\u{feff}fleets:\r\n  - name: web\r\n    region: ap-guangzhou\r\n    groups: []\r\n",
        // Tabs inside flow collections and before comments are separation, not indentation.
        "fleets:\n  - name: web\t# c\n    region: ap-guangzhou\n    groups: [\t]\n",
        // An explicit document start and end, comments everywhere.
        "---\n# c\nfleets: # c\n  - name: web # c\n    region: ap-guangzhou\n    groups: []\n...\n",
        // Quoted keys and values.
        "\"fleets\":\n  - 'name': \"web\"\n    region: 'ap-guangzhou'\n    groups: []\n",
    ];
    for text in cases {
        let specs = cvmfleet_spec::load_str("ok.yaml", text).unwrap_or_else(|d| panic!("{text:?}\n{d}"));
        assert_eq!(specs.fleets[0].name, "web");
    }
}
