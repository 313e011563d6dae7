//! A multi-piece file is read with one streamed read per contiguous run of
//! its pieces; a read cut off midway (a dropped connection) resumes where it
//! stopped instead of starting over, and the file still lands bit-exact. A
//! store that ends a read early without an error fails the download. VERIFY
//! reads the same way, and reads a piece damaged in transit again before
//! it reports damage.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use common::*;
use tabletsnap_transfer::{
    download_manifest_ref, verify_snapshot, Backend, FaultConfig, Faulty, Memory, Repository,
    Result, SnapshotId, StreamSink, VerifyOptions,
};

/// Records the ranges of the streamed reads that reach the store.
#[derive(Debug)]
struct Recording {
    inner: Arc<dyn Backend>,
    streams: Mutex<Vec<(u64, u64)>>,
    /// Hand over half of each streamed pack range and report success.
    short: AtomicBool,
    /// Answer as a remote store does (more requests in flight than cores).
    remote: AtomicBool,
}

impl Backend for Recording {
    fn put(&self, key: &str, data: &[u8]) -> Result<()> {
        self.inner.put(key, data)
    }
    fn get(&self, key: &str) -> Result<Vec<u8>> {
        self.inner.get(key)
    }
    fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        self.inner.get_range(key, offset, len)
    }
    fn get_range_stream(
        &self,
        key: &str,
        offset: u64,
        len: u64,
        buf: &mut Vec<u8>,
        sink: &mut StreamSink<'_>,
    ) -> Result<()> {
        if key.contains("/packs/") {
            self.streams
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((offset, len));
        }
        if self.short.load(Ordering::SeqCst) && key.contains("/packs/") {
            return self.inner.get_range_stream(key, offset, len / 2, buf, sink);
        }
        self.inner.get_range_stream(key, offset, len, buf, sink)
    }
    fn requests_in_flight(&self) -> Option<usize> {
        self.remote.load(Ordering::SeqCst).then_some(4)
    }
    fn head(&self, key: &str) -> Result<Option<u64>> {
        self.inner.head(key)
    }
    fn list(&self, prefix: &str) -> Result<Vec<String>> {
        self.inner.list(prefix)
    }
    fn delete(&self, key: &str) -> Result<()> {
        self.inner.delete(key)
    }
}

/// Backs up tablet `id` holding `big.dat` = `big` (1 MiB chunks, one pack)
/// into a repository on `inner` behind a [`Recording`].
fn backed_up(
    tmp: &std::path::Path,
    id: u64,
    big: &[u8],
    inner: Arc<dyn Backend>,
) -> (Arc<Recording>, Repository, SnapshotId) {
    backed_up_files(tmp, id, vec![("big.dat".into(), big.to_vec())], inner)
}

/// Backs up tablet `id` holding `files` (1 MiB chunks, one pack) into a
/// repository on `inner` behind a [`Recording`].
fn backed_up_files(
    tmp: &std::path::Path,
    id: u64,
    files: Vec<(String, Vec<u8>)>,
    inner: Arc<dyn Backend>,
) -> (Arc<Recording>, Repository, SnapshotId) {
    let tablets = vec![TestTablet {
        id,
        files,
        dirs: vec![],
    }];
    let sources = write_tree(&tmp.join("src"), &tablets);
    let rec = Arc::new(Recording {
        inner,
        streams: Mutex::new(Vec::new()),
        short: AtomicBool::new(false),
        remote: AtomicBool::new(false),
    });
    let repo = Repository::create(Arc::clone(&rec) as Arc<dyn Backend>, "r").expect("create");
    repo.backup("l", TS, &sources, b"m", &upload_opts(64 << 20, 1 << 20))
        .expect("backup");
    (rec, repo, SnapshotId::new("l", TS).expect("id"))
}

