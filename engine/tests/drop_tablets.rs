//! Dropping tablets moves their dirs to the trash durably (one barrier for a
//! batch) and deletes them; an unknown id refuses the whole batch.

mod common;

use common::*;
use tabletsnap_engine::{Error, Result};

#[test]
fn dropping_many_tablets_removes_exactly_them_across_stores() -> Result<()> {
    let dir = tmp();
    let st = stores(dir.path(), 2);
    let e = open(&st)?;
    for t in 1..=5 {
        create(&e, t)?;
        e.load(t, &rows(t, 5))?;
    }
    let dirs: Vec<_> = (1..=5)
        .map(|t| Ok(e.tablet(t)?.dir().to_path_buf()))
        .collect::<Result<_>>()?;
    assert!(
        dirs.iter().any(|d| d.starts_with(&st[0])) && dirs.iter().any(|d| d.starts_with(&st[1])),
        "tablets should spread over both stores"
    );
    let kept = e.checksum(5, None)?;
    assert!(matches!(
        e.drop_tablets(&[1, 2, 99]),
        Err(Error::TabletNotFound(99))
    ));
    assert_eq!(e.tablet_ids(), vec![1, 2, 3, 4, 5], "nothing dropped");
    e.drop_tablets(&[3, 1, 2, 1])?;
    e.drop_tablet(4)?;
    assert_eq!(e.tablet_ids(), vec![5]);
    for d in &dirs[..4] {
        assert!(!d.exists(), "{} survived", d.display());
        assert!(
            !d.parent().is_some_and(|p| p.exists()),
            "empty tablet-id dir left"
        );
    }
    for s in &st {
        assert!(
            files_under(&s.join("trash")).is_empty(),
            "trash not emptied"
        );
    }
    assert!(matches!(e.drop_tablet(1), Err(Error::TabletNotFound(1))));
    drop(e);
    let e = open(&st)?;
    assert_eq!(e.tablet_ids(), vec![5]);
    assert_eq!(e.checksum(5, None)?, kept);
    Ok(())
}
