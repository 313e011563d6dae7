//! Pack objects: many small files (or chunks of big ones) concatenated, with an
//! index and footer so a re-run can verify a stored pack without reading data.
//!
//! Layout (integers little-endian):
//!
//! ```text
//! data[data_len]
//! index: per piece: len u64 | crc32 u32
//! footer: data_len u64 | n_pieces u32 | data_crc u32 | plan_fp u32 | magic "TSNPACK1" | crc32 u32
//! ```
//!
//! The trailing crc32 covers the index and the footer fields before it.
//! `plan_fp` is a crc32 of the planned contents (tablet, path, file size, file
//! crc, offset, length of each piece), so a resumed upload can tell whether a
//! stored pack holds exactly what it would write now.

use crate::codec::{check_crc_trailer, Reader, Writer};
use crate::error::{Error, Result};
use crate::source::UploadSource;

/// Magic bytes in every pack footer.
pub const PACK_MAGIC: &[u8; 8] = b"TSNPACK1";
/// Bytes of the fixed footer.
pub const FOOTER_LEN: u64 = 8 + 4 + 4 + 4 + 8 + 4;
/// Bytes of one index entry.
pub const INDEX_ENTRY_LEN: u64 = 12;

/// One planned piece: a byte range of one source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PlannedPiece {
    /// Index into the normalized sources.
    pub src: u32,
    /// Index into that source's files.
    pub file: u32,
    /// Offset in the file.
    pub file_offset: u64,
    /// Length.
    pub len: u64,
}

/// One planned pack object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PackPlan {
    /// Sequence number; names the object.
    pub seq: u32,
    /// Pieces in pack order.
    pub pieces: Vec<PlannedPiece>,
    /// Sum of piece lengths.
    pub data_len: u64,
}

impl PackPlan {
    /// Size of the stored object: data, index and footer.
    pub fn object_len(&self) -> u64 {
        self.data_len + self.pieces.len() as u64 * INDEX_ENTRY_LEN + FOOTER_LEN
    }

    /// Bytes at the end of the object holding the index and footer.
    pub fn tail_len(&self) -> u64 {
        self.object_len() - self.data_len
    }

    /// The crc32 fingerprint of what this pack holds.
    pub fn fingerprint(&self, sources: &[UploadSource]) -> u32 {
        let mut h = crc32fast::Hasher::new();
        for p in &self.pieces {
            let s = &sources[p.src as usize];
            let f = &s.files[p.file as usize];
            h.update(&s.tablet_id.to_le_bytes());
            h.update(&(f.name.len() as u32).to_le_bytes());
            h.update(f.name.as_bytes());
            h.update(&f.size.to_le_bytes());
            h.update(&f.crc32.to_le_bytes());
            h.update(&p.file_offset.to_le_bytes());
            h.update(&p.len.to_le_bytes());
        }
        h.finalize()
    }
}

/// Splits files into pieces of at most `chunk_size` bytes and groups pieces into
/// packs of about `pack_target` bytes, in source order. Zero-byte files get no piece.
pub(crate) fn plan(sources: &[UploadSource], pack_target: u64, chunk_size: u64) -> Vec<PackPlan> {
    let chunk_size = chunk_size.max(1);
    let mut packs = Vec::new();
    let mut cur = PackPlan {
        seq: 0,
        pieces: Vec::new(),
        data_len: 0,
    };
    for (si, s) in sources.iter().enumerate() {
        for (fi, f) in s.files.iter().enumerate() {
            let mut off = 0;
            while off < f.size {
                let len = (f.size - off).min(chunk_size);
                if !cur.pieces.is_empty() && cur.data_len + len > pack_target {
                    let seq = cur.seq + 1;
                    packs.push(std::mem::replace(
                        &mut cur,
                        PackPlan {
                            seq,
                            pieces: Vec::new(),
                            data_len: 0,
                        },
                    ));
                }
                cur.pieces.push(PlannedPiece {
                    src: si as u32,
                    file: fi as u32,
                    file_offset: off,
                    len,
                });
                cur.data_len += len;
                off += len;
            }
        }
    }
    if !cur.pieces.is_empty() {
        packs.push(cur);
    }
    packs
}

