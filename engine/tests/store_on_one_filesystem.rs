//! A store's barrier is one `syncfs` on its root, which covers only the
//! root's filesystem: open refuses a store whose data, snapshot or trash dir
//! lives on another one, naming that dir.

mod common;

use common::*;
use tabletsnap_engine::{Error, Result};

#[test]
fn a_normal_store_opens_and_reopens() -> Result<()> {
    let dir = tmp();
    let st = stores(dir.path(), 2);
    let e = open(&st)?;
    create(&e, 1)?;
    e.load(1, &rows(1, 3))?;
    drop(e);
    std::fs::create_dir_all(st[0].join("snapshot/20240101000000.0.60/1/7")).expect("mkdir");
    let e = open(&st)?;
    assert_eq!(e.tablet_ids(), vec![1]);
    Ok(())
}

/// With a tmpfs at /dev/shm (a filesystem other than the temp dir's), a
/// trash dir that is a symlink onto it is refused, by name.
#[test]
fn a_store_dir_on_another_filesystem_is_refused() -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let dir = tmp();
    let Ok(other) = tempfile::tempdir_in("/dev/shm") else {
        eprintln!("no /dev/shm: the unit test of the check covers this");
        return Ok(());
    };
    let dev = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.dev()).ok();
    if dev(dir.path()) == dev(other.path()) {
        eprintln!("/dev/shm is on the temp dir's filesystem: nothing to test");
        return Ok(());
    }
    let st = stores(dir.path(), 1);
    std::fs::create_dir_all(&st[0]).expect("mkdir");
    std::os::unix::fs::symlink(other.path(), st[0].join("trash")).expect("symlink");
    let err = open(&st).expect_err("a trash on another filesystem was accepted");
    assert!(matches!(err, Error::NotOnStoreFilesystem { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains(&st[0].join("trash").display().to_string()),
        "{msg}"
    );
    Ok(())
}
