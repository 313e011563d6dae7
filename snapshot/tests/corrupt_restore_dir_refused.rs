//! A damaged download (flipped byte, truncated file, missing or corrupt meta)
//! is refused by load_snapshot and nothing becomes visible, now or after a
//! reopen.

mod common;

use std::time::Duration;

use common::*;
use tabletsnap_snapshot::{load_snapshot, make_snapshots, Error, SnapshotRequest};

#[test]
fn damaged_downloads_are_refused_and_invisible() -> TestResult {
    let (_a_dir, a, ids) = populated(1)?;
    let info = make_snapshots(
        &a,
        &[SnapshotRequest {
            tablet_id: ids[0],
            version: None,
        }],
        Duration::from_secs(60),
    )?
    .remove(0)?;
    let b_dir = tempfile::tempdir()?;
    let b = open(b_dir.path())?;
    let target = 7_000;
    let req = load_req(target, info.schema_hash, false);
    let file = &info.files[info.files.len() / 2].name;

    let flipped = download(&b, &info, target)?;
    let mut bytes = std::fs::read(flipped.join(file))?;
    let at = bytes.len() / 3;
    bytes[at] ^= 0x20;
    std::fs::write(flipped.join(file), &bytes)?;
    let e = load_snapshot(&b, &flipped, &req)
        .err()
        .ok_or("flipped byte accepted")?;
    assert!(matches!(e, Error::ChecksumMismatch { .. }), "{e}");
    assert!(e.to_string().contains(file.as_str()), "{e}");

    let truncated = download(&b, &info, target)?;
    let bytes = std::fs::read(truncated.join(file))?;
    std::fs::write(truncated.join(file), &bytes[..bytes.len() - 1])?;
    let e = load_snapshot(&b, &truncated, &req)
        .err()
        .ok_or("truncated file accepted")?;
    assert!(matches!(e, Error::Corruption { .. }), "{e}");

    let no_meta = download(&b, &info, target)?;
    std::fs::remove_file(no_meta.join(info.meta_file))?;
    let e = load_snapshot(&b, &no_meta, &req)
        .err()
        .ok_or("missing meta accepted")?;
    assert!(
        matches!(&e, Error::MetaMissing { dir, .. } if *dir == no_meta),
        "{e}"
    );

    let bad_meta = download(&b, &info, target)?;
    let mut m = std::fs::read(bad_meta.join(info.meta_file))?;
    m[10] ^= 1;
    std::fs::write(bad_meta.join(info.meta_file), &m)?;
    let e = load_snapshot(&b, &bad_meta, &req)
        .err()
        .ok_or("corrupt meta accepted")?;
    assert!(
        matches!(&e, Error::MetaCorrupt { dir, .. } if *dir == bad_meta),
        "{e}"
    );

    let missing_file = download(&b, &info, target)?;
    std::fs::remove_file(missing_file.join(file))?;
    let e = load_snapshot(&b, &missing_file, &req)
        .err()
        .ok_or("missing file accepted")?;
    assert!(matches!(e, Error::Io { .. }), "{e}");

    assert!(b.tablet(target).is_err());
    drop(b);
    let b = open(b_dir.path())?;
    assert!(b.tablet(target).is_err());
    assert!(b.tablet_ids().is_empty());
    // The intact download still installs.
    assert_eq!(restore(&b, &info, target)?, a.checksum(ids[0], None)?);
    Ok(())
}
