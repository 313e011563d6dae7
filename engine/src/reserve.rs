//! Rowset ids reserved for an in-place restore. A restore downloads each
//! segment file once, straight into the target tablet's dir under the name
//! of a rowset id reserved here, and the install only swaps the meta. Until
//! then nothing names those files; the reservation is what keeps recovery
//! from deleting them as orphans (and a meta-less new tablet dir as
//! uncommitted) while the restore runs, and what tells release which files
//! to delete when the restore ends without installing them.
//!
//! On disk: `<store>/reserved/<name>`, one file per restore batch per store
//! (never one per tablet): `"TSRV" | u32 version | u32 count | count ×
//! (u64 tablet_id | u32 schema_hash | u128 base) | crc32`, little-endian.
//! Written unsynced; the caller's barrier makes it durable before it reports
//! the reservation. A file that does not decode was never reported (it was
//! torn by a crash before that barrier) and is removed at open.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::engine::Engine;
use crate::error::{Error, IoContext, Result};
use crate::file;
use crate::rowset::{RowsetId, RowsetMeta};
use crate::tablet_meta::META_FILE_NAME;

/// Rowset ids reserved per tablet: a source tablet with more rowsets is
/// refused (`ReservationTooSmall`).
pub const RESERVED_SPAN: u64 = 1 << 20;
/// The dir under each store root holding reservation files.
pub const RESERVED_DIR: &str = "reserved";

const MAGIC: &[u8; 4] = b"TSRV";
const VERSION: u32 = 1;
const ENTRY_LEN: usize = 8 + 4 + 16;

/// The reservations held, by name, each indexed by target tablet id: a
/// lookup per tablet (download, release, recovery's check per file) costs
/// the same at 100k tablets as at 10.
pub(crate) type Reservations = HashMap<String, HashMap<u64, RestoreSlot>>;

/// Where one restored tablet's files go and the rowset ids they take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreSlot {
    /// Target tablet id.
    pub tablet_id: u64,
    /// Target schema hash.
    pub schema_hash: u32,
    /// Store index.
    pub store: usize,
    /// The target tablet's dir: the segment files are written here.
    pub dir: PathBuf,
    /// First reserved rowset id; the slot owns [`RESERVED_SPAN`] ids from it.
    pub base: RowsetId,
}

impl RestoreSlot {
    /// Whether `id` is one of this slot's ids.
    pub fn contains(&self, id: RowsetId) -> bool {
        id.0.checked_sub(self.base.0)
            .is_some_and(|d| d < u128::from(RESERVED_SPAN))
    }
}

/// The new id of each source rowset of an in-place restore: the ids of the
/// rowsets that have files, sorted ascending, take `base`, `base + 1`, ...;
/// rowsets without segment files (an empty version) follow, also sorted.
/// So the download (which knows file names) and the install (which knows the
/// meta) agree on every file's name as long as they see the same set of
/// files, which the download checks.
#[derive(Debug, Clone)]
pub struct PlacedIds {
    base: RowsetId,
    sorted: Vec<RowsetId>,
    fileless: Vec<RowsetId>,
}

impl PlacedIds {
    /// The mapping for the source rowsets `ids` (duplicates ignored).
    pub fn new(
        tablet_id: u64,
        base: RowsetId,
        ids: impl IntoIterator<Item = RowsetId>,
    ) -> Result<Self> {
        let mut sorted: Vec<RowsetId> = ids.into_iter().collect();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() as u64 > RESERVED_SPAN {
            return Err(Error::InvalidArgument(format!(
                "tablet {tablet_id}: the snapshot has {} rowsets, more than a restore reserves ({RESERVED_SPAN}); compact the source before the backup",
                sorted.len()
            )));
        }
        Ok(PlacedIds {
            base,
            sorted,
            fileless: Vec::new(),
        })
    }

    /// The mapping for the rowsets of a meta (those without files last).
    pub fn for_rowsets(tablet_id: u64, base: RowsetId, rowsets: &[RowsetMeta]) -> Result<Self> {
        let with_files = rowsets.iter().filter(|r| !r.segments.is_empty());
        let mut p = Self::new(tablet_id, base, with_files.map(|r| r.rowset_id))?;
        let mut fileless: Vec<RowsetId> = rowsets
            .iter()
            .filter(|r| r.segments.is_empty())
            .map(|r| r.rowset_id)
            .collect();
        fileless.sort_unstable();
        fileless.dedup();
        if (p.sorted.len() + fileless.len()) as u64 > RESERVED_SPAN {
            return Err(Error::InvalidArgument(format!(
                "tablet {tablet_id}: the snapshot has {} rowsets, more than a restore reserves ({RESERVED_SPAN}); compact the source before the backup",
                p.sorted.len() + fileless.len()
            )));
        }
        p.fileless = fileless;
        Ok(p)
    }

