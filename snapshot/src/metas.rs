//! The downloaded tablet metas of an in-place restore batch: one append-only
//! file per restore top dir (`<top>/tablet.metas`) instead of a dir and a
//! file per tablet. An in-place restore writes every segment file straight
//! into its tablet's data dir; what is left of a tablet's "restore dir" is
//! its name (`<top>/<tablet_id>/<schema_hash>`, which keys the reservation)
//! and its snapshot meta, kept here until the install reads it. Two
//! directories and a file less per tablet: the inodes `cp -r` does not make.
//!
//! A record is `"TSMB" | u64 tablet_id | u32 len | u32 crc32 | len bytes`,
//! little endian, the crc32 over the first 16 bytes and the payload. A record
//! is appended with one `write` and made durable by the download's barrier;
//! a crash can tear only the last one, which readers ignore and the next
//! writer cuts off before appending. The last record of a tablet wins (a
//! rerun appends a meta again only if the one kept differs).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tabletsnap_engine::TabletMeta;

use crate::error::{Error, Result};

/// The file name of a restore top dir's tablet metas.
pub const METAS_FILE_NAME: &str = "tablet.metas";

const MAGIC: &[u8; 4] = b"TSMB";
const HEADER: usize = 20;

/// Where a record's payload lies, and its crc32.
#[derive(Debug, Clone, Copy)]
struct Slot {
    offset: u64,
    len: u32,
    crc: u32,
}

/// Scans the records of `file`; returns each tablet's last record and where
/// the valid records end (a torn or damaged tail is not read past).
fn scan(file: &File, path: &Path) -> Result<(HashMap<u64, Slot>, u64)> {
    let mut slots = HashMap::new();
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
    let mut at = 0u64;
    let mut payload = Vec::new();
    loop {
        let mut head = [0u8; HEADER];
        match read_full(&mut reader, &mut head).map_err(|e| Error::io(path, e))? {
            0 => break,
            n if n < HEADER => break,
            _ => {}
        }
        if &head[..4] != MAGIC {
            break;
        }
        let tablet = u64::from_le_bytes(head[4..12].try_into().unwrap_or_default());
        let len = u32::from_le_bytes(head[12..16].try_into().unwrap_or_default());
        let crc = u32::from_le_bytes(head[16..20].try_into().unwrap_or_default());
        payload.resize(len as usize, 0);
        if read_full(&mut reader, &mut payload).map_err(|e| Error::io(path, e))? < len as usize {
            break;
        }
        if record_crc(&head, &payload) != crc {
            break;
        }
        slots.insert(
            tablet,
            Slot {
                offset: at + HEADER as u64,
                len,
                crc: crc32fast::hash(&payload),
            },
        );
        at += HEADER as u64 + u64::from(len);
    }
    Ok((slots, at))
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn record_crc(head: &[u8; HEADER], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&head[..16]);
    h.update(payload);
    h.finalize()
}

/// The restore top dir of a restore dir name `<top>/<tablet_id>/<schema_hash>`,
/// and the tablet id; `None` for any other shape.
pub fn top_and_tablet(dir: &Path) -> Option<(&Path, u64)> {
    let tablet_dir = dir.parent()?;
    let tablet = tablet_dir.file_name()?.to_str()?.parse().ok()?;
    Some((tablet_dir.parent()?, tablet))
}

/// Appends downloaded tablet metas to a top dir's [`METAS_FILE_NAME`].
#[derive(Debug)]
pub struct MetasWriter {
    path: PathBuf,
    /// The file and where its valid records end (where the next one goes).
    file: Mutex<(File, u64)>,
    kept: Mutex<HashMap<u64, (u64, u32)>>,
}

impl MetasWriter {
    /// Opens (or creates) the metas file of restore top dir `top`, cutting
    /// off a torn last record.
    pub fn open(top: &Path) -> Result<MetasWriter> {
        let path = top.join(METAS_FILE_NAME);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        let (slots, end) = scan(&file, &path)?;
        let size = file.metadata().map_err(|e| Error::io(&path, e))?.len();
        if size != end {
            file.set_len(end).map_err(|e| Error::io(&path, e))?;
        }
        let kept = slots
            .into_iter()
            .map(|(t, s)| (t, (u64::from(s.len), s.crc)))
            .collect();
        Ok(MetasWriter {
            path,
            file: Mutex::new((file, end)),
            kept: Mutex::new(kept),
        })
    }

