//! A restore writes each segment file once, in place: the download puts it
//! under its final (reserved) name in the target tablet's dir, the restore
//! top dir holds only one file of the snapshot metas (no dir or file per
//! tablet besides the tablet's own), and the meta swap is the only commit
//! point. Reserved files survive a restart before the install, a rerun of
//! the download skips them, and a release without install deletes them
//! (leaving an overwritten tablet exactly as it was). Through the real node
//! task interface (`BackendNode`).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tabletsnap::backend::{
    BackendNode, BackendTasks, RepoRef, RestoreTarget, SnapshotTarget, TaskControl,
};
use tabletsnap_engine::{Engine, InstallOutcome, WorkloadSpec};

type R = Result<(), Box<dyn std::error::Error>>;

fn spec(tablets: u64, first: u64, seed: u64) -> WorkloadSpec {
    WorkloadSpec {
        tablets,
        versions: 4,
        rows_per_version: 30,
        segments_per_version: 2,
        first_tablet_id: first,
        seed,
    }
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files(&p));
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// `.dat` files in the store that no tablet meta names.
fn unreferenced(engine: &Engine) -> Vec<PathBuf> {
    let mut live = HashSet::new();
    for id in engine.tablet_ids() {
        if let Ok(m) = engine.tablet_meta(id) {
            for rs in m
                .rowsets
                .iter()
                .chain(m.stale_rowsets.iter().map(|s| &s.rowset))
            {
                live.extend((0..rs.segments.len()).map(|i| rs.segment_file_name(i)));
            }
        }
    }
    files(&engine.stores()[0].data_dir())
        .into_iter()
        .filter(|p| {
            p.extension().is_some_and(|e| e == "dat")
                && !p
                    .file_name()
                    .is_some_and(|n| live.contains(&n.to_string_lossy().into_owned()))
        })
        .collect()
}

struct Fixture {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    repo: RepoRef,
    manifest: tabletsnap_transfer::Manifest,
    sources: Vec<u64>,
    src: Arc<BackendNode>,
}

/// A source node with 3 tablets, backed up (one part) to a local repository.
fn fixture() -> Result<Fixture, Box<dyn std::error::Error>> {
    let tmp = tempfile::tempdir()?;
    let root = tmp.path().to_path_buf();
    let src = BackendNode::open(1, &root.join("src"), 2, 2)?;
    let sources = tabletsnap_engine::workload::populate(src.engine(), &spec(3, 500, 1))?;
    let loc = format!("file://{}", root.join("repo").display());
    std::fs::create_dir_all(root.join("repo"))?;
    tabletsnap::repo::create_repository("r", &loc)?;
    let repo = RepoRef {
        name: "r".into(),
        location: loc,
    };
    let targets: Vec<SnapshotTarget> = sources
        .iter()
        .map(|id| SnapshotTarget {
            tablet_id: *id,
            version: 4,
            carry_digest: None,
        })
        .collect();
    let snaps = src.make_snapshots(&targets, Duration::from_secs(600))?;
    let manifest = src.upload(
        &repo,
        "s",
        "2026-01-01-00-00-00",
        "be1",
        &snaps,
        &TaskControl::default(),
    )?;
    Ok(Fixture {
        _tmp: tmp,
        root,
        repo,
        manifest,
        sources,
        src,
    })
}

fn restore_targets(f: &Fixture, first: u64, overwrite: bool) -> Vec<RestoreTarget> {
    f.sources
        .iter()
        .enumerate()
        .map(|(i, s)| RestoreTarget {
            version: None,
            source_tablet_id: *s,
            tablet_id: first + i as u64,
            schema_hash: tabletsnap_engine::workload::default_schema().stable_hash(),
            table_id: 7,
            partition_id: 8,
            overwrite,
            dir: None,
            catch_up_from: None,
        })
        .collect()
}

