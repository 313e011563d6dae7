//! Segment files: immutable columnar pages, each with a crc32, a footer with
//! its own crc, and a trailer of footer length, footer crc, format version and
//! magic. The pages tile the file exactly up to the footer, so every byte is
//! covered by some checksum and any flipped byte or truncation is detected.

use std::path::Path;

use crate::error::{Error, Result};
use crate::schema::{ColumnType, Row, Schema, Value};

/// Trailing magic of a segment file.
pub const SEGMENT_MAGIC: &[u8; 4] = b"TSEG";
/// Newest segment format this build writes and reads.
pub const SEGMENT_FORMAT_VERSION: u32 = 1;
/// Default number of rows in one page.
pub const DEFAULT_ROWS_PER_PAGE: usize = 4096;
const TRAILER_LEN: usize = 16;

/// Where one page sits and what it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PageEntry {
    column: u32,
    first_row: u64,
    num_rows: u32,
    offset: u64,
    len: u64,
    crc: u32,
}

/// Encodes `rows` (already checked against `schema`) as a segment file image.
pub fn encode_segment(schema: &Schema, rows: &[Row], rows_per_page: usize) -> Vec<u8> {
    let rows_per_page = rows_per_page.max(1);
    let mut out = Vec::with_capacity(rows.len() * schema.columns.len() * 9 + 256);
    let mut pages = Vec::new();
    for (ci, col) in schema.columns.iter().enumerate() {
        let mut first = 0usize;
        while first < rows.len() {
            let n = rows_per_page.min(rows.len() - first);
            let offset = out.len();
            encode_page(
                col.ty,
                rows[first..first + n].iter().map(|r| &r[ci]),
                n,
                &mut out,
            );
            let crc = crc32fast::hash(&out[offset..]);
            pages.push(PageEntry {
                column: ci as u32,
                first_row: first as u64,
                num_rows: n as u32,
                offset: offset as u64,
                len: (out.len() - offset) as u64,
                crc,
            });
            first += n;
        }
    }
    let footer_start = out.len();
    out.extend_from_slice(&(rows.len() as u64).to_le_bytes());
    out.extend_from_slice(&(schema.columns.len() as u32).to_le_bytes());
    for col in schema.columns.iter() {
        out.push(col.ty.tag());
        let param = match col.ty {
            ColumnType::Varchar(n) => n,
            _ => 0,
        };
        out.extend_from_slice(&param.to_le_bytes());
    }
    out.extend_from_slice(&(pages.len() as u32).to_le_bytes());
    for p in &pages {
        out.extend_from_slice(&p.column.to_le_bytes());
        out.extend_from_slice(&p.first_row.to_le_bytes());
        out.extend_from_slice(&p.num_rows.to_le_bytes());
        out.extend_from_slice(&p.offset.to_le_bytes());
        out.extend_from_slice(&p.len.to_le_bytes());
        out.extend_from_slice(&p.crc.to_le_bytes());
    }
    let footer_len = out.len() - footer_start;
    let footer_crc = crc32fast::hash(&out[footer_start..]);
    out.extend_from_slice(&(footer_len as u32).to_le_bytes());
    out.extend_from_slice(&footer_crc.to_le_bytes());
    out.extend_from_slice(&SEGMENT_FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(SEGMENT_MAGIC);
    out
}

fn encode_page<'a>(
    ty: ColumnType,
    values: impl Iterator<Item = &'a Value> + Clone,
    n: usize,
    out: &mut Vec<u8>,
) {
    let has_nulls = values.clone().any(|v| matches!(v, Value::Null));
    out.push(u8::from(has_nulls));
    if has_nulls {
        let mut bitmap = vec![0u8; n.div_ceil(8)];
        for (i, v) in values.clone().enumerate() {
            if matches!(v, Value::Null) {
                bitmap[i / 8] |= 1 << (i % 8);
            }
        }
        out.extend_from_slice(&bitmap);
    }
    match ty {
        ColumnType::Varchar(_) => {
            let mut bytes = Vec::new();
            for v in values {
                let s = match v {
                    Value::Varchar(s) => s.as_bytes(),
                    _ => &[],
                };
                out.extend_from_slice(&(s.len() as u32).to_le_bytes());
                bytes.extend_from_slice(s);
            }
            out.extend_from_slice(&bytes);
        }
        _ => {
            for v in values {
                match (ty, v) {
                    (ColumnType::Boolean, Value::Boolean(b)) => out.push(u8::from(*b)),
                    (ColumnType::Boolean, _) => out.push(0),
                    (ColumnType::Int, Value::Int(x)) | (ColumnType::Date, Value::Date(x)) => {
                        out.extend_from_slice(&x.to_le_bytes())
                    }
                    (ColumnType::Int | ColumnType::Date, _) => out.extend_from_slice(&[0; 4]),
                    (ColumnType::BigInt, Value::BigInt(x))
                    | (ColumnType::DateTime, Value::DateTime(x)) => {
                        out.extend_from_slice(&x.to_le_bytes())
                    }
                    (ColumnType::Double, Value::Double(x)) => {
                        out.extend_from_slice(&x.to_bits().to_le_bytes())
                    }
                    _ => out.extend_from_slice(&[0; 8]),
                }
            }
        }
    }
}

