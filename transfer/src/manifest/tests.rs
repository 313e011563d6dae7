//! Manifest encoding, validation and subset tests.

use super::*;

fn sample() -> Manifest {
    let data = b"hello world";
    Manifest {
        packs: vec!["__ss_a/2026-01-01-00-00-00/packs/00000000.pack".to_string()],
        tablets: vec![
            TabletEntry {
                tablet_id: 7,
                dirs: vec!["sub".to_string()],
                files: vec![
                    FileEntry {
                        path: "sub/x.dat".to_string(),
                        size: 11,
                        crc32: crc32fast::hash(data),
                        pieces: vec![
                            Piece {
                                pack: 0,
                                offset: 0,
                                len: 5,
                                crc32: crc32fast::hash(&data[..5]),
                            },
                            Piece {
                                pack: 0,
                                offset: 5,
                                len: 6,
                                crc32: crc32fast::hash(&data[5..]),
                            },
                        ],
                    },
                    FileEntry {
                        path: "empty".to_string(),
                        size: 0,
                        crc32: 0,
                        pieces: vec![],
                    },
                ],
            },
            TabletEntry {
                tablet_id: 8,
                dirs: vec![],
                files: vec![],
            },
        ],
    }
}

#[test]
fn round_trip() {
    let m = sample();
    assert_eq!(Manifest::decode(&m.encode()).ok(), Some(m));
}

/// Two tablets in two packs each referenced by one of them.
fn two_packs() -> Manifest {
    let mut m = sample();
    m.packs
        .insert(0, "__ss_b/2026-01-01-00-00-00/packs/00000000.pack".into());
    for p in m.tablets[0].files.iter_mut().flat_map(|f| &mut f.pieces) {
        p.pack = 1;
    }
    m.tablets[1].files.push(FileEntry {
        path: "y.dat".into(),
        size: 3,
        crc32: crc32fast::hash(b"abc"),
        pieces: vec![Piece {
            pack: 0,
            offset: 0,
            len: 3,
            crc32: crc32fast::hash(b"abc"),
        }],
    });
    m.validate().expect("valid");
    m
}

#[test]
fn filtered_decode_keeps_only_the_asked_tablets() {
    let m = two_packs();
    let bytes = m.encode();
    for keep in [vec![], vec![7], vec![8], vec![7, 8], vec![9]] {
        let set: HashSet<u64> = keep.iter().copied().collect();
        let d = Manifest::decode_filtered(&bytes, "m", Some(&set)).expect("decodes");
        assert_eq!(d, m.subset(&set), "{keep:?}");
    }
    assert_eq!(Manifest::decode_filtered(&bytes, "m", None).ok(), Some(m));
    // Entries it skips are still checked: any flip or truncation fails.
    let only8: HashSet<u64> = [8].into();
    for i in 0..bytes.len() {
        let mut b = bytes.clone();
        b[i] ^= 0x01;
        assert!(
            Manifest::decode_filtered(&b, "m", Some(&only8)).is_err(),
            "flip at {i}"
        );
    }
    for n in 0..bytes.len() {
        assert!(Manifest::decode_filtered(&bytes[..n], "m", Some(&only8)).is_err());
    }
}

#[test]
fn compact_subset_keeps_only_referenced_packs() {
    let m = two_packs();
    let s = m.subset_compact(&[7].into());
    assert_eq!(s.packs, vec![m.packs[1].clone()]);
    assert_eq!(s.tablets.len(), 1);
    assert!(s.tablets[0]
        .files
        .iter()
        .flat_map(|f| &f.pieces)
        .all(|p| p.pack == 0));
    s.validate().expect("valid");
    // Merged with another part, the entries point at the same pack keys.
    let merged = Manifest::merge(vec![m.subset_compact(&[8].into()), s]).expect("merges");
    for t in &merged.tablets {
        let orig = m
            .tablets
            .iter()
            .find(|o| o.tablet_id == t.tablet_id)
            .expect("tablet");
        for (a, b) in t.files.iter().zip(&orig.files) {
            for (pa, pb) in a.pieces.iter().zip(&b.pieces) {
                assert_eq!(merged.pack_key(pa), m.pack_key(pb));
            }
        }
    }
    assert!(m.subset_compact(&[9].into()).packs.is_empty());
}

#[test]
fn every_flipped_byte_and_truncation_is_detected() {
    let bytes = sample().encode();
    for i in 0..bytes.len() {
        let mut b = bytes.clone();
        b[i] ^= 0x01;
        assert!(Manifest::decode(&b).is_err(), "flip at {i} undetected");
    }
    for n in 0..bytes.len() {
        assert!(
            Manifest::decode(&bytes[..n]).is_err(),
            "truncation to {n} undetected"
        );
    }
}

fn with_path(path: &str) -> Manifest {
    let mut m = sample();
    m.tablets[0].files[1].path = path.to_string();
    m
}

#[test]
fn escaping_paths_are_refused() {
    for p in ["../x", "/etc/x", "a/../../x"] {
        let err = Manifest::decode(&with_path(p).encode());
        assert!(
            matches!(err, Err(Error::InvalidName { .. })),
            "{p}: {err:?}"
        );
    }
}