    /// The mapping for the segment files named `names` (`<rowset id>_<i>.dat`;
    /// other names are ignored).
    pub fn from_file_names<'a>(
        tablet_id: u64,
        base: RowsetId,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self> {
        Self::new(
            tablet_id,
            base,
            names.into_iter().filter_map(segment_rowset_id),
        )
    }

    /// The new id of source rowset `src`.
    pub fn get(&self, src: RowsetId) -> Option<RowsetId> {
        let rank = match self.sorted.binary_search(&src) {
            Ok(r) => r,
            Err(_) => self.sorted.len() + self.fileless.binary_search(&src).ok()?,
        };
        Some(RowsetId(self.base.0 + rank as u128))
    }

    /// The new name of source segment file `name`, if it is one of the mapped rowsets'.
    pub fn file_name(&self, name: &str) -> Option<String> {
        let (id, seg) = name.strip_suffix(".dat")?.split_once('_')?;
        let new = self.get(RowsetId::parse(id)?)?;
        Some(format!("{new}_{seg}.dat"))
    }

    /// `rowsets` under their new ids (everything else kept).
    pub fn rename(&self, tablet_id: u64, rowsets: &[RowsetMeta]) -> Result<Vec<RowsetMeta>> {
        rowsets
            .iter()
            .map(|rs| {
                let mut n = rs.clone();
                n.rowset_id = self.get(rs.rowset_id).ok_or_else(|| {
                    Error::InvalidArgument(format!(
                        "tablet {tablet_id}: rowset {} was not among the downloaded files",
                        rs.rowset_id
                    ))
                })?;
                Ok(n)
            })
            .collect()
    }
}

/// The rowset id of a segment file name `<32 hex>_<i>.dat`.
pub fn segment_rowset_id(name: &str) -> Option<RowsetId> {
    let (id, seg) = name.strip_suffix(".dat")?.split_once('_')?;
    seg.parse::<u32>().ok()?;
    RowsetId::parse(id)
}

fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.starts_with('.') || name.contains(['/', '\0']) {
        return Err(Error::InvalidArgument(format!(
            "'{name}' is not a valid reservation name"
        )));
    }
    Ok(())
}