    /// Whether tablet `tablet_id`'s meta is kept with this size and crc32.
    pub fn holds(&self, tablet_id: u64, size: u64, crc32: u32) -> bool {
        self.kept
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&tablet_id)
            == Some(&(size, crc32))
    }

    /// Appends `meta` (the snapshot's verified `tablet.meta` bytes) for
    /// tablet `tablet_id`, in one write.
    pub fn append(&self, tablet_id: u64, meta: &[u8]) -> Result<()> {
        let len = u32::try_from(meta.len()).map_err(|_| Error::Corruption {
            path: self.path.clone(),
            detail: format!(
                "the tablet meta of tablet {tablet_id} is {} bytes, more than a record holds",
                meta.len()
            ),
        })?;
        let mut head = [0u8; HEADER];
        head[..4].copy_from_slice(MAGIC);
        head[4..12].copy_from_slice(&tablet_id.to_le_bytes());
        head[12..16].copy_from_slice(&len.to_le_bytes());
        let crc = record_crc(&head, meta);
        head[16..20].copy_from_slice(&crc.to_le_bytes());
        let mut rec = Vec::with_capacity(HEADER + meta.len());
        rec.extend_from_slice(&head);
        rec.extend_from_slice(meta);
        {
            let mut f = self.file.lock().unwrap_or_else(|e| e.into_inner());
            let (file, end) = &mut *f;
            file.write_all_at(&rec, *end)
                .map_err(|e| Error::io(&self.path, e))?;
            *end += rec.len() as u64;
        }
        self.kept
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(tablet_id, (u64::from(len), crc32fast::hash(meta)));
        Ok(())
    }
}

/// Reads the snapshot metas of restore dirs: from their top dir's
/// [`METAS_FILE_NAME`] (each file scanned once, each meta read with one
/// positioned read), else from `<dir>/tablet.meta` (a restore dir a caller
/// filled itself, a catch-up's, or one made before the metas file).
#[derive(Debug, Default)]
pub struct RestoreMetas {
    tops: Mutex<HashMap<PathBuf, Option<std::sync::Arc<Index>>>>,
}

#[derive(Debug)]
struct Index {
    path: PathBuf,
    file: File,
    slots: HashMap<u64, Slot>,
}

impl RestoreMetas {
    /// An empty cache.
    pub fn new() -> RestoreMetas {
        RestoreMetas::default()
    }

    fn index(&self, top: &Path) -> Result<Option<std::sync::Arc<Index>>> {
        if let Some(i) = self.tops.lock().unwrap_or_else(|e| e.into_inner()).get(top) {
            return Ok(i.clone());
        }
        let path = top.join(METAS_FILE_NAME);
        let index = match File::open(&path) {
            Ok(file) => {
                let (slots, _) = scan(&file, &path)?;
                Some(std::sync::Arc::new(Index { path, file, slots }))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::io(&path, e)),
        };
        self.tops
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(top.to_path_buf(), index.clone());
        Ok(index)
    }

    /// The snapshot meta downloaded for restore dir `dir`.
    pub fn read(&self, dir: &Path) -> Result<TabletMeta> {
        if let Some((top, tablet)) = top_and_tablet(dir) {
            if let Some(index) = self.index(top)? {
                if let Some(slot) = index.slots.get(&tablet) {
                    let mut buf = vec![0u8; slot.len as usize];
                    index
                        .file
                        .read_exact_at(&mut buf, slot.offset)
                        .map_err(|e| Error::io(&index.path, e))?;
                    let actual = crc32fast::hash(&buf);
                    if actual != slot.crc {
                        return Err(Error::ChecksumMismatch {
                            what: format!(
                                "the tablet meta of restore dir {} in {}",
                                dir.display(),
                                index.path.display()
                            ),
                            expected: slot.crc,
                            actual,
                        });
                    }
                    return TabletMeta::decode(&index.path, &buf).map_err(|e| Error::MetaCorrupt {
                        dir: dir.to_path_buf(),
                        source: Box::new(e),
                    });
                }
            }
        }
        crate::restore::read_snapshot_meta(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_a_torn_tail_is_cut() -> Result<()> {
        let tmp = tempfile::tempdir().map_err(|e| Error::io(Path::new("tmp"), e))?;
        let top = tmp.path();
        let w = MetasWriter::open(top)?;
        w.append(7, b"seven")?;
        w.append(8, b"eight!")?;
        w.append(7, b"seven again")?;
        assert!(w.holds(7, 11, crc32fast::hash(b"seven again")));
        assert!(!w.holds(7, 5, crc32fast::hash(b"seven")));
        drop(w);
        let path = top.join(METAS_FILE_NAME);
        let full = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        // Every cut of the last record leaves the first two readable and is
        // cut off by the next writer.
        let last = full.len() - (HEADER + 11);
        for cut in last..full.len() {
            std::fs::write(&path, &full[..cut]).map_err(|e| Error::io(&path, e))?;
            let file = File::open(&path).map_err(|e| Error::io(&path, e))?;
            let (slots, end) = scan(&file, &path)?;
            assert_eq!(end as usize, last, "cut at {cut}");
            assert_eq!(slots.len(), 2);
            let w = MetasWriter::open(top)?;
            assert!(w.holds(7, 5, crc32fast::hash(b"seven")));
            w.append(9, b"nine")?;
            drop(w);
            let file = File::open(&path).map_err(|e| Error::io(&path, e))?;
            let (slots, _) = scan(&file, &path)?;
            assert_eq!(slots.len(), 3, "cut at {cut}");
        }
        // A flipped byte in a record ends the readable part there.
        let mut bad = full.clone();
        bad[HEADER + 2] ^= 1;
        std::fs::write(&path, &bad).map_err(|e| Error::io(&path, e))?;
        let file = File::open(&path).map_err(|e| Error::io(&path, e))?;
        assert_eq!(scan(&file, &path)?.0.len(), 0);
        Ok(())
    }
}
