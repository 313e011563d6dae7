//! A snapshot installed under a new tablet id on a second engine holds the
//! same rows as the source at that version, for every version.

mod common;

use std::time::Duration;

use common::*;
use tabletsnap_snapshot::{make_snapshots, name::DirName, SnapshotRequest};

#[test]
fn every_version_restores_checksum_equal() -> TestResult {
    let (_a_dir, a, ids) = populated(3)?;
    let b_dir = tempfile::tempdir()?;
    let b = open(b_dir.path())?;
    let max = a.tablet_meta(ids[0])?.max_version();
    let mut target = 50_000;
    for v in 1..=max {
        let reqs: Vec<SnapshotRequest> = ids
            .iter()
            .map(|id| SnapshotRequest {
                tablet_id: *id,
                version: Some(v),
            })
            .collect();
        let infos = make_snapshots(&a, &reqs, Duration::from_secs(600))?;
        assert_eq!(infos.len(), ids.len());
        for (id, info) in ids.iter().zip(infos) {
            let info = info?;
            assert_eq!(info.tablet_id, *id);
            assert_eq!(info.version, v);
            target += 1;
            let got = restore(&b, &info, target)?;
            assert_eq!(got, a.checksum(*id, Some(v))?, "tablet {id} version {v}");
            let meta = b.tablet_meta(target)?;
            assert_eq!((meta.table_id, meta.partition_id), (77, 88));
            assert_eq!(meta.max_version(), v);
        }
    }
    Ok(())
}

#[test]
fn snapshot_dir_layout_and_file_list_match_the_meta() -> TestResult {
    let (_dir, a, ids) = populated(2)?;
    let infos = make_snapshots(
        &a,
        &[SnapshotRequest {
            tablet_id: ids[1],
            version: None,
        }],
        Duration::from_secs(90),
    )?;
    let info = infos.into_iter().next().ok_or("no outcome")??;
    let root = a.stores()[0].snapshot_dir();
    let rel = info.path.strip_prefix(&root)?;
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    assert_eq!(parts.len(), 3, "{rel:?}");
    let top = DirName::parse(&parts[0]).ok_or("top dir name does not parse")?;
    assert_eq!(top.timeout_s, 90);
    assert_eq!(parts[1], ids[1].to_string());
    assert_eq!(parts[2], info.schema_hash.to_string());
    // Exactly the listed files plus the meta, each the size and crc the list says.
    let mut on_disk: Vec<String> = std::fs::read_dir(&info.path)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    on_disk.sort();
    let mut listed: Vec<String> = info.files.iter().map(|f| f.name.clone()).collect();
    listed.push(info.meta_file.to_string());
    listed.sort();
    assert_eq!(on_disk, listed);
    for f in &info.files {
        let bytes = std::fs::read(info.path.join(&f.name))?;
        assert_eq!(bytes.len() as u64, f.size);
        assert_eq!(crc32fast::hash(&bytes), f.crc32);
    }
    let meta = tabletsnap_snapshot::read_snapshot_meta(&info.path)?;
    assert_eq!(meta, info.meta);
    assert!(meta.stale_rowsets.is_empty());
    Ok(())
}

#[test]
fn concurrent_calls_get_distinct_dirs() -> TestResult {
    let (_dir, a, ids) = populated(4)?;
    let paths = std::thread::scope(|s| {
        let hs: Vec<_> = ids
            .iter()
            .map(|id| {
                let a = &a;
                s.spawn(move || {
                    make_snapshots(
                        a,
                        &[SnapshotRequest {
                            tablet_id: *id,
                            version: None,
                        }],
                        Duration::from_secs(60),
                    )
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().map_err(|_| "thread panicked"))
            .collect::<Result<Vec<_>, _>>()
    })?;
    let mut tops = Vec::new();
    for p in paths {
        let info = p?.into_iter().next().ok_or("no outcome")??;
        tops.push(
            info.path
                .parent()
                .and_then(|p| p.parent())
                .map(|p| p.to_path_buf()),
        );
    }
    tops.sort();
    tops.dedup();
    assert_eq!(tops.len(), ids.len());
    Ok(())
}

#[test]
fn duplicate_tablets_and_zero_timeout_are_refused() -> TestResult {
    let (_dir, a, ids) = populated(1)?;
    let r = SnapshotRequest {
        tablet_id: ids[0],
        version: None,
    };
    assert!(make_snapshots(&a, &[r, r], Duration::from_secs(5)).is_err());
    assert!(make_snapshots(&a, &[r], Duration::from_millis(500)).is_err());
    assert!(snapshot_root_entries(&a).is_empty());
    Ok(())
}