fn encode(slots: &[&RestoreSlot]) -> Vec<u8> {
    let mut b = Vec::with_capacity(16 + slots.len() * ENTRY_LEN);
    b.extend_from_slice(MAGIC);
    b.extend_from_slice(&VERSION.to_le_bytes());
    b.extend_from_slice(&(slots.len() as u32).to_le_bytes());
    for s in slots {
        b.extend_from_slice(&s.tablet_id.to_le_bytes());
        b.extend_from_slice(&s.schema_hash.to_le_bytes());
        b.extend_from_slice(&s.base.0.to_le_bytes());
    }
    let crc = crc32fast::hash(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    b
}

fn decode(buf: &[u8]) -> Option<Vec<(u64, u32, RowsetId)>> {
    let body_len = buf.len().checked_sub(4)?;
    let (body, crc) = buf.split_at(body_len);
    if crc32fast::hash(body).to_le_bytes() != crc || body.len() < 12 || &body[..4] != MAGIC {
        return None;
    }
    let u32_at = |i: usize| body.get(i..i + 4)?.try_into().ok().map(u32::from_le_bytes);
    if u32_at(4)? != VERSION {
        return None;
    }
    let n = u32_at(8)? as usize;
    if body.len() != 12 + n.checked_mul(ENTRY_LEN)? {
        return None;
    }
    body[12..]
        .chunks_exact(ENTRY_LEN)
        .map(|e| {
            Some((
                u64::from_le_bytes(e[..8].try_into().ok()?),
                u32::from_le_bytes(e[8..12].try_into().ok()?),
                RowsetId(u128::from_le_bytes(e[12..28].try_into().ok()?)),
            ))
        })
        .collect()
}

/// Every reservation on disk, by name; removes files that never became
/// durable whole (see the module doc). Runs before recovery.
pub(crate) fn load_all(stores: &[crate::engine::Store]) -> Result<Reservations> {
    let mut out: Reservations = HashMap::new();
    for (si, s) in stores.iter().enumerate() {
        let dir = s.root.join(RESERVED_DIR);
        for e in fs::read_dir(&dir).at(&dir)? {
            let e = e.at(&dir)?;
            let path = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(entries) = fs::read(&path).ok().and_then(|b| decode(&b)) else {
                file::remove_file_if_exists(&path)?;
                continue;
            };
            let list = out.entry(name).or_default();
            list.extend(entries.into_iter().map(|(tablet_id, schema_hash, base)| {
                (
                    tablet_id,
                    RestoreSlot {
                        tablet_id,
                        schema_hash,
                        store: si,
                        dir: s.tablet_dir(tablet_id, schema_hash),
                        base,
                    },
                )
            }));
        }
    }
    Ok(out)
}

impl Engine {
    /// Reserves rowset ids for restoring the tablets `targets` (tablet id,
    /// schema hash, store for a tablet that does not exist yet) in place,
    /// creates their tablet dirs, and records the reservation under `name`
    /// (one file per store used). Not durable on return: the caller runs one
    /// barrier ([`Engine::sync_stores`]) for the batch before reporting it.
    pub fn reserve_restore(
        &self,
        name: &str,
        targets: &[(u64, u32, usize)],
    ) -> Result<Vec<RestoreSlot>> {
        check_name(name)?;
        if self.reservations.lock().contains_key(name) {
            return Err(Error::InvalidArgument(format!(
                "reservation '{name}' exists already"
            )));
        }
        // One reservation of ids for the whole batch: one write of the
        // high-water mark (each span is as large as the allocator's block,
        // so a reservation per tablet was a durable write per tablet).
        let n = u64::try_from(targets.len()).unwrap_or(u64::MAX);
        let first = self
            .ids
            .reserve(n.checked_mul(RESERVED_SPAN).ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "{n} tablets are too many to reserve rowset ids for"
                ))
            })?)?;
        let mut slots = Vec::with_capacity(targets.len());
        for (i, &(tablet_id, schema_hash, store)) in targets.iter().enumerate() {
            let (store, dir) = match self.tablet(tablet_id) {
                Ok(t) => (t.store, t.dir().to_path_buf()),
                Err(_) => {
                    let store = store.min(self.stores.len() - 1);
                    let dir = self.stores[store].tablet_dir(tablet_id, schema_hash);
                    file::create_dir_and_parent(&dir)?;
                    (store, dir)
                }
            };
            slots.push(RestoreSlot {
                tablet_id,
                schema_hash,
                store,
                dir,
                // In range: `first` starts n spans that did not overflow.
                base: RowsetId(first.0 + (i as u128) * u128::from(RESERVED_SPAN)),
            });
        }
        for (si, s) in self.stores.iter().enumerate() {
            let mine: Vec<&RestoreSlot> = slots.iter().filter(|x| x.store == si).collect();
            if !mine.is_empty() {
                file::write_new(&s.root.join(RESERVED_DIR).join(name), &encode(&mine), false)?;
            }
        }
        let by_tablet = slots.iter().map(|s| (s.tablet_id, s.clone())).collect();
        self.reservations.lock().insert(name.to_string(), by_tablet);
        Ok(slots)
    }

    /// The slot reservation `name` holds for `tablet_id`.
    pub fn restore_slot(&self, name: &str, tablet_id: u64) -> Option<RestoreSlot> {
        self.reservations.lock().get(name)?.get(&tablet_id).cloned()
    }

    /// How many tablets reservation `name` still holds ids for (0 when it
    /// is not held).
    pub fn reserved_tablets(&self, name: &str) -> usize {
        self.reservations.lock().get(name).map_or(0, HashMap::len)
    }

    /// Names of the reservations held.
    pub fn reservation_names(&self) -> Vec<String> {
        self.reservations.lock().keys().cloned().collect()
    }

    /// One `syncfs` per store in `stores`: the batch barrier.
    pub fn sync_stores(&self, stores: &[usize]) -> Result<()> {
        self.barrier(stores)
    }

    /// Whether recovery must keep `file_name` in `tablet_id`'s dir (or the dir
    /// itself, with `None`): a restore reserved it.
    pub(crate) fn reserved_for(
        all: &Reservations,
        tablet_id: u64,
        file_name: Option<&str>,
    ) -> bool {
        all.values().filter_map(|r| r.get(&tablet_id)).any(|s| {
            file_name.is_none_or(|n| segment_rowset_id(n).is_some_and(|id| s.contains(id)))
        })
    }

    /// Ends reservation `name` for `tablet_id` (or for all its tablets):
    /// deletes the files written under its ids that no meta names (an install
    /// that committed keeps them all), and a new tablet's dir that never got
    /// a meta. With `None` the reservation files go too. Idempotent;
    /// unsynced (recovery redoes a lost delete: an unreserved file no meta
    /// names is an orphan).
    pub fn release_restore(&self, name: &str, tablet_id: Option<u64>) -> Result<()> {
        let slots: Vec<RestoreSlot> = match (self.reservations.lock().get(name), tablet_id) {
            (Some(r), Some(t)) => r.get(&t).cloned().into_iter().collect(),
            (Some(r), None) => r.values().cloned().collect(),
            (None, _) => Vec::new(),
        };
        for s in &slots {
            self.clean_slot(s)?;
        }
        if let Some(t) = tablet_id {
            // Done with; the file keeps it until the whole reservation ends,
            // and a release after a restart cleans it again (idempotent).
            if let Some(r) = self.reservations.lock().get_mut(name) {
                r.remove(&t);
            }
        } else {
            for st in &self.stores {
                file::remove_file_if_exists(&st.root.join(RESERVED_DIR).join(name))?;
            }
            self.reservations.lock().remove(name);
            fail::fail_point!("engine::reserve::after_release", |_| Err(Error::FailPoint(
                "engine::reserve::after_release".into()
            )));
        }
        Ok(())
    }

    fn clean_slot(&self, s: &RestoreSlot) -> Result<()> {
        let tablet = self.tablet(s.tablet_id).ok();
        let _permit = tablet.as_ref().map(|t| t.lock_writer());
        if let Some(t) = &tablet {
            let meta = t.meta();
            let named = meta
                .rowsets
                .iter()
                .chain(meta.stale_rowsets.iter().map(|x| &x.rowset))
                .any(|r| s.contains(r.rowset_id));
            // An install is all or nothing: a meta naming one of the ids
            // names every file written under them.
            if named || t.dir() != s.dir {
                return Ok(());
            }
        } else if s.dir.join(META_FILE_NAME).exists() {
            // A meta on disk the engine has not loaded (corrupt): leave it.
            return Ok(());
        } else {
            file::remove_dir_all_if_exists(&s.dir)?;
            remove_if_empty(crate::file::parent_of(&s.dir));
            return Ok(());
        }
        let entries = match fs::read_dir(&s.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io(&s.dir, e)),
        };
        for e in entries {
            let e = e.at(&s.dir)?;
            let name = e.file_name();
            let ours = name
                .to_str()
                .and_then(segment_rowset_id)
                .is_some_and(|id| s.contains(id));
            if ours {
                file::remove_file_if_exists(&e.path())?;
            }
        }
        Ok(())
    }
}

