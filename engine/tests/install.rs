//! Install registers a tablet from a directory of segment files and a source
//! meta under new ids, verified and atomic, and is idempotent.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use tabletsnap_engine::tablet_meta::META_FILE_NAME;
use tabletsnap_engine::{
    Engine, Error, InstallOutcome, InstallRequest, Result, TabletMeta, Verify,
};

/// Copies a capture into `dst` the way a download would (new inodes).
fn export(e: &Engine, tablet: u64, version: u64, dst: &Path) -> Result<TabletMeta> {
    let cap = e.capture(tablet, Some(version))?;
    std::fs::create_dir_all(dst).expect("mkdir");
    for (name, _, _) in cap.files() {
        std::fs::copy(cap.dir.join(&name), dst.join(&name)).expect("copy");
    }
    std::fs::write(dst.join(META_FILE_NAME), cap.meta.encode()).expect("meta");
    Ok(cap.meta.clone())
}

fn req(src: PathBuf, source: TabletMeta, tablet_id: u64, overwrite: bool) -> InstallRequest {
    InstallRequest {
        src_dir: src,
        schema_hash: source.schema_hash,
        source,
        table_id: 70,
        partition_id: 80,
        tablet_id,
        overwrite,
        placed: None,
    }
}

#[test]
fn install_under_new_id_on_second_engine_matches_every_version() -> Result<()> {
    let dir = tmp();
    let src = open(&stores(&dir.path().join("a"), 1))?;
    let dst_stores = stores(&dir.path().join("b"), 1);
    let dst = open(&dst_stores)?;
    create(&src, 1)?;
    for v in 0..5 {
        src.load(1, &rows(v, 30))?;
    }
    for (i, version) in [1u64, 3, 6].into_iter().enumerate() {
        let x = dst_stores[0].join(format!("snapshot/in{i}"));
        let meta = export(&src, 1, version, &x)?;
        let id = 500 + i as u64;
        let out = dst.install_tablets(&[req(x.clone(), meta.clone(), id, false)], Verify::Full)?;
        assert!(matches!(out[0], InstallOutcome::Installed { .. }));
        assert_eq!(
            dst.checksum(id, Some(version))?,
            src.checksum(1, Some(version))?
        );
        let m = dst.tablet_meta(id)?;
        assert_eq!((m.tablet_id, m.partition_id, m.table_id), (id, 80, 70));
        assert_eq!(m.max_version(), version);
        // Rowset ids are new ones of the target engine.
        for (a, b) in m.rowsets.iter().zip(&meta.rowsets) {
            assert_ne!(a.rowset_id, b.rowset_id);
        }
        // Idempotent: again is a no-op.
        let again = dst.install_tablets(&[req(x, meta, id, false)], Verify::Full)?;
        assert_eq!(again[0], InstallOutcome::AlreadyInstalled);
    }
    drop(dst);
    let dst = open(&dst_stores)?;
    assert_eq!(dst.checksum(502, Some(6))?, src.checksum(1, Some(6))?);
    Ok(())
}

#[test]
fn overwrite_replaces_data_and_frees_old_rowsets() -> Result<()> {
    let dir = tmp();
    let st = stores(dir.path(), 1);
    let e = open(&st)?;
    create(&e, 1)?;
    create(&e, 2)?;
    e.load(1, &rows(1, 30))?;
    e.load(2, &rows(2, 10))?;
    e.load(2, &rows(3, 10))?;
    let old_files: Vec<PathBuf> = {
        let t = e.tablet(1)?;
        e.tablet_meta(1)?
            .rowsets
            .iter()
            .flat_map(|r| r.files().map(|(n, _)| t.dir().join(n)).collect::<Vec<_>>())
            .collect()
    };
    let x = st[0].join("snapshot/x");
    let meta = export(&e, 2, 3, &x)?;
    // Without overwrite: refused, nothing changes.
    let before = e.checksum(1, None)?;
    assert!(matches!(
        e.install_tablets(&[req(x.clone(), meta.clone(), 1, false)], Verify::Full),
        Err(Error::TabletExists(1))
    ));
    assert_eq!(e.checksum(1, None)?, before);
    e.install_tablets(&[req(x, meta, 1, true)], Verify::Full)?;
    assert_eq!(e.checksum(1, None)?, e.checksum(2, None)?);
    assert!(e.tablet_meta(1)?.stale_rowsets.is_empty());
    for f in old_files {
        assert!(!f.exists(), "{} survived overwrite", f.display());
    }
    Ok(())
}

#[test]
fn overwrite_with_a_different_schema_is_refused() -> Result<()> {
    let dir = tmp();
    let st = stores(dir.path(), 1);
    let e = open(&st)?;
    create(&e, 1)?;
    e.load(1, &rows(1, 10))?;
    let x = st[0].join("snapshot/x");
    let mut meta = export(&e, 1, 2, &x)?;
    let mut columns = meta.schema.columns.to_vec();
    columns.pop();
    meta.schema = tabletsnap_engine::Schema::new(columns);
    let before = e.checksum(1, None)?;
    let err = e
        .install_tablets(&[req(x, meta, 1, true)], Verify::Full)
        .expect_err("accepted");
    assert!(
        matches!(err, Error::SchemaMismatch { tablet_id: 1, .. }),
        "{err}"
    );
    assert_eq!(e.checksum(1, None)?, before);
    Ok(())
}

#[test]
fn a_damaged_source_file_is_refused_before_anything_is_visible() -> Result<()> {
    let dir = tmp();
    let st = stores(dir.path(), 1);
    let e = open(&st)?;
    create(&e, 1)?;
    e.load(1, &rows(1, 10))?;
    e.load(1, &rows(2, 10))?;
    let x = st[0].join("snapshot/x");
    let meta = export(&e, 1, 3, &x)?;
    let victim = x.join(meta.rowsets[2].segment_file_name(0));
    let mut b = std::fs::read(&victim).expect("read");
    b[0] ^= 4;
    std::fs::write(&victim, &b).expect("write");
    let err = e
        .install_tablets(&[req(x.clone(), meta.clone(), 9, false)], Verify::Full)
        .expect_err("accepted");
    assert!(matches!(err, Error::ChecksumMismatch { .. }), "{err}");
    assert!(err.to_string().contains(&victim.display().to_string()));
    assert!(matches!(e.tablet(9), Err(Error::TabletNotFound(9))));
    // A truncated file is caught even by the size-only check.
    std::fs::write(&victim, &b[..5]).expect("write");
    assert!(e
        .install_tablets(&[req(x, meta, 9, false)], Verify::SizeOnly)
        .is_err());
    assert!(matches!(e.tablet(9), Err(Error::TabletNotFound(9))));
    assert!(
        !st[0].join("data/9").join("9").exists() || files_under(&st[0].join("data/9/9")).is_empty()
    );
    Ok(())
}