/// Appends the index and footer to a pack buffer holding the data.
pub(crate) fn finish(buf: &mut Vec<u8>, piece_crcs: &[(u64, u32)], data_crc: u32, plan_fp: u32) {
    let data_len = buf.len() as u64;
    let mut w = Writer::new();
    for (len, crc) in piece_crcs {
        w.u64(*len);
        w.u32(*crc);
    }
    w.u64(data_len);
    w.u32(piece_crcs.len() as u32);
    w.u32(data_crc);
    w.u32(plan_fp);
    w.bytes(PACK_MAGIC);
    buf.extend_from_slice(&w.finish_with_crc());
}

/// The decoded index and footer of a stored pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PackTail {
    /// (length, crc32) of each piece in order.
    pub pieces: Vec<(u64, u32)>,
    /// Data bytes.
    pub data_len: u64,
    /// crc32 of all data bytes.
    pub data_crc: u32,
    /// Fingerprint of the plan that wrote the pack.
    pub plan_fp: u32,
}

/// Decodes a pack's tail (index + footer); `key` names the pack in errors.
pub(crate) fn decode_tail(tail: &[u8], key: &str) -> Result<PackTail> {
    let what = format!("pack '{key}' index");
    let body = check_crc_trailer(tail, &what)?;
    if (body.len() as u64) < FOOTER_LEN - 4 {
        return Err(Error::Corrupt {
            what,
            reason: "footer truncated".into(),
        });
    }
    let (index, footer) = body.split_at(body.len() - (FOOTER_LEN as usize - 4));
    let mut r = Reader::new(footer, &what);
    let data_len = r.u64()?;
    let n = r.u32()? as usize;
    let data_crc = r.u32()?;
    let plan_fp = r.u32()?;
    if r.bytes(8)? != PACK_MAGIC {
        return Err(r.corrupt("bad magic"));
    }
    let index_len = n
        .checked_mul(INDEX_ENTRY_LEN as usize)
        .ok_or_else(|| Error::Overflow {
            what: what.clone(),
            detail: format!("index size {n} pieces * {INDEX_ENTRY_LEN} bytes"),
        })?;
    if index.len() != index_len {
        return Err(r.corrupt(format!("index of {} bytes for {n} pieces", index.len())));
    }
    let mut r = Reader::new(index, &what);
    let mut pieces = Vec::with_capacity(n);
    for _ in 0..n {
        pieces.push((r.u64()?, r.u32()?));
    }
    Ok(PackTail {
        pieces,
        data_len,
        data_crc,
        plan_fp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::SourceFile;

    fn src(sizes: &[u64]) -> Vec<UploadSource> {
        vec![UploadSource::new(
            1,
            "/x",
            sizes
                .iter()
                .enumerate()
                .map(|(i, s)| SourceFile {
                    name: format!("f{i}"),
                    size: *s,
                    crc32: 0,
                })
                .collect(),
        )]
    }

    #[test]
    fn chunks_and_packs() {
        let p = plan(&src(&[10, 0, 16, 17, 3]), 20, 16);
        let lens: Vec<Vec<u64>> = p
            .iter()
            .map(|p| p.pieces.iter().map(|x| x.len).collect())
            .collect();
        assert_eq!(lens, vec![vec![10], vec![16], vec![16, 1, 3]]);
        assert!(p.iter().enumerate().all(|(i, p)| p.seq as usize == i));
    }

    #[test]
    fn tail_round_trip_and_corruption() {
        let mut buf = b"abcdef".to_vec();
        finish(&mut buf, &[(2, 7), (4, 9)], 11, 13);
        let tail = &buf[6..];
        assert_eq!(tail.len() as u64, 2 * INDEX_ENTRY_LEN + FOOTER_LEN);
        let t = decode_tail(tail, "k").ok();
        assert_eq!(
            t,
            Some(PackTail {
                pieces: vec![(2, 7), (4, 9)],
                data_len: 6,
                data_crc: 11,
                plan_fp: 13
            })
        );
        for i in 0..tail.len() {
            let mut b = tail.to_vec();
            b[i] ^= 1;
            assert!(decode_tail(&b, "k").is_err());
        }
    }
}
