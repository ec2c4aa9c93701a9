//! Persistence: a snapshot plus an append-only journal, in a state directory.
//!
//! ```text
//! <dir>/LOCK                   held (flock) by the emulator using the directory
//! <dir>/snapshot.json          {"format":1,"generation":G,"state":{…}}, replaced by atomic rename
//! <dir>/journal-<G>.jsonl      one JSON line per state-changing request since snapshot G
//! ```
//!
//! Every state-changing request appends its [`Mutation`] as one line, written to the kernel
//! before the response is sent, so `kill -9` at any moment loses no acknowledged instance or
//! token; a torn last line (a write cut short, never acknowledged) is ignored on load.
//! Durability against power loss (fsync per request) is not promised.
//!
//! When the journal grows past twice the snapshot (and at least a threshold, 64 MiB by
//! default: `EmulatorConfig::compact_after_bytes`), the
//! state is compacted: a new journal generation starts at once and the new snapshot is written
//! beside it, then renamed over the old one; the older journals are deleted after that. A crash
//! between the two leaves the old snapshot and both journals, which replay to the same state.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use cvmfleet_cloud::{Mutation, Snapshot};

/// The snapshot format this build reads and writes.
const FORMAT: u32 = 1;

/// The state directory could not be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    #[error("state directory {} is in use by another emulator", path.display())]
    Locked { path: PathBuf },
    #[error("cannot use state file {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("state file {} is corrupt: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },
}

#[derive(Serialize, Deserialize)]
struct SnapshotFile {
    format: u32,
    generation: u64,
    state: Snapshot,
}

#[derive(Serialize)]
struct SnapshotFileRef<'a> {
    format: u32,
    generation: u64,
    state: &'a Snapshot,
}

/// What was found in a state directory.
pub(crate) struct Loaded {
    pub(crate) snapshot: Option<Snapshot>,
    pub(crate) journal: Vec<Mutation>,
}

/// An open state directory.
#[derive(Debug)]
pub(crate) struct Store {
    dir: PathBuf,
    /// Held for the lifetime of the store: the exclusive lock on `LOCK`.
    _lock: File,
    generation: u64,
    journal: File,
    journal_bytes: u64,
    snapshot_bytes: u64,
    /// Generation of the snapshot on disk; snapshot writers hold it while they write, so
    /// that an older snapshot never lands over a newer one.
    written: Arc<Mutex<u64>>,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io { path: path.to_owned(), source }
}

fn journal_path(dir: &Path, generation: u64) -> PathBuf {
    dir.join(format!("journal-{generation}.jsonl"))
}

/// Refuses a state file that exists and is not a regular file (links followed).
fn regular_or_absent(path: &Path) -> Result<(), StoreError> {
    match fs::metadata(path) {
        Ok(meta) if !meta.is_file() => Err(StoreError::Corrupt {
            path: path.to_owned(),
            reason: "it is not a regular file (a FIFO, a device or a directory)".into(),
        }),
        _ => Ok(()),
    }
}

/// Journal generations present in `dir`, ascending.
fn journal_generations(dir: &Path) -> Result<Vec<u64>, StoreError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(g) = name.strip_prefix("journal-").and_then(|r| r.strip_suffix(".jsonl"))
            && let Ok(g) = g.parse()
        {
            out.push(g);
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Reads a journal: every complete line, stopping at a torn or unreadable last line (which is
/// cut off the file so that appends continue cleanly).
fn read_journal(path: &Path) -> Result<Vec<Mutation>, StoreError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(path)(e)),
    };
    let mut out = Vec::new();
    let mut start = 0;
    while start < bytes.len() {
        let end = bytes[start..].iter().position(|&b| b == b'\n').map(|i| start + i);
        let line = &bytes[start..end.unwrap_or(bytes.len())];
        let parsed = serde_json::from_slice::<Mutation>(line);
        match (end, parsed) {
            (Some(end), Ok(m)) => {
                out.push(m);
                start = end + 1;
            }
            (Some(end), Err(e)) if end + 1 < bytes.len() => {
                return Err(StoreError::Corrupt {
                    path: path.to_owned(),
                    reason: format!("entry {} is not valid: {e}", out.len() + 1),
                });
            }
            _ => {
                // The last line is cut short (no newline) or unreadable: a write interrupted
                // by a crash, never acknowledged. Drop it, and cut it off the file.
                let file = OpenOptions::new().write(true).open(path).map_err(io_err(path))?;
                file.set_len(start as u64).map_err(io_err(path))?;
                break;
            }
        }
    }
    Ok(out)
}

