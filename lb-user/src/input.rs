//! Reading what a user hands to lbctl, within bounds: a named file must be a
//! regular file of bounded size (a FIFO, `/dev/zero` or a directory is
//! refused before anything is read from it), a line of standard input is
//! read up to a bounded length, bytes that are not UTF-8 are located (line
//! and column) instead of failing the whole input, and what an error quotes
//! of the input is a bounded excerpt (docs/ARCHITECTURE.md §8).

use std::{
    borrow::Cow,
    fs::File,
    io::{self, BufRead, Read},
    os::unix::fs::{FileTypeExt, OpenOptionsExt},
    path::Path,
};

/// The most of an error message that quotes the input: longer messages keep
/// their start and their end, with the middle elided.
pub const MAX_MESSAGE: usize = 400;

/// Why a named file was not read.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("not a regular file ({0}): lbctl reads only regular files")]
    NotRegular(&'static str),
    #[error("the file is larger than {} MiB ({max} bytes), the most lbctl reads", max >> 20)]
    TooLarge { max: u64 },
    #[error("cannot read the file")]
    Io(#[source] io::Error),
}

/// What kind of file `t` is, in words, for an error.
fn kind(t: std::fs::FileType) -> &'static str {
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a plain file"
    }
}

/// The whole content of the regular file `path`, at most `max` bytes.
/// Anything else (a FIFO, a device, a directory, a socket) is refused
/// before it is opened for reading, and checked again on the opened file
/// (the name may have been replaced in between); a file that grows past
/// `max` while it is read is refused too.
pub fn read_regular_file(path: &Path, max: u64) -> Result<Vec<u8>, FileError> {
    let meta = std::fs::metadata(path).map_err(FileError::Io)?;
    if !meta.is_file() {
        return Err(FileError::NotRegular(kind(meta.file_type())));
    }
    if meta.len() > max {
        return Err(FileError::TooLarge { max });
    }
    // O_NONBLOCK: opening a FIFO put there since the check must not block.
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(FileError::Io)?;
    let meta = file.metadata().map_err(FileError::Io)?;
    if !meta.is_file() {
        return Err(FileError::NotRegular(kind(meta.file_type())));
    }
    let mut bytes = Vec::with_capacity(meta.len().min(max) as usize);
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(FileError::Io)?;
    if bytes.len() as u64 > max {
        return Err(FileError::TooLarge { max });
    }
    Ok(bytes)
}

/// Reads one line (without its `\n`, or `\r\n`) into `buf`, reading at most
/// `max` bytes of it: `Ok(None)` at the end of the input, `Err(TooLong)` if
/// the line is longer (the rest of the input is not read).
pub fn read_line_bounded<R: BufRead>(
    input: &mut R,
    max: usize,
    buf: &mut Vec<u8>,
) -> Result<Option<()>, LineError> {
    buf.clear();
    let n = input
        .take(max as u64 + 1)
        .read_until(b'\n', buf)
        .map_err(LineError::Io)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
    } else if n > max {
        return Err(LineError::TooLong(max));
    }
    Ok(Some(()))
}

/// Why a line was not read.
#[derive(Debug, thiserror::Error)]
pub enum LineError {
    #[error("longer than {0} bytes")]
    TooLong(usize),
    #[error("cannot read the input")]
    Io(#[source] io::Error),
}

/// A byte that is not UTF-8: its 1-based column (in bytes) and value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotUtf8 {
    pub column: usize,
    pub byte: u8,
}

impl std::fmt::Display for NotUtf8 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "byte 0x{:02X} at column {} is not UTF-8",
            self.byte, self.column
        )
    }
}

/// `bytes` as text, or where the first byte that is not UTF-8 is.
pub fn utf8(bytes: &[u8]) -> Result<&str, NotUtf8> {
    std::str::from_utf8(bytes).map_err(|e| {
        let at = e.valid_up_to();
        NotUtf8 {
            column: at + 1,
            byte: bytes[at],
        }
    })
}

