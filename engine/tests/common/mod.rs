//! Helpers shared by the engine's scenario tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use tabletsnap_engine::workload::{default_schema, generate_rows};
use tabletsnap_engine::{CreateTabletRequest, Engine, EngineOptions, Result, Row};

pub fn open(stores: &[PathBuf]) -> Result<Engine> {
    let mut o = EngineOptions::new(stores.to_vec());
    o.stale_rowset_delay = std::time::Duration::from_secs(0);
    Engine::open(o)
}

pub fn stores(root: &Path, n: usize) -> Vec<PathBuf> {
    (0..n).map(|i| root.join(format!("store{i}"))).collect()
}

pub fn create(engine: &Engine, tablet_id: u64) -> Result<()> {
    let schema = default_schema();
    engine.create_tablet(CreateTabletRequest {
        table_id: 7,
        partition_id: 8,
        tablet_id,
        schema_hash: schema.stable_hash(),
        schema,
    })
}

pub fn rows(stream: u64, n: usize) -> Vec<Row> {
    generate_rows(&default_schema(), 42, stream, n)
}

pub fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    walk(dir)
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}
