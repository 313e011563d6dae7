//! W1 through the engine vs plain create+write of the same files, side by
//! side in one run (A B A B), then engine open time on the W1 stores.
//!
//! `cargo run --release -p tabletsnap-engine --example w1 -- [scale] [rounds] [dir]`
//!
//! Old outputs are renamed into a trash dir and deleted only at the end: on
//! this ext4 a mass delete slows file creation for minutes afterwards.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tabletsnap_engine::workload::{plain_write, populate, WorkloadSpec};
use tabletsnap_engine::{Engine, EngineOptions};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let scale: f64 = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(1.0);
    let rounds: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(2);
    let base: PathBuf = args
        .get(3)
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("tabletsnap-w1-engine"));
    let trash = base.join("trash");
    std::fs::create_dir_all(&trash)?;
    let spec = WorkloadSpec::w1().scaled(scale);
    println!(
        "W1 engine: {} tablets x {} versions x {} segments ({} rows/version)",
        spec.tablets, spec.versions, spec.segments_per_version, spec.rows_per_version
    );
    let (mut ours, mut plain) = (Vec::new(), Vec::new());
    let mut files = 0usize;
    let mut bytes = 0u64;
    let mut last_store = None;
    for round in 0..rounds {
        let store = base.join(format!("engine{round}"));
        let t = Instant::now();
        let engine = Engine::open(EngineOptions::new(vec![store.clone()]))?;
        populate(&engine, &spec)?;
        ours.push(t.elapsed());
        if round == 0 {
            for id in engine.tablet_ids() {
                let m = engine.tablet_meta(id)?;
                files += m.rowsets.iter().map(|r| r.segments.len()).sum::<usize>();
                bytes += m.data_size();
            }
        }
        drop(engine);
        if let Some(prev) = last_store.replace(store) {
            std::fs::rename(&prev, trash.join(format!("e{round}")))?;
        }
        let avg = (bytes / files.max(1) as u64) as usize;
        let p = base.join(format!("plain{round}"));
        let t = Instant::now();
        plain_write(&p, &spec, avg)?;
        plain.push(t.elapsed());
        std::fs::rename(&p, trash.join(format!("p{round}")))?;
        println!(
            "round {round}: engine {:.2?}  plain {:.2?}",
            ours[round], plain[round]
        );
    }
    let (o, p) = (median(ours), median(plain));
    println!(
        "populate: engine {o:.2?} vs plain create+write {p:.2?}: ratio {:.2} (goal <= 2.0); {files} segment files, {:.0} files/s, {:.1} MB/s",
        o.as_secs_f64() / p.as_secs_f64(),
        files as f64 / o.as_secs_f64(),
        bytes as f64 / 1e6 / o.as_secs_f64()
    );
    if let Some(store) = last_store {
        let mut opens = Vec::new();
        for _ in 0..3 {
            let t = Instant::now();
            let e = Engine::open(EngineOptions::new(vec![store.clone()]))?;
            opens.push(t.elapsed());
            assert_eq!(e.tablet_ids().len() as u64, spec.tablets);
        }
        println!(
            "open with {} tablets: median {:.2?}",
            spec.tablets,
            median(opens)
        );
        std::fs::rename(&store, trash.join("last"))?;
    }
    std::fs::remove_dir_all(&trash)?;
    Ok(())
}