impl Store {
    /// Opens (creating if needed) and locks a state directory, and reads what it holds.
    pub(crate) fn open(dir: &Path) -> Result<(Store, Loaded), StoreError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let lock_path = dir.join("LOCK");
        // Opening a FIFO blocks until its other end opens: every file of the state is checked
        // before any is opened, so a FIFO or device planted in the directory is an error, not a
        // hang (issue 25).
        let journals: Vec<PathBuf> =
            journal_generations(dir)?.into_iter().map(|g| journal_path(dir, g)).collect();
        for path in [lock_path.clone(), dir.join("snapshot.json")].iter().chain(&journals) {
            regular_or_absent(path)?;
        }
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(StoreError::Locked { path: dir.to_owned() }),
            Err(fs::TryLockError::Error(e)) => return Err(io_err(&lock_path)(e)),
        }

        let snapshot_path = dir.join("snapshot.json");
        let (generation, snapshot, snapshot_bytes) = match fs::read(&snapshot_path) {
            Ok(bytes) => {
                let file: SnapshotFile = serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
                    path: snapshot_path.clone(),
                    reason: e.to_string(),
                })?;
                if file.format != FORMAT {
                    return Err(StoreError::Corrupt {
                        path: snapshot_path,
                        reason: format!(
                            "format {} is not supported (this emulator reads {FORMAT})",
                            file.format
                        ),
                    });
                }
                (file.generation, Some(file.state), bytes.len() as u64)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => (0, None, 0),
            Err(e) => return Err(io_err(&snapshot_path)(e)),
        };

        let mut journal = Vec::new();
        let generations = journal_generations(dir)?;
        for &g in generations.iter().filter(|&&g| g >= generation) {
            journal.extend(read_journal(&journal_path(dir, g))?);
        }
        let current = generations.last().copied().unwrap_or(generation).max(generation);
        let path = journal_path(dir, current);
        let file = OpenOptions::new().create(true).append(true).open(&path).map_err(io_err(&path))?;
        let journal_bytes = file.metadata().map_err(io_err(&path))?.len();
        let store = Store {
            dir: dir.to_owned(),
            _lock: lock,
            generation: current,
            journal: file,
            journal_bytes,
            snapshot_bytes,
            written: Arc::new(Mutex::new(generation)),
        };
        Ok((store, Loaded { snapshot, journal }))
    }

    /// Appends one mutation as one line, written to the kernel before returning.
    pub(crate) fn append(&mut self, mutation: &Mutation) -> Result<(), StoreError> {
        let mut line = serde_json::to_vec(mutation).map_err(|e| StoreError::Corrupt {
            path: journal_path(&self.dir, self.generation),
            reason: e.to_string(),
        })?;
        line.push(b'\n');
        self.journal.write_all(&line).map_err(io_err(&journal_path(&self.dir, self.generation)))?;
        self.journal_bytes += line.len() as u64;
        Ok(())
    }

    /// Whether the journal has grown enough to compact: past `min_bytes` and past twice the
    /// snapshot, so that compaction work stays proportional to the writes.
    pub(crate) fn wants_compaction(&self, min_bytes: u64) -> bool {
        self.journal_bytes >= min_bytes.max(self.snapshot_bytes.saturating_mul(2))
    }

    /// Whether the journal holds anything since the last snapshot.
    pub(crate) fn journal_is_empty(&self) -> bool {
        self.journal_bytes == 0
    }

    /// Starts a compaction: serializes the snapshot and switches appends to a new journal
    /// generation. [`PendingSnapshot::write`] finishes it, and may run off the state lock.
    pub(crate) fn begin_compaction(&mut self, snapshot: &Snapshot) -> Result<PendingSnapshot, StoreError> {
        let generation = self.generation + 1;
        let bytes =
            serde_json::to_vec(&SnapshotFileRef { format: FORMAT, generation, state: snapshot }).map_err(
                |e| StoreError::Corrupt { path: self.dir.join("snapshot.json"), reason: e.to_string() },
            )?;
        let path = journal_path(&self.dir, generation);
        let journal = OpenOptions::new().create(true).append(true).open(&path).map_err(io_err(&path))?;
        self.journal = journal;
        self.generation = generation;
        self.journal_bytes = 0;
        self.snapshot_bytes = bytes.len() as u64;
        Ok(PendingSnapshot { dir: self.dir.clone(), generation, bytes, written: Arc::clone(&self.written) })
    }
}