#[test]
fn a_cut_read_resumes_where_it_stopped() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // 5 MiB + 7 bytes in 1 MiB chunks, all in one pack.
    let len = (5 << 20) + 7;
    let big: Vec<u8> = (0..len as u64)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 9) as u8)
        .collect();
    let faulty = Arc::new(Faulty::new(Memory::new(), FaultConfig::off(5)));
    let (rec, repo, id) = backed_up(tmp.path(), 3, &big, Arc::clone(&faulty) as Arc<dyn Backend>);
    let manifest = repo.read_manifest(&id).expect("manifest");
    let pieces = &manifest.tablets[0].files[0].pieces;
    assert_eq!(pieces.len(), 6, "six pieces");
    let starts: Vec<u64> = pieces.iter().map(|p| p.offset).collect();
    let end = pieces.last().map(|p| p.offset + p.len).expect("pieces");

    // Without faults: one read for the six contiguous pieces.
    let out = tmp.path().join("clean");
    repo.download(&id, &targets(&out), &download_opts())
        .expect("download");
    assert!(read_tree(&out.join("3"))["big.dat"] == big);
    let clean = std::mem::take(&mut *rec.streams.lock().expect("lock"));
    assert_eq!(
        clean,
        vec![(starts[0], end - starts[0])],
        "one streamed read per run"
    );

    // A quarter of the reads are cut after half their range (each seed a different
    // schedule of cuts).
    let mut cuts = 0;
    for seed in 0..32 {
        let mut cfg = FaultConfig::off(seed);
        cfg.get_error_rate = 0.25;
        faulty.set_config(cfg);
        let out = tmp.path().join(format!("cut{seed}"));
        // The manifest was read before the faults: only pack reads are cut.
        download_manifest_ref(&repo, &manifest, &targets(&out), &download_opts())
            .expect("download under cut reads");
        faulty.set_config(FaultConfig::off(seed));
        assert!(
            read_tree(&out.join("3"))["big.dat"] == big,
            "bit-exact after cuts"
        );
        let reads = std::mem::take(&mut *rec.streams.lock().expect("lock"));
        cuts += reads.len() - 1;
        // Each read after a cut asks for the rest of the run only.
        for w in reads.windows(2) {
            let ((a, alen), (b, blen)) = (w[0], w[1]);
            assert_eq!(
                a + alen,
                end,
                "every read runs to the end of the run: {reads:?}"
            );
            assert!(
                b > a && b + blen == end,
                "a retry resumes past what was read: {reads:?}"
            );
        }
        if reads.len() > 1 {
            assert!(
                reads.iter().skip(1).any(|(o, _)| !starts.contains(o)),
                "some read resumed inside a piece: {reads:?}"
            );
        }
    }
    assert!(cuts >= 4, "reads were cut ({cuts} times)");
}

#[test]
fn a_read_that_ends_early_without_an_error_fails_the_download() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let len = (3 << 20) + 11;
    let big: Vec<u8> = (0..len as u64).map(|i| (i % 253) as u8).collect();
    let (rec, repo, id) = backed_up(tmp.path(), 4, &big, Arc::new(Memory::new()));
    rec.short.store(true, Ordering::SeqCst);
    let out = tmp.path().join("out");
    let err = repo
        .download(&id, &targets(&out), &download_opts())
        .expect_err("a short read must fail the download");
    assert!(
        err.to_string().contains("ended at") && err.to_string().contains("pack"),
        "names the pack and where the read ended: {err}"
    );
    let restored = read_tree(&out.join("4"));
    assert!(
        restored.is_empty(),
        "nothing left behind: {:?}",
        restored.keys()
    );
}