/// A little-endian cursor that reports running off the end as corruption.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    path: &'a Path,
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.buf.len());
        match end {
            Some(end) => {
                let s = &self.buf[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(Error::corrupt(
                self.path,
                format!("{} truncated", self.what),
            )),
        }
    }
    fn arr<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.arr::<1>()?[0])
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.arr()?))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.arr()?))
    }
}

/// Decodes and verifies a segment image read from `path` against `schema`.
/// Any damage yields an error naming `path`; never wrong rows.
pub fn decode_segment(path: &Path, schema: &Schema, buf: &[u8]) -> Result<Vec<Row>> {
    if buf.len() < TRAILER_LEN {
        return Err(Error::corrupt(
            path,
            format!("{} bytes is too short for a segment", buf.len()),
        ));
    }
    let t = &buf[buf.len() - TRAILER_LEN..];
    if &t[12..16] != SEGMENT_MAGIC {
        return Err(Error::corrupt(
            path,
            "bad segment magic (truncated or not a segment)",
        ));
    }
    let version = u32::from_le_bytes([t[8], t[9], t[10], t[11]]);
    if version != SEGMENT_FORMAT_VERSION {
        return Err(Error::UnsupportedVersion {
            path: path.to_path_buf(),
            found: version,
            supported: SEGMENT_FORMAT_VERSION,
        });
    }
    let footer_len = u32::from_le_bytes([t[0], t[1], t[2], t[3]]) as usize;
    let footer_crc = u32::from_le_bytes([t[4], t[5], t[6], t[7]]);
    let body_len = buf.len() - TRAILER_LEN;
    if footer_len > body_len {
        return Err(Error::corrupt(path, "footer length exceeds file size"));
    }
    let footer_start = body_len - footer_len;
    let footer = &buf[footer_start..body_len];
    let actual = crc32fast::hash(footer);
    if actual != footer_crc {
        return Err(Error::ChecksumMismatch {
            what: format!("segment footer of {}", path.display()),
            expected: footer_crc,
            actual,
        });
    }
    let mut r = Reader {
        buf: footer,
        pos: 0,
        path,
        what: "segment footer",
    };
    let row_count = r.u64()?;
    let ncols = r.u32()? as usize;
    if ncols != schema.columns.len() {
        return Err(Error::corrupt(
            path,
            format!(
                "segment has {ncols} columns, schema has {}",
                schema.columns.len()
            ),
        ));
    }
    for col in schema.columns.iter() {
        let tag = r.u8()?;
        let _param = r.u32()?;
        if tag != col.ty.tag() {
            return Err(Error::corrupt(
                path,
                format!(
                    "column {} stored with type tag {tag}, schema says {}",
                    col.name,
                    col.ty.sql_name()
                ),
            ));
        }
    }
    let npages = r.u32()? as usize;
    if npages > footer.len() / 36 + 1 {
        return Err(Error::corrupt(path, "page count exceeds footer size"));
    }
    let mut pages = Vec::with_capacity(npages);
    for _ in 0..npages {
        pages.push(PageEntry {
            column: r.u32()?,
            first_row: r.u64()?,
            num_rows: r.u32()?,
            offset: r.u64()?,
            len: r.u64()?,
            crc: r.u32()?,
        });
    }
    if r.pos != footer.len() {
        return Err(Error::corrupt(path, "trailing bytes in segment footer"));
    }
    // Pages must tile [0, footer_start) exactly so no byte escapes a checksum.
    let mut expect_offset = 0u64;
    for p in &pages {
        if p.offset != expect_offset {
            return Err(Error::corrupt(path, "pages do not tile the segment body"));
        }
        expect_offset = p.offset.checked_add(p.len).ok_or_else(|| {
            Error::corrupt(
                path,
                format!(
                    "page at offset {} has length {}: offset + length overflows u64",
                    p.offset, p.len
                ),
            )
        })?;
    }
    if expect_offset != footer_start as u64 {
        return Err(Error::corrupt(path, "pages do not tile the segment body"));
    }
    let rows_len = usize::try_from(row_count)
        .ok()
        .filter(|n| *n <= body_len.saturating_mul(8).saturating_add(1))
        .ok_or_else(|| Error::corrupt(path, "row count is implausible"))?;
    let mut columns: Vec<Vec<Value>> = vec![Vec::with_capacity(rows_len); ncols];
    for p in &pages {
        // The tiling check bounds every page inside [0, footer_start).
        let bytes = usize::try_from(p.offset)
            .ok()
            .zip(usize::try_from(p.len).ok())
            .and_then(|(start, len)| buf.get(start..start.checked_add(len)?))
            .ok_or_else(|| Error::corrupt(path, "page lies outside the segment body"))?;
        let actual = crc32fast::hash(bytes);
        if actual != p.crc {
            return Err(Error::ChecksumMismatch {
                what: format!("page at offset {} of {}", p.offset, path.display()),
                expected: p.crc,
                actual,
            });
        }
        let ci = p.column as usize;
        let col = schema
            .columns
            .get(ci)
            .ok_or_else(|| Error::corrupt(path, "page names a column out of range"))?;
        if p.first_row != columns[ci].len() as u64 {
            return Err(Error::corrupt(path, "pages of a column are out of order"));
        }
        decode_page(path, col.ty, bytes, p.num_rows as usize, &mut columns[ci])?;
    }
    for (col, vals) in schema.columns.iter().zip(&columns) {
        if vals.len() != rows_len {
            return Err(Error::corrupt(
                path,
                format!(
                    "column {} has {} rows, footer says {rows_len}",
                    col.name,
                    vals.len()
                ),
            ));
        }
    }
    let mut rows: Vec<Row> = (0..rows_len).map(|_| Vec::with_capacity(ncols)).collect();
    for vals in columns {
        for (row, v) in rows.iter_mut().zip(vals) {
            row.push(v);
        }
    }
    Ok(rows)
}

