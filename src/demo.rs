//! `tabletsnap demo`: the main job end to end on an embedded default. A
//! cluster of 3 backends gets a partitioned table with many tablets and
//! versions; it is backed up to a local repository and restored into a
//! second cluster that shares the repository; checksums must match.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::cluster::Cluster;
use crate::exec::{Output, Session};
use crate::job::JobRecord;
use crate::sql::render_table;

fn run_sql(s: &mut Session, text: &str) -> Result<Vec<Output>> {
    s.run_script(text)
        .with_context(|| format!("running: {text}"))
}

fn first_rows(out: &[Output]) -> Option<&crate::sql::ResultSet> {
    out.iter().find_map(|o| match o {
        Output::Rows(r) => Some(r),
        Output::Message(_) => None,
    })
}

fn secs(a: Option<u64>, b: Option<u64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) => format!("{:.2} s", (b.saturating_sub(a)) as f64 / 1000.0),
        _ => "-".into(),
    }
}

/// Runs the demo; returns whether the restore matched the source.
pub fn run(dir: Option<&Path>) -> Result<bool> {
    let tmp;
    let base = match dir {
        Some(d) => d.to_path_buf(),
        None => {
            tmp = tempfile::tempdir().context("making a temp dir")?;
            tmp.path().to_path_buf()
        }
    };
    let repo = base.join("repo");
    std::fs::create_dir_all(&repo).with_context(|| format!("creating {}", repo.display()))?;
    let repo_sql = format!(
        "CREATE REPOSITORY demo_repo ON LOCATION \"file://{}\"",
        repo.display()
    );
    println!(
        "== source cluster: 3 backends at {}",
        base.join("home_a").display()
    );
    let t0 = Instant::now();
    let a = Cluster::open(&base.join("home_a"), 3)?;
    let mut sa = Session::new(a, "root")?;
    run_sql(
        &mut sa,
        "CREATE DATABASE sales; USE sales;
         CREATE TABLE orders (id BIGINT, day DATE, region INT, amount DOUBLE, note VARCHAR(32))
           DUPLICATE KEY(id)
           PARTITION BY RANGE(day) (
             PARTITION p2023 VALUES LESS THAN (\"2024-01-01\"),
             PARTITION p2024 VALUES LESS THAN (\"2025-01-01\"),
             PARTITION p2025 VALUES LESS THAN (\"2026-01-01\"),
             PARTITION pmax VALUES LESS THAN MAXVALUE)
           DISTRIBUTED BY HASH(id) BUCKETS 16 PROPERTIES (\"replication_num\" = \"1\")",
    )?;
    for i in 0..20 {
        run_sql(
            &mut sa,
            &format!("INSERT INTO orders GENERATE 4000 ROWS SEED {i}"),
        )?;
    }
    let load_s = t0.elapsed().as_secs_f64();
    let parts = run_sql(&mut sa, "SHOW PARTITIONS FROM orders")?;
    if let Some(r) = first_rows(&parts) {
        print!("{}", render_table(r));
    }
    println!("loaded 80,000 rows as 20 versions on 64 tablets in {load_s:.2} s");
    run_sql(&mut sa, &repo_sql)?;
    let t = Instant::now();
    run_sql(
        &mut sa,
        "BACKUP SNAPSHOT sales.nightly TO demo_repo ON (orders)",
    )?;
    sa.wait_for_jobs();
    let backup_s = t.elapsed().as_secs_f64();
    let show = run_sql(&mut sa, "SHOW BACKUP FROM sales")?;
    if let Some(r) = first_rows(&show) {
        print!("{}", render_table(r));
    }
    let (timestamp, phases) = match sa.started_jobs().last().map(|h| h.record()) {
        Some(JobRecord::Backup(j)) => (
            j.timestamp.clone(),
            format!(
                "snapshot {}, upload {}, meta+info {}",
                secs(Some(j.create_time_ms), j.snapshot_finished_ms),
                secs(j.snapshot_finished_ms, j.upload_finished_ms),
                secs(j.upload_finished_ms, j.finished_ms)
            ),
        ),
        _ => anyhow::bail!("the backup job vanished"),
    };
    println!("backup took {backup_s:.2} s ({phases})");
    let source_sum = run_sql(&mut sa, "CHECKSUM TABLE orders")?;

    println!(
        "\n== target cluster: 3 backends at {}",
        base.join("home_b").display()
    );
    let b = Cluster::open(&base.join("home_b"), 3)?;
    let mut sb = Session::new(b, "root")?;
    run_sql(
        &mut sb,
        &format!("CREATE DATABASE sales; USE sales; {repo_sql}"),
    )?;
    let snaps = run_sql(&mut sb, "SHOW SNAPSHOT ON demo_repo")?;
    if let Some(r) = first_rows(&snaps) {
        print!("{}", render_table(r));
    }
    let t = Instant::now();
    run_sql(
        &mut sb,
        &format!(
            "RESTORE SNAPSHOT sales.nightly FROM demo_repo ON (orders)
             PROPERTIES (\"backup_timestamp\" = \"{timestamp}\", \"replication_num\" = \"3\")"
        ),
    )?;
    sb.wait_for_jobs();
    let restore_s = t.elapsed().as_secs_f64();
    let show = run_sql(&mut sb, "SHOW RESTORE FROM sales")?;
    if let Some(r) = first_rows(&show) {
        print!("{}", render_table(r));
    }
    if let Some(JobRecord::Restore(j)) = sb.started_jobs().last().map(|h| h.record()) {
        println!(
            "restore took {restore_s:.2} s (prepare {}, dirs {}, download {}, commit {})",
            secs(Some(j.create_time_ms), j.meta_prepared_ms),
            secs(j.meta_prepared_ms, j.snapshot_finished_ms),
            secs(j.snapshot_finished_ms, j.download_finished_ms),
            secs(j.download_finished_ms, j.finished_ms)
        );
    }
    let target_sum = run_sql(&mut sb, "CHECKSUM TABLE orders")?;
    let (sa_rows, sb_rows) = (first_rows(&source_sum), first_rows(&target_sum));
    println!("\n== checksums");
    if let Some(r) = sa_rows {
        print!("source {}", render_table(r));
    }
    if let Some(r) = sb_rows {
        print!("target {}", render_table(r));
    }
    let same = match (sa_rows, sb_rows) {
        (Some(x), Some(y)) => x.rows == y.rows,
        _ => false,
    };
    println!(
        "{}",
        if same {
            "restore matches the source"
        } else {
            "MISMATCH: restore differs from the source"
        }
    );
    Ok(same)
}