#[test]
fn verify_streams_each_run_resumes_cuts_and_rereads_a_piece_damaged_in_transit() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let len = (5 << 20) + 7;
    let big: Vec<u8> = (0..len as u64)
        .map(|i| (i.wrapping_mul(2_246_822_519) >> 11) as u8)
        .collect();
    let faulty = Arc::new(Faulty::new(Memory::new(), FaultConfig::off(9)));
    let (rec, repo, id) = backed_up(tmp.path(), 5, &big, Arc::clone(&faulty) as Arc<dyn Backend>);
    let manifest = repo.read_manifest(&id).expect("manifest");
    let pieces = &manifest.tablets[0].files[0].pieces;
    let end = pieces.last().map(|p| p.offset + p.len).expect("pieces");
    let mut opts = VerifyOptions::default();
    opts.transfer = transfer_opts();

    let r = verify_snapshot(&repo, &id, &opts).expect("verify");
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(r.bytes_read, len as u64);
    let clean = std::mem::take(&mut *rec.streams.lock().expect("lock"));
    assert_eq!(
        clean,
        vec![(pieces[0].offset, end - pieces[0].offset)],
        "one read per run"
    );

    // Cut reads and flipped bytes in transit: every seed verifies clean, and
    // only by resuming and re-reading.
    let (mut resumed, mut reread) = (0, 0);
    for seed in 0..48 {
        let mut cfg = FaultConfig::off(seed);
        cfg.get_error_rate = 0.2;
        cfg.corrupt_get_rate = 0.15;
        faulty.set_config(cfg);
        let r = verify_snapshot(&repo, &id, &opts);
        faulty.set_config(FaultConfig::off(seed));
        let reads = std::mem::take(&mut *rec.streams.lock().expect("lock"));
        let r = r.expect("verify under faults");
        assert!(
            r.is_ok(),
            "seed {seed}: damage reported for bytes flipped in transit: {r:?}"
        );
        for &(o, l) in &reads[1..] {
            if o + l == end && o > pieces[0].offset {
                resumed += 1;
            }
            if pieces.iter().any(|p| (p.offset, p.len) == (o, l)) {
                reread += 1;
            }
        }
    }
    eprintln!("verify: {resumed} reads resumed, {reread} pieces re-read");
    assert!(resumed >= 4, "cut reads resumed ({resumed})");
    assert!(reread >= 4, "damaged pieces re-read ({reread})");

    // Damage in the store itself is reported, naming the file (the faults
    // are off: these go straight to the store).
    let pack = repo.key(&manifest.packs[0]);
    let mut bytes = faulty.get(&pack).expect("pack");
    let at = (pieces[2].offset + 100) as usize;
    bytes[at] ^= 0x40;
    faulty.put(&pack, &bytes).expect("damage the pack");
    let r = verify_snapshot(&repo, &id, &opts).expect("verify");
    assert!(!r.is_ok());
    let problems = &r.damaged[0].problems;
    assert!(
        problems
            .iter()
            .any(|p| p.contains("big.dat piece 2") && p.contains("checksum mismatch")),
        "{problems:?}"
    );
}

#[test]
fn small_files_from_a_remote_store_stream_as_one_read_per_run() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // 300 files of 100 KiB + a few bytes, single pieces, ~29 MiB in one pack:
    // more than one 16 MiB window.
    let files: Vec<(String, Vec<u8>)> = (0..300u64)
        .map(|i| {
            let data = (0..(100 << 10) + i)
                .map(|j| (j.wrapping_mul(2_654_435_761).wrapping_add(i) >> 5) as u8)
                .collect();
            (format!("s{i:03}.dat"), data)
        })
        .collect();
    let faulty = Arc::new(Faulty::new(Memory::new(), FaultConfig::off(3)));
    let (rec, repo, id) = backed_up_files(
        tmp.path(),
        6,
        files.clone(),
        Arc::clone(&faulty) as Arc<dyn Backend>,
    );
    rec.remote.store(true, Ordering::SeqCst);
    let manifest = repo.read_manifest(&id).expect("manifest");
    assert_eq!(manifest.packs.len(), 1);
    let pieces: Vec<_> = manifest.tablets[0]
        .files
        .iter()
        .flat_map(|f| f.pieces.iter())
        .collect();
    let start = pieces.iter().map(|p| p.offset).min().expect("pieces");
    let end = pieces
        .iter()
        .map(|p| p.offset + p.len)
        .max()
        .expect("pieces");
    let expected: std::collections::BTreeMap<String, Vec<u8>> = files.into_iter().collect();

    let out = tmp.path().join("clean");
    repo.download(&id, &targets(&out), &download_opts())
        .expect("download");
    assert!(read_tree(&out.join("6")) == expected, "bit-exact");
    let clean = std::mem::take(&mut *rec.streams.lock().expect("lock"));
    assert_eq!(
        clean,
        vec![(start, end - start)],
        "one streamed read for the run"
    );

    let mut resumed = 0;
    for seed in 0..16 {
        let mut cfg = FaultConfig::off(seed);
        cfg.get_error_rate = 0.25;
        cfg.corrupt_get_rate = 0.2;
        faulty.set_config(cfg);
        let out = tmp.path().join(format!("faults{seed}"));
        let r = download_manifest_ref(&repo, &manifest, &targets(&out), &download_opts());
        faulty.set_config(FaultConfig::off(seed));
        r.expect("download under cut and damaged reads");
        assert!(
            read_tree(&out.join("6")) == expected,
            "seed {seed}: bit-exact"
        );
        let reads = std::mem::take(&mut *rec.streams.lock().expect("lock"));
        resumed += reads
            .iter()
            .skip(1)
            .filter(|&&(o, l)| o > start && o + l == end)
            .count();
    }
    assert!(resumed >= 4, "cut reads resumed ({resumed})");
}