#[test]
fn duplicates_are_refused() {
    let err = Manifest::decode(&with_path("sub/x.dat").encode());
    assert!(matches!(err, Err(Error::Corrupt { .. })), "{err:?}");
    let mut m = sample();
    m.tablets[1].tablet_id = 7;
    assert!(Manifest::decode(&m.encode()).is_err());
}

/// A one-tablet manifest whose files have the given pieces (offset, len),
/// sizes and crcs consistent with them, so only the numbers are wrong.
fn with_pieces(files: &[&[(u64, u64)]]) -> Manifest {
    let files = files
        .iter()
        .enumerate()
        .map(|(i, pieces)| {
            let mut crc = crc32fast::Hasher::new();
            let mut size = 0u64;
            let mut wrapped = false;
            let pieces = pieces
                .iter()
                .map(|&(offset, len)| {
                    // The hasher adds lengths unchecked; an overflowing
                    // file is refused before its crc is looked at.
                    match size.checked_add(len) {
                        Some(s) if !wrapped => {
                            crc.combine(&crc32fast::Hasher::new_with_initial_len(7, len));
                            size = s;
                        }
                        _ => {
                            wrapped = true;
                            size = size.wrapping_add(len);
                        }
                    }
                    Piece {
                        pack: 0,
                        offset,
                        len,
                        crc32: 7,
                    }
                })
                .collect();
            FileEntry {
                path: format!("f{i}"),
                size,
                crc32: crc.finalize(),
                pieces,
            }
        })
        .collect();
    Manifest {
        packs: vec!["p".to_string()],
        tablets: vec![TabletEntry {
            tablet_id: 1,
            dirs: vec![],
            files,
        }],
    }
}

fn overflow_message(m: &Manifest) -> String {
    match Manifest::decode_named(&m.encode(), "manifest of nightly@2026-11-26-13-14-46") {
        Err(e @ Error::Overflow { .. }) => e.to_string(),
        other => panic!("expected an overflow error, got {other:?}"),
    }
}

#[test]
fn piece_end_past_u64_is_refused() {
    let msg = overflow_message(&with_pieces(&[&[(u64::MAX, 10)]]));
    assert!(
        msg.contains("manifest of nightly@2026-11-26-13-14-46")
            && msg.contains("file 'f0' at offset 18446744073709551615 + len 10 overflows"),
        "{msg}"
    );
}

#[test]
fn piece_lengths_summing_past_u64_are_refused() {
    // Saturating, the sum would equal the (wrapped) size and pass.
    let msg = overflow_message(&with_pieces(&[&[(0, u64::MAX), (0, 1)]]));
    assert!(
        msg.contains("file 'f0'") && msg.contains("overflows"),
        "{msg}"
    );
}

#[test]
fn file_sizes_summing_past_u64_are_refused() {
    let half = 1u64 << 63;
    let m = with_pieces(&[&[(0, half)], &[(0, half)]]);
    let msg = overflow_message(&m);
    assert!(msg.contains("total size") && msg.contains("f1"), "{msg}");
    assert_eq!(m.total_bytes(), u64::MAX, "unvalidated totals saturate");
}

proptest::proptest! {
    #[test]
    fn extreme_offsets_and_lengths_never_panic(
        pieces in proptest::collection::vec(
            (proptest::prop_oneof![proptest::num::u64::ANY, 0..4u64, (u64::MAX - 4)..=u64::MAX],
             proptest::prop_oneof![proptest::num::u64::ANY, 1..4u64, (u64::MAX - 4)..=u64::MAX]),
            1..4,
        )
    ) {
        let m = with_pieces(&[&pieces]);
        let fits = pieces.iter().all(|(o, l)| o.checked_add(*l).is_some())
            && pieces.iter().try_fold(0u64, |t, (_, l)| t.checked_add(*l)).is_some();
        let r = Manifest::decode(&m.encode());
        proptest::prop_assert_eq!(r.is_ok(), fits, "{:?}", r);
        if let Ok(d) = r {
            proptest::prop_assert_eq!(d.total_bytes(), m.tablets[0].files[0].size);
        }
    }
}

#[test]
fn newer_version_names_the_version() {
    let mut b = sample().encode();
    b[8..12].copy_from_slice(&(MANIFEST_VERSION + 1).to_le_bytes());
    let err = Manifest::decode(&b)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains(&format!("version {}", MANIFEST_VERSION + 1)) && err.contains("upgrade"),
        "{err}"
    );
}

