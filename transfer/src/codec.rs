//! Explicit little-endian encoding helpers with bounds-checked decoding.

use crate::error::{Error, Result};

/// Appends little-endian fields to a byte buffer.
#[derive(Debug, Default)]
pub struct Writer {
    /// The encoded bytes so far.
    pub buf: Vec<u8>,
}

impl Writer {
    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends raw bytes.
    pub fn bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    /// Appends a `u32`, little-endian.
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// Appends a `u64`, little-endian.
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// Appends a string as a `u32` byte length then UTF-8 bytes.
    pub fn str(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.bytes(s.as_bytes());
    }

    /// Appends the crc32 of everything written so far (the trailer).
    pub fn finish_with_crc(mut self) -> Vec<u8> {
        let crc = crc32fast::hash(&self.buf);
        self.u32(crc);
        self.buf
    }
}

/// Reads little-endian fields, reporting truncation as [`Error::Corrupt`].
#[derive(Debug)]
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    what: &'a str,
}

impl<'a> Reader<'a> {
    /// A reader over `data`; `what` names the object in errors.
    pub fn new(data: &'a [u8], what: &'a str) -> Self {
        Self { data, pos: 0, what }
    }

    /// A [`Error::Corrupt`] for this object.
    pub fn corrupt(&self, reason: impl Into<String>) -> Error {
        Error::Corrupt {
            what: self.what.to_string(),
            reason: reason.into(),
        }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    /// Reads `n` raw bytes.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.remaining() < n {
            return Err(self.corrupt(format!(
                "truncated: needed {n} bytes at offset {}, {} left",
                self.pos,
                self.remaining()
            )));
        }
        let b = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(b)
    }

    /// Reads a little-endian `u32`.
    pub fn u32(&mut self) -> Result<u32> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.bytes(4)?);
        Ok(u32::from_le_bytes(a))
    }

    /// Reads a little-endian `u64`.
    pub fn u64(&mut self) -> Result<u64> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.bytes(8)?);
        Ok(u64::from_le_bytes(a))
    }

    /// Reads a length-prefixed UTF-8 string.
    pub fn str(&mut self) -> Result<String> {
        let n = self.u32()? as usize;
        let b = self.bytes(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| self.corrupt("string is not UTF-8"))
    }

    /// Reads an element count, refusing counts the remaining bytes cannot hold
    /// (so a corrupt count cannot trigger a huge allocation).
    pub fn count(&mut self, min_elem_size: usize) -> Result<usize> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min_elem_size.max(1)) > self.remaining() {
            return Err(self.corrupt(format!("count {n} exceeds the remaining bytes")));
        }
        Ok(n)
    }

    /// Fails unless every byte was consumed.
    pub fn expect_end(&self) -> Result<()> {
        if self.remaining() != 0 {
            return Err(self.corrupt(format!("{} trailing bytes", self.remaining())));
        }
        Ok(())
    }
}

/// Splits `data` into body and crc trailer and checks the crc; `what` names it.
pub fn check_crc_trailer<'a>(data: &'a [u8], what: &str) -> Result<&'a [u8]> {
    if data.len() < 4 {
        return Err(Error::Corrupt {
            what: what.to_string(),
            reason: format!("truncated: {} bytes", data.len()),
        });
    }
    let (body, tail) = data.split_at(data.len() - 4);
    let mut a = [0u8; 4];
    a.copy_from_slice(tail);
    let expected = u32::from_le_bytes(a);
    let actual = crc32fast::hash(body);
    if expected != actual {
        return Err(Error::ChecksumMismatch {
            what: what.to_string(),
            expected,
            actual,
        });
    }
    Ok(body)
}

/// Checks an 8-byte magic and a version no newer than `supported`; returns the version.
pub fn check_header(r: &mut Reader<'_>, magic: &[u8; 8], supported: u32) -> Result<u32> {
    if r.bytes(8)? != magic {
        return Err(r.corrupt("bad magic: not a tabletsnap object of this kind"));
    }
    let version = r.u32()?;
    if version > supported {
        return Err(Error::UnsupportedVersion {
            what: r.what.to_string(),
            found: version,
            supported,
        });
    }
    if version == 0 {
        return Err(r.corrupt("format version 0 does not exist"));
    }
    Ok(version)
}