fn remove_if_empty(dir: &Path) {
    let _ = fs::remove_dir(dir);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reservation_file_round_trips_and_any_flipped_byte_is_refused() {
        let slot = RestoreSlot {
            tablet_id: 7,
            schema_hash: 9,
            store: 0,
            dir: PathBuf::from("x"),
            base: RowsetId(5 << 64 | 3),
        };
        let buf = encode(&[&slot, &slot]);
        assert_eq!(decode(&buf), Some(vec![(7, 9, slot.base); 2]));
        for i in 0..buf.len() {
            let mut b = buf.clone();
            b[i] ^= 0x10;
            assert_eq!(decode(&b), None, "byte {i}");
        }
        assert_eq!(decode(&buf[..buf.len() - 1]), None);
    }

    #[test]
    fn placed_ids_rank_source_ids_and_map_file_names() -> Result<()> {
        let base = RowsetId(1 << 64);
        let a = RowsetId(30);
        let b = RowsetId(10);
        let names = [
            format!("{a}_0.dat"),
            format!("{b}_1.dat"),
            format!("{a}_1.dat"),
            "tablet.meta".into(),
        ];
        let p = PlacedIds::from_file_names(1, base, names.iter().map(String::as_str))?;
        assert_eq!(p.get(b), Some(base));
        assert_eq!(p.get(a), Some(RowsetId(base.0 + 1)));
        assert_eq!(p.get(RowsetId(20)), None);
        assert_eq!(
            p.file_name(&format!("{a}_1.dat")),
            Some(format!("{}_1.dat", RowsetId(base.0 + 1)))
        );
        assert_eq!(p.file_name("tablet.meta"), None);
        Ok(())
    }
}
