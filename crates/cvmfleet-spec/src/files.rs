//! Reading files named by someone else (a spec tree in a pull request, a `fromFile` secret):
//! regular files only, and never more than a bound, so that a FIFO cannot hang a command and
//! `/dev/zero` cannot exhaust memory. Spec loading and secret resolution both read through
//! [`read_bounded`], and so does every file a flag names (issue 25): catalogs, saved plans,
//! credential profiles and the leader-election files, through [`read_flag_file`] (which wraps it
//! with the flag's name for messages) or directly.

use std::fs::{File, FileType};
use std::io::Read as _;
use std::path::{Path, PathBuf};

/// Why a file named by a flag was not read; the message names the flag and the path.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// The path names a FIFO, a device, a directory or a socket.
    #[error("{flag} {}: {kind}, not a regular file", path.display())]
    NotAFile {
        /// The flag, e.g. `--catalog`.
        flag: String,
        /// The path as given.
        path: PathBuf,
        /// What it is instead, e.g. `a FIFO`.
        kind: &'static str,
    },
    /// The file holds more than the kind of file may.
    #[error("{flag} {}: larger than {max} bytes", path.display())]
    TooLarge {
        /// The flag.
        flag: String,
        /// The path as given.
        path: PathBuf,
        /// The bound.
        max: u64,
    },
    /// The file could not be opened or read.
    #[error("{flag} {}: cannot be read", path.display())]
    Io {
        /// The flag.
        flag: String,
        /// The path as given.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not UTF-8 text.
    #[error("{flag} {}: not UTF-8 text", path.display())]
    NotText {
        /// The flag.
        flag: String,
        /// The path as given.
        path: PathBuf,
    },
}

/// Reads the file a flag names by the rules of [`read_bounded`] (a regular file, links
/// followed, at most `max` bytes; never blocks on a FIFO), with errors naming `flag` and `path`.
///
/// # Errors
/// [`FileError`] when the path is not a regular file, holds more than `max` bytes or cannot be
/// read.
pub fn read_flag_file(flag: &str, path: &Path, max: u64) -> Result<Vec<u8>, FileError> {
    let (flag, path_buf) = (flag.to_owned(), path.to_owned());
    read_bounded(path, max).map_err(|error| match error {
        ReadError::NotAFile(kind) => FileError::NotAFile { flag, path: path_buf, kind },
        ReadError::TooLarge(_) => FileError::TooLarge { flag, path: path_buf, max },
        ReadError::Io(source) => FileError::Io { flag, path: path_buf, source },
    })
}

/// Checks a path a flag names for writing (`plan --out`): absent, or a regular file (links
/// followed). Opening a FIFO for writing blocks until a reader appears, and a device would
/// take the output; both are refused before anything is opened.
///
/// # Errors
/// [`FileError::NotAFile`] naming what the path is instead.
pub fn check_write_target(flag: &str, path: &Path) -> Result<(), FileError> {
    match std::fs::metadata(path) {
        Ok(meta) if !meta.is_file() => Err(FileError::NotAFile {
            flag: flag.to_owned(),
            path: path.to_owned(),
            kind: kind_of(meta.file_type()),
        }),
        _ => Ok(()),
    }
}

/// [`read_flag_file`] for text files.
///
/// # Errors
/// As [`read_flag_file`], and [`FileError::NotText`] when the bytes are not UTF-8.
pub fn read_flag_text(flag: &str, path: &Path, max: u64) -> Result<String, FileError> {
    let bytes = read_flag_file(flag, path, max)?;
    String::from_utf8(bytes).map_err(|_| FileError::NotText { flag: flag.to_owned(), path: path.to_owned() })
}

/// Why a file was not read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The path names something other than a regular file (its kind, e.g. `a FIFO`).
    #[error("it is {0}, not a regular file")]
    NotAFile(&'static str),
    /// The file holds more than the bound (at least this many bytes).
    #[error("it holds more than the limit (at least {0} bytes)")]
    TooLarge(u64),
    /// The file could not be opened or read.
    #[error(transparent)]
    Io(std::io::Error),
}

/// What a file type is, in words, for messages.
pub(crate) fn kind_of(file_type: FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt as _;
        if file_type.is_fifo() {
            return "a FIFO";
        }
        if file_type.is_socket() {
            return "a socket";
        }
        if file_type.is_char_device() {
            return "a character device";
        }
        if file_type.is_block_device() {
            return "a block device";
        }
    }
    if file_type.is_dir() {
        "a directory"
    } else if file_type.is_symlink() {
        "a symbolic link"
    } else if file_type.is_file() {
        "a regular file"
    } else {
        "not a regular file"
    }
}

/// Reads a regular file (symbolic links followed) of at most `max` bytes.
///
/// The kind is checked before opening, because opening a FIFO blocks until a writer appears,
/// and again on the opened handle; the read itself stops one byte past `max`, so a file that
/// grows (or lies about its size, like `/proc` files) is still bounded.
pub fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>, ReadError> {
    let meta = std::fs::metadata(path).map_err(ReadError::Io)?;
    if !meta.is_file() {
        return Err(ReadError::NotAFile(kind_of(meta.file_type())));
    }
    if meta.len() > max {
        return Err(ReadError::TooLarge(meta.len()));
    }
    let file = File::open(path).map_err(ReadError::Io)?;
    let meta = file.metadata().map_err(ReadError::Io)?;
    if !meta.is_file() {
        return Err(ReadError::NotAFile(kind_of(meta.file_type())));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(max.saturating_add(1)).read_to_end(&mut bytes).map_err(ReadError::Io)?;
    if bytes.len() as u64 > max {
        return Err(ReadError::TooLarge(bytes.len() as u64));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_files_are_read_within_the_bound() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a");
        std::fs::write(&path, "12345").expect("write");
        assert_eq!(read_bounded(&path, 5).expect("read"), b"12345");
        assert!(matches!(read_bounded(&path, 4), Err(ReadError::TooLarge(5))));
        assert!(matches!(read_bounded(dir.path(), 4), Err(ReadError::NotAFile("a directory"))));
    }

    /// Issue 25: a file a flag names is read by the same rules, and the error names the flag
    /// and the path.
    #[test]
    fn issue_25_flag_files_name_the_flag_and_the_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("catalog.json");
        std::fs::write(&path, "12345").expect("write");
        assert_eq!(read_flag_text("--catalog", &path, 5).expect("read"), "12345");
        let too_large = read_flag_file("--catalog", &path, 4).expect_err("too large").to_string();
        assert_eq!(too_large, format!("--catalog {}: larger than 4 bytes", path.display()));
        let dir_error = read_flag_file("--catalog", dir.path(), 4).expect_err("a directory").to_string();
        assert_eq!(dir_error, format!("--catalog {}: a directory, not a regular file", dir.path().display()));
        std::fs::write(&path, [0xff, 0xfe]).expect("write");
        assert!(matches!(read_flag_text("--catalog", &path, 5), Err(FileError::NotText { .. })));
        #[cfg(unix)]
        assert!(matches!(
            read_flag_file("--catalog", Path::new("/dev/zero"), 4),
            Err(FileError::NotAFile { kind: "a character device", .. })
        ));
    }

    #[cfg(unix)]
    #[test]
    fn devices_are_not_files() {
        assert!(matches!(
            read_bounded(Path::new("/dev/zero"), 4),
            Err(ReadError::NotAFile("a character device"))
        ));
    }
}
