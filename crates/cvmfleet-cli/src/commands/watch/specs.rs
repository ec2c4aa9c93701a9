//! Specs as the watcher reads them: from disk at every cycle (so a `git pull` by another process
//! takes effect), keeping the last good version of a file that stops validating, so that one
//! broken file does not stop the others from being reconciled.

use std::collections::BTreeMap;
use std::path::PathBuf;

use cvmfleet_plan::DesiredFleet;

/// A problem with the specs found in a cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SpecProblem {
    /// The file (or `specs` for problems across files).
    pub(crate) file: String,
    /// The rendered diagnostics.
    pub(crate) message: String,
    /// Whether an earlier good version is in use instead.
    pub(crate) kept_last_good: bool,
}

/// The specs of one cycle.
#[derive(Debug, Default)]
pub(crate) struct Loaded {
    /// Fleets to reconcile (from the current and last good versions of the files).
    pub(crate) fleets: Vec<DesiredFleet>,
    /// Problems, reported every cycle until fixed.
    pub(crate) problems: Vec<SpecProblem>,
}

/// Spec texts by file name, in load order.
type Texts = Vec<(String, String)>;

/// The last good text of every spec file, and the fleets of the last good whole set.
#[derive(Debug, Default)]
pub(crate) struct SpecCache {
    paths: Vec<PathBuf>,
    /// The project given on the command line, if any.
    project: Option<String>,
    good: BTreeMap<String, String>,
    last_set: Option<(Texts, Vec<DesiredFleet>)>,
}

impl SpecCache {
    /// A cache of the specs at `paths`.
    pub(crate) fn new(paths: Vec<PathBuf>) -> Self {
        SpecCache { paths, ..SpecCache::default() }
    }

    /// Works for `project` (given on the command line) instead of the specs' own.
    pub(crate) fn with_project(mut self, project: Option<&str>) -> Self {
        self.project = project.map(str::to_owned);
        self
    }

    /// Reads every spec file again. A file that no longer validates is replaced by its last
    /// good version (and reported); a file that never validated is left out (and reported); a
    /// deleted file is dropped. When the files do not fit together (a fleet name in two files),
    /// the last good set is used.
    pub(crate) fn load(&mut self) -> Loaded {
        let mut loaded = Loaded::default();
        // The spec crate's rules for which files are specs and how they are read (regular
        // files only, bounded, links kept in the tree; issue 10): a FIFO must not hang a cycle.
        let (found, listing) = cvmfleet_spec::spec_files(&self.paths);
        for d in listing.iter().filter(|d| d.code != "io.no-spec-files") {
            self.problem(&mut loaded, &d.file, d.to_string());
        }
        let mut texts: Texts = Vec::new();
        let mut seen = Vec::new();
        for path in found {
            let name = path.display().to_string();
            seen.push(name.clone());
            let bytes = match cvmfleet_spec::read_spec_file(&path) {
                Ok(bytes) => bytes,
                Err(error) => {
                    self.problem(&mut loaded, &name, error.to_string());
                    if let Some(text) = self.good.get(&name) {
                        texts.push((name, text.clone()));
                    }
                    continue;
                }
            };
            let text = String::from_utf8_lossy(&bytes).into_owned();
            if self.good.get(&name) != Some(&text) {
                if let Err(diagnostics) = cvmfleet_spec::load_bytes(&name, &bytes) {
                    self.problem(&mut loaded, &name, diagnostics.to_string());
                    if let Some(text) = self.good.get(&name) {
                        texts.push((name, text.clone()));
                    }
                    continue;
                }
                self.good.insert(name.clone(), text.clone());
            }
            texts.push((name, text));
        }
        self.good.retain(|name, _| seen.contains(name));
        if let Some((last_texts, fleets)) = &self.last_set
            && *last_texts == texts
        {
            loaded.fleets = fleets.clone();
            return loaded;
        }
        let sources: Vec<(&str, &str)> = texts.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect();
        let fleets = cvmfleet_spec::load_sources(&sources).map_err(|d| d.to_string()).map(|set| {
            let project = cvmfleet_plan::desired::project_of(self.project.as_deref(), &set);
            cvmfleet_plan::desired::from_spec(&set, &project)
        });
        match fleets {
            Ok(fleets) => {
                self.last_set = Some((texts, fleets.clone()));
                loaded.fleets = fleets;
            }
            Err(message) => {
                let kept = self.last_set.is_some();
                loaded.problems.push(SpecProblem { file: "specs".into(), message, kept_last_good: kept });
                loaded.fleets = self.last_set.as_ref().map(|(_, f)| f.clone()).unwrap_or_default();
            }
        }
        loaded
    }