fn borrowing() -> StoredManifest {
    StoredManifest {
        entries: sample(),
        borrowed: vec![
            Borrowed {
                manifest: "__ss_a/2026-01-01-00-00-00/manifest".into(),
                len: 1000,
                crc32: 0xdead_beef,
                packs: vec!["__ss_a/2026-01-01-00-00-00/packs/00000001.pack".into()],
                tablets: vec![
                    BorrowedTablet {
                        tablet_id: 3,
                        files: 2,
                        bytes: 30,
                    },
                    BorrowedTablet {
                        tablet_id: 9,
                        files: 1,
                        bytes: 5,
                    },
                ],
            },
            Borrowed {
                manifest: "__ss_b/2026-01-02-00-00-00/manifest".into(),
                len: 2000,
                crc32: 1,
                packs: vec![],
                tablets: vec![BorrowedTablet {
                    tablet_id: 10,
                    files: 4,
                    bytes: 400,
                }],
            },
        ],
    }
}

#[test]
fn a_manifest_borrowing_nothing_is_format_1_and_one_borrowing_is_format_2() -> Result<()> {
    let plain = StoredManifest {
        entries: sample(),
        borrowed: vec![],
    };
    assert_eq!(plain.encode(), sample().encode());
    assert_eq!(sample().encode()[8..12], 1u32.to_le_bytes());
    let b = borrowing().encode();
    assert_eq!(b[8..12], 2u32.to_le_bytes());
    assert_eq!(StoredManifest::decode_filtered(&b, "m", None)?, borrowing());
    let m = borrowing();
    assert_eq!(m.file_count(), 2 + 2 + 1 + 4);
    assert_eq!(m.total_bytes(), 11 + 30 + 5 + 400);
    assert_eq!(m.all_packs().len(), 2);
    Ok(())
}

#[test]
fn entries_alone_refuse_a_manifest_that_borrows() {
    let b = borrowing().encode();
    let err = Manifest::decode(&b)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("borrows") && err.contains("through its repository"),
        "{err}"
    );
    // Filtered to tablets it holds itself, it decodes.
    let only7: HashSet<u64> = [7].into_iter().collect();
    let m = Manifest::decode_filtered(&b, "m", Some(&only7)).expect("own entries");
    assert_eq!(m.tablets.len(), 1);
}

#[test]
fn filtering_keeps_only_the_kept_tablets_borrowed_entries() -> Result<()> {
    let b = borrowing().encode();
    let keep: HashSet<u64> = [8, 9].into_iter().collect();
    let s = StoredManifest::decode_filtered(&b, "m", Some(&keep))?;
    assert_eq!(s.entries.tablets.len(), 1);
    assert_eq!(s.borrowed.len(), 1);
    assert_eq!(s.borrowed[0].tablets.len(), 1);
    assert_eq!(s.borrowed[0].tablets[0].tablet_id, 9);
    Ok(())
}

#[test]
fn the_summary_lists_held_tablets_with_counts_and_the_borrowed_part() -> Result<()> {
    let b = borrowing().encode();
    let s = StoredManifest::summary(&b, "m")?;
    assert_eq!(s.len, b.len() as u64);
    assert_eq!(s.crc32, trailing_crc(&b));
    assert_eq!(s.packs, sample().packs);
    let own: Vec<(u64, u64, u64)> = s
        .own
        .iter()
        .map(|t| (t.tablet_id, t.files, t.bytes))
        .collect();
    assert_eq!(own, vec![(7, 2, 11), (8, 0, 0)]);
    assert_eq!(s.borrowed, borrowing().borrowed);
    Ok(())
}

#[test]
fn a_flipped_or_cut_borrowing_manifest_is_refused() {
    let b = borrowing().encode();
    for i in 0..b.len() {
        let mut c = b.clone();
        c[i] ^= 0x01;
        assert!(
            StoredManifest::decode_filtered(&c, "m", None).is_err(),
            "flip at {i} undetected"
        );
        assert!(
            StoredManifest::summary(&c, "m").is_err(),
            "flip at {i} undetected by summary"
        );
    }
    for n in 0..b.len() {
        assert!(
            StoredManifest::decode_filtered(&b[..n], "m", None).is_err(),
            "cut at {n}"
        );
    }
}

/// A change that makes a borrowed part invalid.
type Edit = Box<dyn Fn(&mut StoredManifest)>;

#[test]
fn bad_borrowed_parts_are_refused() {
    let cases: Vec<(&str, Edit)> = vec![
        (
            "listed twice",
            Box::new(|m| m.borrowed[0].tablets[0].tablet_id = 7),
        ),
        (
            "listed twice",
            Box::new(|m| m.borrowed[1].tablets[0].tablet_id = 9),
        ),
        ("ascending", Box::new(|m| m.borrowed[0].tablets.reverse())),
        (
            "not a manifest",
            Box::new(|m| m.borrowed[0].manifest = "__ss_a/x/meta".into()),
        ),
        (
            "borrows no tablet",
            Box::new(|m| m.borrowed[1].tablets.clear()),
        ),
    ];
    for (want, f) in cases {
        let mut m = borrowing();
        f(&mut m);
        let err = StoredManifest::decode_filtered(&m.encode(), "m", None)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains(want), "{want}: {err}");
    }
    let mut m = borrowing();
    m.borrowed[0].manifest = "../../etc/manifest".into();
    assert!(StoredManifest::decode_filtered(&m.encode(), "m", None).is_err());
}
