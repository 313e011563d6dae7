//! An upload killed midway, re-run with the same label and timestamp, puts only
//! the packs that are missing.

mod common;

use std::sync::Arc;

use common::*;
use tabletsnap_transfer::{
    Backend, Counting, FaultConfig, Faulty, LocalFs, Repository, SnapshotId,
};

#[test]
fn rerun_puts_only_missing_packs() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let tablets = sample_tablets();
    let sources = write_tree(&tmp.path().join("src"), &tablets);
    let counting = Arc::new(Counting::new(
        LocalFs::new(tmp.path().join("repo")).expect("fs"),
    ));
    let faulty = Arc::new(Faulty::new(Arc::clone(&counting), FaultConfig::off(0)));
    let backend: Arc<dyn Backend> = faulty.clone();
    let repo = Repository::create(backend, "r").expect("create");
    let opts = upload_opts(400, 256);

    // A "crash" after 5 pack puts.
    let mut cfg = FaultConfig::off(0);
    cfg.fail_after_puts = Some(5);
    faulty.set_config(cfg);
    counting.reset();
    let err = repo.backup("l", TS, &sources, b"m", &opts);
    assert!(err.is_err(), "the interrupted upload fails");
    let stored_before = counting
        .inner()
        .list("__tabletsnap_repository_r/__ss_l/")
        .expect("list");
    assert_eq!(stored_before.len(), 5, "{stored_before:?}");
    assert!(
        repo.list_snapshots().expect("list").is_empty(),
        "not committed"
    );

    faulty.set_config(FaultConfig::off(0));
    counting.reset();
    let mut w = repo.begin_backup("l", TS).expect("begin");
    let report = w.upload(&sources, &opts).expect("resumed upload");
    let puts = counting.counts().puts;
    assert_eq!(report.packs_reused, 5);
    assert_eq!(report.packs_put, report.packs - 5);
    assert_eq!(puts, report.packs - 5, "only the missing packs were put");
    w.commit(b"m").expect("commit");

    let out = tmp.path().join("out");
    let id = SnapshotId::new("l", TS).expect("id");
    repo.download(&id, &targets(&out), &download_opts())
        .expect("download");
    for t in &tablets {
        let sub = t.id.to_string();
        assert_eq!(
            read_tree(&out.join(&sub)),
            read_tree(&tmp.path().join("src").join(&sub))
        );
    }

    // A changed source file changes its pack's plan: that pack is rewritten.
    let mut w = repo
        .begin_backup("l", "2026-11-26-13-14-47")
        .expect("begin");
    w.upload(&sources, &opts).expect("upload");
    counting.reset();
    let mut changed = sources.clone();
    let path = changed[2].dir.join(&changed[2].files[0].name);
    let f = &mut changed[2].files[0];
    std::fs::write(&path, b"changed contents").expect("rewrite");
    f.size = 16;
    f.crc32 = crc32fast::hash(b"changed contents");
    let mut w = repo
        .begin_backup("l", "2026-11-26-13-14-47")
        .expect("begin");
    let report = w.upload(&changed, &opts).expect("upload");
    assert!(report.packs_put >= 1, "{report:?}");
    assert!(report.packs_reused >= 1, "{report:?}");
}