    fn problem(&self, loaded: &mut Loaded, name: &str, message: String) {
        let kept_last_good = self.good.contains_key(name);
        loaded.problems.push(SpecProblem { file: name.to_owned(), message, kept_last_good });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(fleet: &str, replicas: u32) -> String {
        format!(
            "fleets:\n  - name: {fleet}\n    region: ap-guangzhou\n    groups:\n      - name: app\n        \
             replicas: {replicas}\n        zones: [ap-guangzhou-3]\n        template: {{ImageId: img-pmqg1cw7}}\n"
        )
    }

    #[test]
    fn a_broken_file_keeps_its_last_good_version_and_the_others_go_on() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.yaml"), dir.path().join("b.yml"));
        std::fs::write(&a, spec("alpha", 1)).unwrap();
        std::fs::write(&b, spec("beta", 1)).unwrap();
        let mut cache = SpecCache::new(vec![dir.path().to_owned()]);
        let first = cache.load();
        assert!(first.problems.is_empty());
        assert_eq!(first.fleets.len(), 2);

        std::fs::write(&a, "fleets: [oops").unwrap();
        std::fs::write(&b, spec("beta", 3)).unwrap();
        let second = cache.load();
        assert_eq!(second.problems.len(), 1);
        assert!(second.problems[0].kept_last_good && second.problems[0].file.ends_with("a.yaml"));
        let replicas: Vec<(String, u32)> =
            second.fleets.iter().map(|f| (f.name.clone(), f.groups[0].replicas())).collect();
        assert_eq!(replicas, [("alpha".to_owned(), 1), ("beta".to_owned(), 3)]);
        // Reported again every cycle until fixed.
        assert_eq!(cache.load().problems.len(), 1);
        std::fs::write(&a, spec("alpha", 2)).unwrap();
        let fixed = cache.load();
        assert!(fixed.problems.is_empty());
        assert_eq!(fixed.fleets[0].groups[0].replicas(), 2);
    }

    /// Issue 10, items 1-3: watch read spec files on its own, so a FIFO named `f.yaml` hung a
    /// cycle and links out of the tree were followed. It lists and reads them by the spec crate's
    /// rules: the FIFO and the link are reported, the good file is used.
    #[cfg(unix)]
    #[test]
    fn issue_10_fifos_and_links_out_of_the_tree_are_reported_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yaml"), spec("alpha", 1)).unwrap();
        let status = std::process::Command::new("mkfifo").arg(dir.path().join("f.yaml")).status().unwrap();
        assert!(status.success());
        std::fs::write(outside.path().join("secret.yaml"), "secretKey: TOPSECRET\n").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret.yaml"), dir.path().join("s.yaml")).unwrap();
        let loaded = SpecCache::new(vec![dir.path().to_owned()]).load();
        assert_eq!(loaded.fleets.len(), 1);
        let mut files: Vec<&str> =
            loaded.problems.iter().map(|p| p.file.rsplit('/').next().unwrap_or("")).collect();
        files.sort_unstable();
        assert_eq!(files, ["f.yaml", "s.yaml"]);
        assert!(loaded.problems.iter().all(|p| !p.message.contains("TOPSECRET")));
    }

    #[test]
    fn files_that_never_validated_or_conflict_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yaml"), spec("alpha", 1)).unwrap();
        let mut cache = SpecCache::new(vec![dir.path().to_owned()]);
        assert_eq!(cache.load().fleets.len(), 1);
        std::fs::write(dir.path().join("new.yaml"), "fleets: 3").unwrap();
        let loaded = cache.load();
        assert_eq!((loaded.fleets.len(), loaded.problems.len()), (1, 1));
        assert!(!loaded.problems[0].kept_last_good);
        // The same fleet in two files: the last good set stays in use.
        std::fs::write(dir.path().join("new.yaml"), spec("alpha", 5)).unwrap();
        let conflict = cache.load();
        assert_eq!(conflict.problems.len(), 1);
        assert!(conflict.problems[0].kept_last_good);
        assert_eq!(conflict.fleets[0].groups[0].replicas(), 1);
    }
}