#[test]
fn each_file_is_written_once_in_place_and_survives_a_restart_before_install() -> R {
    let f = fixture()?;
    let dst_dir = f.root.join("dst");
    let dst = BackendNode::open(2, &dst_dir, 2, 2)?;
    let mut targets = restore_targets(&f, 900, false);
    dst.prepare_restore(&mut targets)?;
    let n = dst.download(&f.repo, &f.manifest, &targets, &TaskControl::default())?;
    let segs: usize = f.manifest.tablets.iter().map(|e| e.files.len() - 1).sum();
    assert_eq!(n as usize, segs + targets.len());
    // No dir or file per tablet besides the tablet's own: the restore dirs
    // are names, and their top dir holds one file of the snapshot metas.
    let snapshot_root = dst_dir.join("store0").join("snapshot");
    let top_files: Vec<String> = files(&snapshot_root)
        .iter()
        .filter_map(|p| p.strip_prefix(&snapshot_root).ok())
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    assert_eq!(top_files.len(), 1, "{top_files:?}");
    assert!(top_files[0].ends_with("/tablet.metas"), "{top_files:?}");
    let metas = tabletsnap_snapshot::RestoreMetas::new();
    for (t, e) in targets.iter().zip(&f.manifest.tablets) {
        let dir = t.dir.as_ref().ok_or("no restore dir")?;
        assert!(!dir.exists(), "{} was created", dir.display());
        assert_eq!(e.tablet_id, t.source_tablet_id);
        let meta = metas.read(dir)?;
        assert_eq!((meta.tablet_id, meta.max_version()), (e.tablet_id, 4));
        let slot = tabletsnap_snapshot::restore_slot(dst.engine(), dir)?;
        let placed = files(&slot.dir);
        assert_eq!(placed.len(), segs / targets.len(), "{placed:?}");
        for p in &placed {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let id = tabletsnap_engine::reserve::segment_rowset_id(&name).ok_or("not a segment")?;
            assert!(slot.contains(id), "{name} is outside the reservation");
        }
    }
    // A restart before the install: recovery keeps the reserved files and
    // the meta-less new tablet dirs, and a rerun of the download skips them.
    drop(dst);
    let dst = BackendNode::open(2, &dst_dir, 2, 2)?;
    for t in &targets {
        assert!(
            dst.engine().tablet(t.tablet_id).is_err(),
            "tablet visible before install"
        );
    }
    let before = files(&dst.engine().stores()[0].data_dir());
    assert_eq!(before.len(), segs);
    dst.download(&f.repo, &f.manifest, &targets, &TaskControl::default())?;
    assert_eq!(files(&dst.engine().stores()[0].data_dir()), before);

    let out = dst.commit(&targets)?;
    assert!(
        out.iter()
            .all(|o| matches!(o, InstallOutcome::Installed { .. })),
        "{out:?}"
    );
    // The commit created no file: the metas only.
    let after: Vec<PathBuf> = files(&dst.engine().stores()[0].data_dir())
        .into_iter()
        .filter(|p| !p.ends_with("tablet.meta"))
        .collect();
    assert_eq!(after, before);
    assert_eq!(
        dst.commit(&targets)?,
        vec![InstallOutcome::AlreadyInstalled; targets.len()]
    );
    for (t, s) in targets.iter().zip(&f.sources) {
        assert_eq!(dst.checksum(t.tablet_id, 4)?, f.src.checksum(*s, 4)?);
    }
    let dirs: Vec<PathBuf> = targets.iter().filter_map(|t| t.dir.clone()).collect();
    dst.release(&dirs)?;
    assert!(dst.snapshot_dirs()?.is_empty());
    assert!(files(&dst_dir.join("store0").join("reserved")).is_empty());
    assert!(unreferenced(dst.engine()).is_empty());
    // Reopened, the restored tablets are intact.
    drop(dst);
    let dst = BackendNode::open(2, &dst_dir, 2, 2)?;
    for (t, s) in targets.iter().zip(&f.sources) {
        assert_eq!(dst.checksum(t.tablet_id, 4)?, f.src.checksum(*s, 4)?);
    }
    Ok(())
}

