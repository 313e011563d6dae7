//! The backend's side of a catch-up restore's download: which files of a
//! backup a replica that already holds an earlier version of the same source
//! needs. The manifest lists files, not versions, so the node first fetches
//! each such tablet's meta from the backup (a small file), then only the
//! segment files of the rowsets above the version it holds.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use tabletsnap_engine::tablet_meta::META_FILE_NAME;
use tabletsnap_transfer::{DownloadOptions, Manifest, Progress, Repository};

/// `manifest` with the entries of catch-up targets cut down to the files
/// they lack (their metas are downloaded into `dirs` here, first). `bases`
/// maps each catch-up target's source tablet to the version it holds. Progress
/// of that first pass is reported through `opts`, and `opts` is changed so
/// that the caller's download continues the counts instead of restarting them.
pub(crate) fn narrow_to_new_versions<'m>(
    repo: &Repository,
    manifest: &'m Manifest,
    bases: &HashMap<u64, u64>,
    dirs: &HashMap<u64, PathBuf>,
    opts: &mut DownloadOptions,
) -> Result<Cow<'m, Manifest>> {
    // A plain restore downloads the manifest as given: no copy of it.
    if bases.is_empty() {
        return Ok(Cow::Borrowed(manifest));
    }
    let mut metas = manifest.subset(&bases.keys().copied().collect());
    for e in &mut metas.tablets {
        e.files.retain(|f| f.path == META_FILE_NAME);
    }
    let first = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
    let outer = opts.transfer.progress.clone();
    let mut pass = opts.clone();
    pass.transfer.progress = outer.clone().map(|cb| {
        let first = Arc::clone(&first);
        Arc::new(move |p: Progress| {
            first.0.fetch_max(p.files_done, Ordering::Relaxed);
            first.1.fetch_max(p.bytes_done, Ordering::Relaxed);
            cb(p)
        }) as tabletsnap_transfer::ProgressFn
    });
    tabletsnap_transfer::download_manifest(repo, metas, dirs, &pass)
        .context("downloading the tablet metas of a catch-up")?;
    opts.transfer.progress = outer.map(|cb| {
        Arc::new(move |p: Progress| {
            cb(Progress {
                files_done: p.files_done + first.0.load(Ordering::Relaxed),
                bytes_done: p.bytes_done + first.1.load(Ordering::Relaxed),
                ..p
            })
        }) as tabletsnap_transfer::ProgressFn
    });
    let mut out = manifest.clone();
    for e in &mut out.tablets {
        let (Some(base), Some(dir)) = (bases.get(&e.tablet_id), dirs.get(&e.tablet_id)) else {
            continue;
        };
        let meta = tabletsnap_snapshot::read_snapshot_meta(dir)?;
        let wanted: HashSet<String> = tabletsnap_snapshot::catch_up_files(&meta, *base)
            .with_context(|| {
                format!(
                    "tablet {} of the backup cannot catch up a replica at version {base}",
                    e.tablet_id
                )
            })?
            .into_iter()
            .collect();
        e.files.retain(|f| wanted.contains(&f.path));
    }
    Ok(Cow::Owned(out))
}
