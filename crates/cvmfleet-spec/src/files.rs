//! Reading files named by someone else (a spec tree in a pull request, a `fromFile` secret):
//! regular files only, and never more than a bound, so that a FIFO cannot hang a command and
//! `/dev/zero` cannot exhaust memory. Spec loading and secret resolution both read through
//! [`read_bounded`], and so do the CLI's flags that name files (issue 25): the one reader of
//! files someone else names.

use std::fs::{File, FileType};
use std::io::Read as _;
use std::path::Path;

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

    #[cfg(unix)]
    #[test]
    fn devices_are_not_files() {
        assert!(matches!(
            read_bounded(Path::new("/dev/zero"), 4),
            Err(ReadError::NotAFile("a character device"))
        ));
    }
}