/// Where a `#` comment starts in a line: the first `#`, or with
/// `quotes`, the first `#` outside double quotes. `#` and `"` are ASCII,
/// and no byte of a multi-byte UTF-8 character is, so this is the same
/// place whether the line is read as bytes or as text.
pub fn comment_start(line: &[u8], quotes: bool) -> Option<usize> {
    let mut quoted = false;
    for (i, &b) in line.iter().enumerate() {
        match b {
            b'"' if quotes => quoted = !quoted,
            b'#' if !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

/// `message` if it is at most [`MAX_MESSAGE`] bytes long; otherwise its
/// start and its end with the middle replaced by `…[N bytes]…`, so that an
/// error quoting a huge line stays short and still says what is wrong.
pub fn bound_message(message: String) -> String {
    match excerpt(&message, MAX_MESSAGE) {
        Cow::Borrowed(_) => message,
        Cow::Owned(s) => s,
    }
}

/// At most about `max` bytes of `s`: its start and its end, the middle
/// elided (cut at character boundaries).
pub fn excerpt(s: &str, max: usize) -> Cow<'_, str> {
    if s.len() <= max {
        return Cow::Borrowed(s);
    }
    let half = max.saturating_sub(24) / 2;
    let mut head = half;
    while !s.is_char_boundary(head) {
        head -= 1;
    }
    let mut tail = s.len() - half;
    while !s.is_char_boundary(tail) {
        tail += 1;
    }
    Cow::Owned(format!(
        "{}…[{} bytes]…{}",
        &s[..head],
        tail - head,
        &s[tail..]
    ))
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    fn tmp(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("lb-input-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_regular_file_is_read_whole() {
        let dir = tmp("regular");
        let p = dir.join("f");
        std::fs::write(&p, b"abc\n").unwrap();
        assert_eq!(read_regular_file(&p, 4).unwrap(), b"abc\n");
        let e = read_regular_file(&p, 3).unwrap_err();
        assert!(matches!(e, FileError::TooLarge { max: 3 }), "{e:?}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn devices_fifos_and_directories_are_refused_unread() {
        let e = read_regular_file(Path::new("/dev/zero"), 1 << 20).unwrap_err();
        assert_eq!(
            e.to_string(),
            "not a regular file (a character device): lbctl reads only regular files"
        );
        let dir = tmp("fifo");
        let fifo = dir.join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        // Would block forever if it were opened for reading.
        let e = read_regular_file(&fifo, 1 << 20).unwrap_err();
        assert!(matches!(e, FileError::NotRegular("a FIFO")), "{e:?}");
        let e = read_regular_file(&dir, 1 << 20).unwrap_err();
        assert!(matches!(e, FileError::NotRegular("a directory")), "{e:?}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_missing_file_is_an_io_error() {
        let e = read_regular_file(Path::new("/nonexistent/x"), 10).unwrap_err();
        assert!(matches!(e, FileError::Io(_)), "{e:?}");
    }

    #[test]
    fn lines_are_read_up_to_their_bound() {
        let mut input = Cursor::new(b"ab\r\ncd\nefgh\nxyz".to_vec());
        let mut buf = Vec::new();
        let mut lines = Vec::new();
        loop {
            match read_line_bounded(&mut input, 3, &mut buf) {
                Ok(Some(())) => lines.push(String::from_utf8(buf.clone()).unwrap()),
                Ok(None) => break,
                Err(e) => {
                    lines.push(e.to_string());
                    break;
                }
            }
        }
        assert_eq!(lines, ["ab", "cd", "longer than 3 bytes"]);
        // Exactly the bound, with and without a newline.
        let mut input = Cursor::new(b"abc\nabc".to_vec());
        assert!(matches!(
            read_line_bounded(&mut input, 3, &mut buf),
            Ok(Some(()))
        ));
        assert_eq!(buf, b"abc");
        assert!(matches!(
            read_line_bounded(&mut input, 3, &mut buf),
            Ok(Some(()))
        ));
        assert_eq!(buf, b"abc");
        assert!(matches!(
            read_line_bounded(&mut input, 3, &mut buf),
            Ok(None)
        ));
    }

    #[test]
    fn an_endless_line_stops_at_the_bound() {
        let mut zeros = io::BufReader::new(io::repeat(0));
        let mut buf = Vec::new();
        let e = read_line_bounded(&mut zeros, 4096, &mut buf).unwrap_err();
        assert!(matches!(e, LineError::TooLong(4096)));
        assert!(buf.len() <= 4097);
    }

    #[test]
    fn the_first_byte_that_is_not_utf8_is_located() {
        assert_eq!(utf8(b"caf\xc3\xa9"), Ok("café"));
        assert_eq!(
            utf8(b"caf\xe9 x"),
            Err(NotUtf8 {
                column: 4,
                byte: 0xe9
            })
        );
        assert_eq!(
            utf8(b"\xe9").unwrap_err().to_string(),
            "byte 0xE9 at column 1 is not UTF-8"
        );
    }

    #[test]
    fn comments_start_at_a_hash_outside_quotes() {
        assert_eq!(comment_start(b"a=1 # x", true), Some(4));
        assert_eq!(comment_start(b"a=\"#1\" # x", true), Some(7));
        assert_eq!(comment_start(b"a=\"#1\" # x", false), Some(3));
        assert_eq!(comment_start(b"a=1", true), None);
    }

    #[test]
    fn long_messages_keep_their_start_and_end() {
        assert_eq!(bound_message("short".into()), "short");
        let long = format!("Unknown command \"{}\": explanation", "é".repeat(500_000));
        let b = bound_message(long.clone());
        assert!(b.len() <= MAX_MESSAGE + 40, "{}", b.len());
        assert!(b.starts_with("Unknown command \"é"), "{b}");
        assert!(b.ends_with("é\": explanation"), "{b}");
        assert!(b.contains(" bytes]…"), "{b}");
    }
}
