//! Incremental install (catch-up restore): append to an existing tablet the
//! rowsets of a later snapshot of the same source that it lacks. One meta
//! swap per tablet, with the same commit point, barriers, fail points and
//! crash argument as a full install (`install.rs`): before the rename the
//! tablet is exactly as it was and the new links are orphans; after it the
//! tablet holds every appended version.

use std::collections::HashSet;
use std::path::PathBuf;

use rayon::prelude::*;

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::install::{placed_rowsets, same_content, verify_files, InstallOutcome, Staged, Verify};
use crate::tablet_meta::{StaleRowset, TabletMeta, META_FILE_NAME};

/// One tablet to catch up.
#[derive(Debug, Clone)]
pub struct IncrementalRequest {
    /// Directory holding (at least) the segment files of the rowsets above
    /// `base_version`, named by the source rowset ids.
    pub src_dir: PathBuf,
    /// The source tablet's meta at the newer version (source ids; versions are kept).
    pub source: TabletMeta,
    /// The existing tablet to append to.
    pub tablet_id: u64,
    /// The version the tablet holds of the same source: every rowset of
    /// `source` above it is appended.
    pub base_version: u64,
    /// In place: the appended rowsets' files are already in the tablet's
    /// dir (`src_dir` is that dir) under ids reserved from this base.
    pub placed: Option<crate::rowset::RowsetId>,
}

fn refused(tablet_id: u64, detail: String) -> Error {
    Error::CatchUpRefused { tablet_id, detail }
}

/// What `r` appends, after checking the source can extend a tablet at `base_version`.
fn appended(r: &IncrementalRequest) -> Result<&[crate::rowset::RowsetMeta]> {
    r.source
        .validate()
        .map_err(|e| Error::corrupt(r.src_dir.join(META_FILE_NAME), e))?;
    r.source.rowsets_after(r.base_version).map_err(|e| {
        refused(
            r.tablet_id,
            format!("the snapshot cannot extend version {}: {e}", r.base_version),
        )
    })
}

impl Engine {
    /// Appends to existing tablets the rowsets of newer snapshots of their
    /// source, verified and atomic per tablet, with one durability barrier
    /// pair for the batch.
    ///
    /// Per tablet: the snapshot must have a rowset ending exactly at
    /// `base_version`, the tablet must have the same schema and hold as many
    /// rows up to `base_version` as the snapshot does. Rowsets the tablet
    /// holds above `base_version` are leftovers of loads the coordinator
    /// never made visible and are replaced, as a load at that version would
    /// replace them (see `begin_load_at`). Re-running after a crash reports
    /// `AlreadyInstalled` for a tablet that already holds exactly the
    /// appended versions.
    pub fn install_incremental(
        &self,
        reqs: &[IncrementalRequest],
        verify: Verify,
    ) -> Result<Vec<InstallOutcome>> {
        let mut seen = HashSet::new();
        for r in reqs {
            if !seen.insert(r.tablet_id) {
                return Err(Error::InvalidArgument(format!(
                    "tablet {} is listed twice",
                    r.tablet_id
                )));
            }
        }
        let counts: Vec<usize> = reqs
            .par_iter()
            .map(|r| match r.placed {
                Some(base) => {
                    let placed = placed_rowsets(r.tablet_id, base, appended(r)?)?;
                    verify_files(&r.src_dir, &placed, r.tablet_id, verify)
                }
                None => verify_files(&r.src_dir, appended(r)?, r.tablet_id, verify),
            })
            .collect::<Result<_>>()?;
        let mut order: Vec<usize> = (0..reqs.len()).collect();
        order.sort_by_key(|i| reqs[*i].tablet_id);
        let mut outcomes = vec![InstallOutcome::AlreadyInstalled; reqs.len()];
        let mut staged = Vec::new();
        for i in order {
            let r = &reqs[i];
            let new = appended(r)?;
            let tablet = self.tablet(r.tablet_id)?;
            let permit = tablet.lock_writer();
            let cur = tablet.meta();
            if cur.schema != r.source.schema {
                return Err(Error::SchemaMismatch {
                    tablet_id: r.tablet_id,
                    detail: "column list differs from the snapshot's".into(),
                });
            }
            let have = cur.rowsets_for(r.base_version).map_err(|e| {
                refused(
                    r.tablet_id,
                    format!(
                        "the tablet cannot be extended at version {}: {e}",
                        r.base_version
                    ),
                )
            })?;
            let rows = |rs: &[crate::rowset::RowsetMeta]| {
                rs.iter().fold(0u64, |a, x| a.saturating_add(x.num_rows))
            };
            let src_rows = rows(r.source.rowsets_for(r.base_version)?);
            if rows(have) != src_rows {
                return Err(refused(
                    r.tablet_id,
                    format!(
                        "it holds {} rows at version {}, the snapshot {src_rows}: not the same source data",
                        rows(have),
                        r.base_version
                    ),
                ));
            }
            let kept = have.len();
            let above = &cur.rowsets[kept..];
            if same_content(above, new) {
                continue;
            }
            let mut meta = cur.clone();
            meta.rowsets.truncate(kept);
            // stale_since 0: due for GC as soon as the new meta is durable.
            meta.stale_rowsets
                .extend(above.iter().cloned().map(|rowset| StaleRowset {
                    rowset,
                    stale_since_ms: 0,
                }));
            let dir = tablet.dir().to_path_buf();
            if r.placed.is_some() && r.src_dir != dir {
                return Err(Error::InvalidArgument(format!(
                    "tablet {}: files placed in {}, but the tablet lives in {}",
                    r.tablet_id,
                    r.src_dir.display(),
                    dir.display()
                )));
            }
            let links =
                self.renamed_rowsets(r.tablet_id, new, &r.src_dir, &dir, r.placed, &mut meta)?;
            outcomes[i] = InstallOutcome::Installed { files: counts[i] };
            staged.push(Staged {
                store: tablet.store,
                dir,
                meta,
                existing: Some(permit),
                links,
                linked: Vec::new(),
                placed: r.placed.is_some(),
            });
        }
        if !staged.is_empty() {
            self.finish_install(staged)?;
        }
        Ok(outcomes)
    }
}
