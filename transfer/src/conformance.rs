//! The conformance suite every [`Backend`] must pass; tests call [`run_all`].
//!
//! Each check panics with a message naming the property on failure, like a test.

use crate::backend::Backend;
use crate::error::Error;

/// Runs every conformance check against `b`, which must start empty.
pub fn run_all(b: &dyn Backend) {
    put_get_round_trip(b);
    put_replaces(b);
    missing_objects(b);
    ranges(b);
    streams(b);
    listing(b);
    deletes(b);
    bad_keys(b);
    torn_put_is_invisible(b);
    empty_object(b);
    concurrent_puts(b);
}

#[track_caller]
fn ok<T>(r: crate::Result<T>, what: &str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{what}: {e}"),
    }
}

fn put_get_round_trip(b: &dyn Backend) {
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    ok(b.put("c/rt/a", &data), "put");
    assert_eq!(
        ok(b.get("c/rt/a"), "get"),
        data,
        "get returns what put stored"
    );
    assert_eq!(
        ok(b.head("c/rt/a"), "head"),
        Some(data.len() as u64),
        "head gives the size"
    );
}

fn put_replaces(b: &dyn Backend) {
    ok(b.put("c/rep/x", b"first"), "put");
    ok(b.put("c/rep/x", b"second!"), "put again");
    assert_eq!(
        ok(b.get("c/rep/x"), "get"),
        b"second!",
        "a put replaces the object"
    );
    assert_eq!(ok(b.head("c/rep/x"), "head"), Some(7));
}

fn missing_objects(b: &dyn Backend) {
    assert_eq!(
        ok(b.head("c/missing/x"), "head"),
        None,
        "head of a missing object is None"
    );
    assert!(
        matches!(b.get("c/missing/x"), Err(Error::NotFound { .. })),
        "get of a missing object is NotFound"
    );
    assert!(
        matches!(
            b.get_range("c/missing/x", 0, 1),
            Err(Error::NotFound { .. })
        ),
        "get_range of a missing object is NotFound"
    );
    let mut buf = Vec::new();
    assert!(
        matches!(
            b.get_range_into("c/missing/x", 0, 1, &mut buf),
            Err(Error::NotFound { .. })
        ),
        "get_range_into of a missing object is NotFound"
    );
}

fn ranges(b: &dyn Backend) {
    ok(b.put("c/range/x", b"0123456789"), "put");
    assert_eq!(ok(b.get_range("c/range/x", 2, 3), "range"), b"234");
    assert_eq!(ok(b.get_range("c/range/x", 0, 10), "range"), b"0123456789");
    assert_eq!(ok(b.get_range("c/range/x", 10, 0), "range"), b"");
    assert!(
        b.get_range("c/range/x", 8, 3).is_err(),
        "a range past the end is an error"
    );
    // A reused buffer, longer or shorter than the range, holds exactly the range.
    let mut buf = b"previous contents, longer than any range".to_vec();
    for (offset, len, want) in [
        (2, 3, &b"234"[..]),
        (0, 10, b"0123456789"),
        (10, 0, b""),
        (7, 3, b"789"),
    ] {
        ok(
            b.get_range_into("c/range/x", offset, len, &mut buf),
            "range into",
        );
        assert_eq!(buf, want, "get_range_into {offset}+{len} holds the range");
    }
    assert!(
        b.get_range_into("c/range/x", 8, 3, &mut buf).is_err(),
        "a range past the end is an error for get_range_into too"
    );
    // Ranges come from manifests, i.e. from the repository: absurd ones are
    // refused before any buffer is sized by them, and never overflow.
    for (offset, len) in [(0, u64::MAX / 2), (u64::MAX, 2), (2, u64::MAX)] {
        assert!(
            b.get_range("c/range/x", offset, len).is_err(),
            "range {offset}+{len} is an error"
        );
        assert!(
            b.get_range_into("c/range/x", offset, len, &mut buf)
                .is_err(),
            "range {offset}+{len} is an error for get_range_into"
        );
    }
}