fn decode_page(
    path: &Path,
    ty: ColumnType,
    bytes: &[u8],
    n: usize,
    out: &mut Vec<Value>,
) -> Result<()> {
    let mut r = Reader {
        buf: bytes,
        pos: 0,
        path,
        what: "segment page",
    };
    let has_nulls = match r.u8()? {
        0 => false,
        1 => true,
        _ => return Err(Error::corrupt(path, "bad page null flag")),
    };
    let bitmap = if has_nulls {
        Some(r.take(n.div_ceil(8))?)
    } else {
        None
    };
    let is_null = |i: usize| bitmap.is_some_and(|b| b[i / 8] & (1 << (i % 8)) != 0);
    match ty {
        ColumnType::Varchar(_) => {
            let lens = r.take(
                n.checked_mul(4)
                    .ok_or_else(|| Error::corrupt(path, "page too large"))?,
            )?;
            for i in 0..n {
                let len = u32::from_le_bytes([
                    lens[4 * i],
                    lens[4 * i + 1],
                    lens[4 * i + 2],
                    lens[4 * i + 3],
                ]);
                let s = r.take(len as usize)?;
                if is_null(i) {
                    out.push(Value::Null);
                } else {
                    let s = std::str::from_utf8(s)
                        .map_err(|_| Error::corrupt(path, "VARCHAR value is not UTF-8"))?;
                    out.push(Value::Varchar(s.to_owned()));
                }
            }
        }
        _ => {
            for i in 0..n {
                let v = match ty {
                    ColumnType::Boolean => Value::Boolean(r.u8()? != 0),
                    ColumnType::Int => Value::Int(i32::from_le_bytes(r.arr()?)),
                    ColumnType::Date => Value::Date(i32::from_le_bytes(r.arr()?)),
                    ColumnType::BigInt => Value::BigInt(i64::from_le_bytes(r.arr()?)),
                    ColumnType::DateTime => Value::DateTime(i64::from_le_bytes(r.arr()?)),
                    _ => Value::Double(f64::from_bits(r.u64()?)),
                };
                out.push(if is_null(i) { Value::Null } else { v });
            }
        }
    }
    if r.pos != bytes.len() {
        return Err(Error::corrupt(path, "trailing bytes in segment page"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Column;
    use proptest::prelude::*;

    fn all_types_schema() -> Schema {
        Schema::new(vec![
            Column::new("b", ColumnType::Boolean),
            Column::new("i", ColumnType::Int).key(),
            Column::new("l", ColumnType::BigInt),
            Column::new("d", ColumnType::Double),
            Column::new("dt", ColumnType::Date),
            Column::new("ts", ColumnType::DateTime),
            Column::new("s", ColumnType::Varchar(16)),
        ])
    }

    fn value_for(ty: ColumnType) -> impl Strategy<Value = Value> {
        let non_null: BoxedStrategy<Value> = match ty {
            ColumnType::Boolean => any::<bool>().prop_map(Value::Boolean).boxed(),
            ColumnType::Int => any::<i32>().prop_map(Value::Int).boxed(),
            ColumnType::BigInt => any::<i64>().prop_map(Value::BigInt).boxed(),
            ColumnType::Double => any::<f64>()
                .prop_filter("NaN never equals itself", |d| !d.is_nan())
                .prop_map(Value::Double)
                .boxed(),
            ColumnType::Date => any::<i32>().prop_map(Value::Date).boxed(),
            ColumnType::DateTime => any::<i64>().prop_map(Value::DateTime).boxed(),
            ColumnType::Varchar(_) => "[a-zé]{0,5}".prop_map(Value::Varchar).boxed(),
        };
        prop_oneof![1 => Just(Value::Null), 4 => non_null]
    }

    fn rows_strategy() -> impl Strategy<Value = Vec<Row>> {
        let schema = all_types_schema();
        let row = schema
            .columns
            .iter()
            .map(|c| value_for(c.ty))
            .collect::<Vec<_>>();
        prop::collection::vec(row, 0..40)
    }

    #[test]
    fn every_type_with_nulls_and_empty_varchar() -> Result<()> {
        let s = all_types_schema();
        let rows = vec![
            vec![
                Value::Boolean(true),
                Value::Int(-7),
                Value::BigInt(i64::MIN),
                Value::Double(1.5),
                Value::Date(20_783),
                Value::DateTime(1),
                Value::Varchar(String::new()),
            ],
            vec![Value::Null; 7],
            vec![
                Value::Boolean(false),
                Value::Int(i32::MAX),
                Value::BigInt(0),
                Value::Double(-0.0),
                Value::Date(-1),
                Value::DateTime(i64::MAX),
                Value::Varchar("héllo".into()),
            ],
        ];
        let img = encode_segment(&s, &rows, 2);
        let back = decode_segment(Path::new("x.dat"), &s, &img)?;
        assert_eq!(back, rows);
        let empty = encode_segment(&s, &[], 2);
        assert!(decode_segment(Path::new("e.dat"), &s, &empty)?.is_empty());
        Ok(())
    }

    /// Rewrites page `i`'s offset and length in the footer of `img` and fixes
    /// the footer crc, so only the bounds checks stand between them and a read.
    fn set_page(img: &mut [u8], ncols: usize, i: usize, offset: u64, len: u64) {
        let n = img.len();
        let footer_len = u32::from_le_bytes([img[n - 16], img[n - 15], img[n - 14], img[n - 13]]);
        let footer_start = n - TRAILER_LEN - footer_len as usize;
        let entry = footer_start + 8 + 4 + 5 * ncols + 4 + 36 * i;
        img[entry + 16..entry + 24].copy_from_slice(&offset.to_le_bytes());
        img[entry + 24..entry + 32].copy_from_slice(&len.to_le_bytes());
        let crc = crc32fast::hash(&img[footer_start..n - TRAILER_LEN]);
        img[n - 12..n - 8].copy_from_slice(&crc.to_le_bytes());
    }

    #[test]
    fn page_offsets_and_lengths_that_overflow_are_corruption() {
        let s = Schema::new(vec![Column::new("i", ColumnType::Int).key()]);
        let rows: Vec<Row> = (0..5).map(|i| vec![Value::Int(i)]).collect();
        let img = encode_segment(&s, &rows, 2);
        let cases = [
            // offset + len past u64::MAX
            vec![(0, 0, u64::MAX), (1, u64::MAX, 2)],
            // a length past the file
            vec![(0, 0, u64::MAX / 2)],
            // an offset past the file
            vec![(2, u64::MAX - 1, 1)],
        ];
        for case in cases {
            let mut bad = img.clone();
            for (i, off, len) in &case {
                set_page(&mut bad, 1, *i, *off, *len);
            }
            let err = decode_segment(Path::new("t/seg_0.dat"), &s, &bad)
                .expect_err("overflowing page accepted");
            let msg = err.to_string();
            assert!(matches!(err, Error::Corruption { .. }), "{msg}");
            assert!(msg.contains("t/seg_0.dat"), "{msg}");
        }
        let mut bad = img.clone();
        set_page(&mut bad, 1, 0, 0, u64::MAX);
        set_page(&mut bad, 1, 1, u64::MAX, 2);
        let msg = decode_segment(Path::new("x.dat"), &s, &bad)
            .expect_err("overflow")
            .to_string();
        assert!(msg.contains("overflows"), "{msg}");
    }

    proptest! {
        #[test]
        fn round_trip(rows in rows_strategy(), per_page in 1usize..9) {
            let s = all_types_schema();
            let img = encode_segment(&s, &rows, per_page);
            let back = decode_segment(Path::new("p.dat"), &s, &img);
            prop_assert_eq!(back.ok(), Some(rows));
        }

        #[test]
        fn any_flipped_byte_is_detected(rows in rows_strategy(), pos in any::<prop::sample::Index>(), bit in 0u8..8) {
            let s = all_types_schema();
            let mut img = encode_segment(&s, &rows, 3);
            let i = pos.index(img.len());
            img[i] ^= 1 << bit;
            let res = decode_segment(Path::new("flip.dat"), &s, &img);
            prop_assert!(res.is_err(), "flip at {} of {} went unnoticed", i, img.len());
            let msg = res.err().map(|e| e.to_string()).unwrap_or_default();
            prop_assert!(msg.contains("flip.dat"), "error does not name the file: {}", msg);
        }

        #[test]
        fn any_truncation_is_detected(rows in rows_strategy(), cut in any::<prop::sample::Index>()) {
            let s = all_types_schema();
            let img = encode_segment(&s, &rows, 3);
            let keep = cut.index(img.len());
            let res = decode_segment(Path::new("cut.dat"), &s, &img[..keep]);
            prop_assert!(res.is_err());
        }
    }
}
