//! `Faulty` decides each operation's fate from (seed, operation, key, range
//! offset, attempt), so a seed replays the same faults whatever order threads
//! issue operations in.

use std::collections::BTreeMap;
use std::sync::Arc;

use tabletsnap_transfer::{Backend, FaultConfig, Faulty, Memory};

/// Runs `ops` (operation, key, offset) in the given order, three attempts
/// each, and records which attempts failed.
fn fates(seed: u64, ops: &[(&str, String, u64)]) -> BTreeMap<(String, String, u64, u32), bool> {
    let mem = Memory::new();
    for (_, key, _) in ops {
        mem.put(key, &[7u8; 64]).expect("seed object");
    }
    let f = Faulty::new(mem, FaultConfig::transient(seed, 0.4));
    let mut out = BTreeMap::new();
    for attempt in 0..3u32 {
        for (op, key, at) in ops {
            let failed = match *op {
                "get" => f.get(key).is_err(),
                "get_range" => f.get_range(key, *at, 8).is_err(),
                "head" => f.head(key).is_err(),
                _ => f.put(key, &[1u8; 64]).is_err(),
            };
            out.insert((op.to_string(), key.clone(), *at, attempt), failed);
        }
    }
    out
}

fn workload() -> Vec<(&'static str, String, u64)> {
    (0..40u64)
        .flat_map(|i| {
            let key = format!("data/pack-{i:04}");
            [
                ("get", key.clone(), 0),
                ("get_range", key.clone(), 8 * (i % 4)),
                ("head", key, 0),
            ]
        })
        .collect()
}

#[test]
fn reversed_order_gives_the_same_fates() {
    let ops = workload();
    let mut reversed = ops.clone();
    reversed.reverse();
    let a = fates(42, &ops);
    let b = fates(42, &reversed);
    assert_eq!(a, b, "fates moved with the order of operations");
    let failures = a.values().filter(|f| **f).count();
    assert!(
        failures > 10 && failures < a.len() - 10,
        "{failures} of {}",
        a.len()
    );
    assert_ne!(a, fates(43, &ops), "another seed gives the same fates");
}

#[test]
fn concurrent_threads_replay_the_sequential_fates() {
    let ops = workload();
    let expected = fates(9, &ops);
    let mem = Memory::new();
    for (_, key, _) in &ops {
        mem.put(key, &[7u8; 64]).expect("seed object");
    }
    let f = Arc::new(Faulty::new(mem, FaultConfig::transient(9, 0.4)));
    // Each thread owns some keys and runs their attempts in its own order.
    let got: BTreeMap<_, _> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4usize)
            .map(|t| {
                let f = Arc::clone(&f);
                let mine: Vec<_> = ops.iter().skip(t).step_by(4).cloned().collect();
                s.spawn(move || {
                    let mut out = Vec::new();
                    for attempt in 0..3u32 {
                        for (op, key, at) in mine.iter().rev() {
                            let failed = match *op {
                                "get" => f.get(key).is_err(),
                                "get_range" => f.get_range(key, *at, 8).is_err(),
                                _ => f.head(key).is_err(),
                            };
                            out.push(((op.to_string(), key.clone(), *at, attempt), failed));
                        }
                    }
                    out
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("thread"))
            .collect()
    });
    assert_eq!(got, expected);
}