/// A streamed range hands over exactly the range's bytes, in order, in
/// slices no larger than a block; a sink's error ends it as it is.
fn streams(b: &dyn Backend) {
    use crate::backend::STREAM_BLOCK;
    let len = STREAM_BLOCK + (1 << 20) + 5;
    let data: Vec<u8> = (0..len)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    ok(b.put("c/stream/x", &data), "put");
    let mut buf = Vec::new();
    for (offset, n) in [(0, len), (3, len - 10), (STREAM_BLOCK - 2, 4), (7, 0)] {
        let mut got = Vec::new();
        ok(
            b.get_range_stream("c/stream/x", offset, n, &mut buf, &mut |s| {
                assert!(s.len() as u64 <= STREAM_BLOCK, "a slice is at most a block");
                got.extend_from_slice(s);
                Ok(())
            }),
            "stream",
        );
        assert!(
            got == data[offset as usize..(offset + n) as usize],
            "get_range_stream {offset}+{n} hands over exactly the range"
        );
    }
    let mut sink_none = |_: &[u8]| Ok(());
    assert!(
        matches!(
            b.get_range_stream("c/missing/x", 0, 1, &mut buf, &mut sink_none),
            Err(Error::NotFound { .. })
        ),
        "a stream of a missing object is NotFound"
    );
    for (offset, n) in [(len - 2, 3), (u64::MAX, 2), (2, u64::MAX)] {
        assert!(
            b.get_range_stream("c/stream/x", offset, n, &mut buf, &mut sink_none)
                .is_err(),
            "stream {offset}+{n} past the end is an error"
        );
    }
    let stopped = b.get_range_stream("c/stream/x", 0, len, &mut buf, &mut |_| {
        Err(Error::InvalidInput("sink says stop".into()))
    });
    assert!(
        matches!(&stopped, Err(Error::InvalidInput(m)) if m == "sink says stop"),
        "a sink's error is returned as it is: {stopped:?}"
    );
    ok(b.delete("c/stream/x"), "delete");
}

fn listing(b: &dyn Backend) {
    for k in ["c/list/a/1", "c/list/a/2", "c/list/b/1", "c/list/ab"] {
        ok(b.put(k, k.as_bytes()), "put");
    }
    assert_eq!(
        ok(b.list("c/list/a/"), "list"),
        vec!["c/list/a/1", "c/list/a/2"],
        "list by directory prefix, sorted"
    );
    assert_eq!(
        ok(b.list("c/list/a"), "list"),
        vec!["c/list/a/1", "c/list/a/2", "c/list/ab"],
        "list by partial-name prefix"
    );
    assert!(
        ok(b.list("c/list/zzz/"), "list").is_empty(),
        "empty listing"
    );
    assert!(ok(b.list(""), "list all").contains(&"c/list/ab".to_string()));
}

fn deletes(b: &dyn Backend) {
    ok(b.put("c/del/x", b"x"), "put");
    ok(b.delete("c/del/x"), "delete");
    assert_eq!(
        ok(b.head("c/del/x"), "head"),
        None,
        "deleted object is gone"
    );
    ok(b.delete("c/del/x"), "deleting a missing object succeeds");
    assert!(ok(b.list("c/del/"), "list").is_empty());
}

fn bad_keys(b: &dyn Backend) {
    for k in ["", "/abs", "../x", "c/../../x", "c//x", "c/./x", "c/.tmp"] {
        assert!(
            matches!(b.put(k, b"x"), Err(Error::InvalidKey { .. })),
            "put refuses key {k:?}"
        );
        assert!(b.get(k).is_err(), "get refuses key {k:?}");
        assert!(b.head(k).is_err(), "head refuses key {k:?}");
        assert!(b.delete(k).is_err(), "delete refuses key {k:?}");
    }
    assert!(b.list("../").is_err(), "list refuses an escaping prefix");
}

fn torn_put_is_invisible(b: &dyn Backend) {
    ok(b.put_torn("c/torn/x", b"garbage"), "torn put");
    assert_eq!(
        ok(b.head("c/torn/x"), "head"),
        None,
        "a torn put is not visible"
    );
    assert!(
        ok(b.list("c/torn/"), "list").is_empty(),
        "a torn put is not listed"
    );
    ok(b.put("c/torn/x", b"whole"), "put after torn put");
    assert_eq!(ok(b.get("c/torn/x"), "get"), b"whole");
    assert_eq!(ok(b.list("c/torn/"), "list"), vec!["c/torn/x"]);
}

fn empty_object(b: &dyn Backend) {
    ok(b.put("c/empty", b""), "put empty");
    assert_eq!(ok(b.head("c/empty"), "head"), Some(0));
    assert!(ok(b.get("c/empty"), "get").is_empty());
    ok(b.barrier(), "barrier");
}

fn concurrent_puts(b: &dyn Backend) {
    std::thread::scope(|s| {
        for t in 0..4u8 {
            s.spawn(move || {
                for i in 0..20u8 {
                    ok(b.put(&format!("c/conc/{t}/{i}"), &[t, i]), "concurrent put");
                    ok(b.put("c/conc/shared", &[t; 64]), "concurrent put, same key");
                }
            });
        }
    });
    assert_eq!(ok(b.list("c/conc/"), "list").len(), 81);
    let shared = ok(b.get("c/conc/shared"), "get");
    assert!(
        shared.len() == 64 && shared.iter().all(|x| *x == shared[0]),
        "concurrent puts to one key never interleave"
    );
}