#[test]
fn a_release_without_install_deletes_the_placed_files_and_keeps_the_old_tablet() -> R {
    let f = fixture()?;
    let dst_dir = f.root.join("dst");
    let dst = BackendNode::open(2, &dst_dir, 2, 2)?;
    // The overwrite targets exist with other data.
    let old = tabletsnap_engine::workload::populate(dst.engine(), &spec(3, 900, 9))?;
    let sums: Vec<_> = old
        .iter()
        .map(|id| dst.checksum(*id, 4))
        .collect::<Result<_, _>>()?;
    let old_files = files(&dst.engine().stores()[0].data_dir());
    let mut targets = restore_targets(&f, 900, true);
    dst.prepare_restore(&mut targets)?;
    dst.download(&f.repo, &f.manifest, &targets, &TaskControl::default())?;
    assert!(files(&dst.engine().stores()[0].data_dir()).len() > old_files.len());
    // Readers see the old tablets throughout.
    for (id, sum) in old.iter().zip(&sums) {
        assert_eq!(&dst.checksum(*id, 4)?, sum);
    }
    // A crash now: the reserved files survive recovery...
    drop(dst);
    let dst = BackendNode::open(2, &dst_dir, 2, 2)?;
    assert!(files(&dst.engine().stores()[0].data_dir()).len() > old_files.len());
    // ...and the job is cancelled: releasing the dirs deletes them.
    let dirs: Vec<PathBuf> = targets.iter().filter_map(|t| t.dir.clone()).collect();
    dst.release(&dirs)?;
    assert_eq!(files(&dst.engine().stores()[0].data_dir()), old_files);
    assert!(files(&dst_dir.join("store0").join("reserved")).is_empty());
    for (id, sum) in old.iter().zip(&sums) {
        assert_eq!(&dst.checksum(*id, 4)?, sum);
    }
    // A later restore of the same targets overwrites them whole.
    let mut targets = restore_targets(&f, 900, true);
    dst.prepare_restore(&mut targets)?;
    dst.download(&f.repo, &f.manifest, &targets, &TaskControl::default())?;
    dst.commit(&targets)?;
    let dirs: Vec<PathBuf> = targets.iter().filter_map(|t| t.dir.clone()).collect();
    dst.release(&dirs)?;
    for (t, s) in targets.iter().zip(&f.sources) {
        assert_eq!(dst.checksum(t.tablet_id, 4)?, f.src.checksum(*s, 4)?);
    }
    dst.engine().gc()?;
    assert!(
        unreferenced(dst.engine()).is_empty(),
        "{:?}",
        unreferenced(dst.engine())
    );
    Ok(())
}

/// The node checks each downloaded meta against the version the backup
/// promised (the coordinator never reads a node's files): a meta at another
/// version fails the download with a sentence naming the tablet and both
/// versions, and nothing becomes visible.
#[test]
fn a_downloaded_meta_at_another_version_than_the_backup_says_is_refused() -> R {
    let f = fixture()?;
    let dst = BackendNode::open(2, &f.root.join("dst"), 2, 2)?;
    let mut targets = restore_targets(&f, 900, false);
    for t in &mut targets {
        t.version = Some(4);
    }
    targets[1].version = Some(5);
    dst.prepare_restore(&mut targets)?;
    let err = dst
        .download(&f.repo, &f.manifest, &targets, &TaskControl::default())
        .err()
        .ok_or("a meta at version 4 was accepted as version 5")?;
    let msg = format!("{err:#}");
    assert!(
        msg.contains(&format!(
            "downloaded tablet {} is at version 4, the backup says 5",
            targets[1].source_tablet_id
        )),
        "{msg}"
    );
    for t in &targets {
        assert!(dst.engine().tablet(t.tablet_id).is_err());
    }
    // With the right versions the same download passes.
    targets[1].version = Some(4);
    dst.download(&f.repo, &f.manifest, &targets, &TaskControl::default())?;
    Ok(())
}
