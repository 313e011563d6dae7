//! A multipart upload that a killed process left open is found by the
//! stale-temp sweep each backup runs, and aborted once older than the age
//! given; on a server without ListMultipartUploads (s3s-fs 0.14.1 answers
//! 501 NotImplemented) the sweep finds nothing, does not fail, and leaves
//! the upload open, which the test checks is what really happens.
//!
//! Needs the TABLETSNAP_S3_* variables (see `common/s3.rs`).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::s3::{backend, server};
use tabletsnap_transfer::{Backend, Repository};

#[test]
fn stale_multipart_uploads_are_aborted_or_reported_unlistable() {
    let Some(s) = server() else { return };
    let b = Arc::new(backend(&s, "uploads", &[]));
    let repo = Repository::create(Arc::clone(&b) as Arc<dyn Backend>, "r").expect("create");
    let key = repo.key("__ss_l/2026-01-01-00-00-00/packs/00000001.pack");
    let outside = "elsewhere/00000001.pack";
    // What a process killed inside a multipart put leaves behind: an upload
    // with a part, never completed nor aborted. One outside the repository
    // must survive the repository's sweep.
    let id = b.begin_upload(&key).expect("create the upload");
    b.put_upload_part(&key, &id, 1, b"part one")
        .expect("the upload is open");
    let other = b.begin_upload(outside).expect("create the other upload");

    let listed = b.list_open_uploads("").expect("list uploads");
    let kept_young = repo
        .sweep_stale_temp(Duration::from_secs(3600))
        .expect("sweep");
    let swept = repo
        .sweep_stale_temp(Duration::ZERO)
        .expect("the sweep never fails for want of ListMultipartUploads");
    match listed {
        Some(uploads) => {
            eprintln!("the server lists uploads: {uploads:?}");
            let ours = uploads
                .iter()
                .find(|u| u.key == key && u.upload_id == id)
                .expect("the open upload is listed");
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock")
                .as_millis() as u64;
            // moto, for one, reports a fixed initiation time from 2010:
            // by the server's word such an upload is stale at any age.
            let recent = ours
                .initiated_ms
                .is_some_and(|t| t + 600_000 > now_ms && t < now_ms + 600_000);
            if recent {
                assert_eq!((kept_young, swept), (0, 1), "a young upload is kept");
            } else {
                eprintln!("the server says it started at {:?}", ours.initiated_ms);
                assert_eq!((kept_young, swept), (1, 0));
            }
            let left = b.list_open_uploads("").expect("list").expect("listable");
            assert_eq!(
                left.iter().map(|u| u.key.as_str()).collect::<Vec<_>>(),
                [outside]
            );
        }
        None => {
            eprintln!("the server does not implement ListMultipartUploads: nothing to sweep");
            assert_eq!((kept_young, swept), (0, 0));
            b.put_upload_part(&key, &id, 2, b"part two")
                .expect("nothing aborted the upload");
            // The abort the sweep sends for a listed upload does remove it here.
            b.abort_upload(&key, &id).expect("abort");
        }
    }
    // S3 answers 404 NoSuchUpload, s3s-fs 403, moto 500: refused, anyway.
    let e = b
        .put_upload_part(&key, &id, 3, b"late part")
        .expect_err("an aborted upload refuses parts");
    eprintln!("a part for the aborted upload: {e}");
    b.put_upload_part(outside, &other, 1, b"x")
        .expect("the upload outside the repository is untouched");
    b.abort_upload(outside, &other).expect("clean up");
}