/// A serialized snapshot waiting to be written.
#[derive(Debug)]
pub(crate) struct PendingSnapshot {
    dir: PathBuf,
    generation: u64,
    bytes: Vec<u8>,
    written: Arc<Mutex<u64>>,
}

impl PendingSnapshot {
    /// Writes the snapshot beside the old one, renames it over, and deletes the journals it
    /// replaces.
    pub(crate) fn write(self) -> Result<(), StoreError> {
        let mut written = self.written.lock().unwrap_or_else(PoisonError::into_inner);
        if *written >= self.generation {
            // A newer snapshot landed first; this one is already superseded.
            return Ok(());
        }
        let path = self.dir.join("snapshot.json");
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir).map_err(io_err(&self.dir))?;
        tmp.write_all(&self.bytes).map_err(io_err(tmp.path()))?;
        tmp.as_file().sync_all().map_err(io_err(&path))?;
        tmp.persist(&path).map_err(|e| io_err(&path)(e.error))?;
        if let Ok(dir) = File::open(&self.dir) {
            // Makes the rename itself durable; not every platform can sync a directory.
            let _ = dir.sync_all();
        }
        for g in journal_generations(&self.dir)?.into_iter().filter(|&g| g < self.generation) {
            let old = journal_path(&self.dir, g);
            fs::remove_file(&old).map_err(io_err(&old))?;
        }
        *written = self.generation;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(next_seq: u64) -> Snapshot {
        Snapshot::empty(1, next_seq)
    }

    #[test]
    fn journal_survives_reopen_and_compaction() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut store, loaded) = Store::open(dir.path()).unwrap();
            assert!(loaded.snapshot.is_none() && loaded.journal.is_empty());
            store.append(&Mutation::default()).unwrap();
            store.append(&Mutation::default()).unwrap();
            // A second emulator cannot open the same directory.
            assert!(matches!(Store::open(dir.path()), Err(StoreError::Locked { .. })));
        }
        let (mut store, loaded) = Store::open(dir.path()).unwrap();
        assert_eq!(loaded.journal.len(), 2);
        let pending = store.begin_compaction(&snapshot(7)).unwrap();
        store.append(&Mutation::default()).unwrap();
        // Before the snapshot lands, both journals replay.
        drop(store);
        let (mut store, loaded) = Store::open(dir.path()).unwrap();
        assert!(loaded.snapshot.is_none());
        assert_eq!(loaded.journal.len(), 3);
        pending.write().unwrap();
        store.append(&Mutation::default()).unwrap();
        drop(store);
        let (_store, loaded) = Store::open(dir.path()).unwrap();
        assert_eq!(loaded.snapshot.map(|s| s.next_seq()), Some(7));
        assert_eq!(loaded.journal.len(), 2);
        assert_eq!(journal_generations(dir.path()).unwrap(), [1]);
    }

    #[test]
    fn an_older_snapshot_never_lands_over_a_newer_one() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, _) = Store::open(dir.path()).unwrap();
        let older = store.begin_compaction(&snapshot(1)).unwrap();
        store.append(&Mutation::default()).unwrap();
        let newer = store.begin_compaction(&snapshot(2)).unwrap();
        newer.write().unwrap();
        older.write().unwrap();
        drop(store);
        let (_store, loaded) = Store::open(dir.path()).unwrap();
        assert_eq!(loaded.snapshot.map(|s| s.next_seq()), Some(2));
        assert!(loaded.journal.is_empty());
    }

    #[test]
    fn a_torn_last_line_is_dropped_and_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = journal_path(dir.path(), 0);
        fs::write(&path, b"{}\n{}\n{\"put\":[{\"se").unwrap();
        let (mut store, loaded) = Store::open(dir.path()).unwrap();
        assert_eq!(loaded.journal.len(), 2);
        store.append(&Mutation::default()).unwrap();
        drop(store);
        assert_eq!(fs::read(&path).unwrap(), b"{}\n{}\n{}\n");
        // Garbage in the middle is corruption, not a torn write.
        fs::write(&path, b"{}\nnot json\n{}\n").unwrap();
        assert!(matches!(Store::open(dir.path()), Err(StoreError::Corrupt { .. })));
    }
}
