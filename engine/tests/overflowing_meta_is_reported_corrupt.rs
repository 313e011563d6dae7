//! A tablet meta whose numbers overflow (a version at u64::MAX, sizes that
//! wrap) is reported corrupt on open, naming the tablet and the file; the
//! engine neither panics nor serves it, and other tablets are unaffected.

mod common;

use common::*;
use tabletsnap_engine::tablet_meta::META_FILE_NAME;
use tabletsnap_engine::{Error, Result, SegmentMeta, TabletMeta};

/// Writes `m` over tablet `id`'s meta with a valid crc: only the content
/// checks can catch it.
fn corrupt_meta(st: &[std::path::PathBuf], id: u64, f: impl FnOnce(&mut TabletMeta)) {
    let e = open(st).expect("open");
    let path = e.tablet(id).expect("tablet").dir().join(META_FILE_NAME);
    let mut m = e.tablet_meta(id).expect("meta");
    drop(e);
    f(&mut m);
    std::fs::write(&path, m.encode()).expect("write meta");
}

#[test]
fn overflowing_metas_are_refused_by_tablet_and_path() -> Result<()> {
    let dir = tmp();
    let st = stores(dir.path(), 1);
    {
        let e = open(&st)?;
        for t in 1..=3 {
            create(&e, t)?;
            e.load(t, &rows(t, 4))?;
        }
    }
    corrupt_meta(&st, 1, |m| m.rowsets[1].end_version = u64::MAX);
    corrupt_meta(&st, 2, |m| {
        let seg = m.rowsets[1].segments[0].clone();
        let size = seg.size;
        m.rowsets[1].segments.push(SegmentMeta {
            size: u64::MAX - size + 1,
            ..seg
        });
        // What a wrapping sum would compute.
        m.rowsets[1].data_size = 0;
    });
    let e = open(&st)?;
    assert_eq!(e.tablet_ids(), vec![3]);
    let corrupt = e.corrupt_tablets();
    assert_eq!(corrupt.len(), 2, "{corrupt:?}");
    for (id, msg) in &corrupt {
        assert!(msg.contains(&format!("tablet {id}")), "{msg}");
        assert!(msg.contains(META_FILE_NAME), "{msg}");
        assert!(
            msg.contains("overflow") || msg.contains("u64::MAX"),
            "{msg}"
        );
        assert!(matches!(e.tablet(*id), Err(Error::TabletCorrupt { .. })));
    }
    assert_eq!(e.checksum(3, None)?.rows, 4);
    Ok(())
}
