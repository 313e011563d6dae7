//! `--workload incremental`: W1 (scaled) as 100 partitions, backed up and
//! restored into a second cluster; then, in each of `--rounds` rounds, 1% of
//! the tablets (one partition) get one new version, and the incremental
//! backup and the catch-up restore of that change are timed (medians of the
//! rounds) against the full jobs, and VERIFY of the full backup. Goals (issue 14): the
//! incremental backup ≤ 5% of the full backup's time and its uploaded bytes
//! ≤ 1.5× the changed bytes; the catch-up restore ≤ 5% of the full restore;
//! VERIFY ≥ 1 GB/s.

use std::path::Path;

use anyhow::{bail, Result};
use tabletsnap_engine::WorkloadSpec;

use super::measure::{median, timed, trash};
use super::phases::row;
use super::{BenchOptions, Row};
use crate::cluster::Cluster;
use crate::exec::Session;
use crate::job::JobRecord;

/// Partitions of the table: one of them is 1% of the tablets.
const PARTITIONS: u64 = 100;

/// One round: a change, its incremental backup and its catch-up restore.
struct Round {
    changed: u64,
    backup_t: std::time::Duration,
    backup_rss: f64,
    phases: String,
    data: crate::job::backup::DataCounts,
    catch_up_t: std::time::Duration,
    catch_up_rss: f64,
    catch_up_files: u64,
    catch_up_bytes: u64,
}

fn last_backup(s: &Session) -> Result<crate::job::backup::BackupJob> {
    match s.started_jobs().last().map(|h| h.record()) {
        Some(JobRecord::Backup(j)) if j.state.name() == "FINISHED" => Ok(j),
        other => bail!("the backup did not finish: {other:?}"),
    }
}

/// `snapshot a ms, upload b ms, commit c ms` of a finished backup job: where
/// its time went.
fn backup_phases(j: &crate::job::backup::BackupJob) -> String {
    let snap = j.snapshot_finished_ms.unwrap_or(0);
    let up = j.upload_finished_ms.unwrap_or(snap);
    let end = j.finished_ms.unwrap_or(up);
    format!(
        "snapshot {} ms, upload {} ms, commit {} ms",
        snap.saturating_sub(j.create_time_ms),
        up.saturating_sub(snap),
        end.saturating_sub(up)
    )
}

fn restore_finished(s: &Session) -> Result<()> {
    match s.started_jobs().last().map(|h| h.record()) {
        Some(JobRecord::Restore(j)) if j.state.name() == "FINISHED" => Ok(()),
        other => bail!("the restore did not finish: {other:?}"),
    }
}

/// Bytes of the segment files of partition `p0`'s rowsets above `base`
/// on cluster `s`: the data the change added.
fn changed_bytes(s: &Session, base: u64) -> Result<u64> {
    let cat = s.cluster().catalog().clone();
    let t = cat.table("d", "t")?;
    let p = t.partition("p0").ok_or_else(|| anyhow::anyhow!("no p0"))?;
    let mut bytes = 0;
    for tab in &p.tablets {
        let be = s.cluster().local_backend(tab.replicas[0])?;
        let m = be.engine().tablet_meta(tab.id)?;
        for rs in m.rowsets.iter().filter(|r| r.start_version > base) {
            bytes += rs.data_size;
        }
    }
    Ok(bytes)
}

/// Runs the incremental workload and returns its rows.
pub fn run(opts: &BenchOptions, trash_dir: &Path) -> Result<Vec<Row>> {
    let spec = WorkloadSpec::w1().scaled(opts.scale);
    let name = "W1 incremental";
    let base = opts.dir.join("w1_incremental");
    trash(&base, trash_dir, "old")?;
    let buckets = (spec.tablets / PARTITIONS).max(1);
    let tablets = buckets * PARTITIONS;
    println!(
        "== {name}: {PARTITIONS} partitions x {buckets} buckets x {} versions, then 1 partition ({buckets} tablets) gets one more",
        spec.versions
    );
    let repo = base.join("repo");
    std::fs::create_dir_all(&repo)?;
    let repo_sql = format!(
        "CREATE REPOSITORY r ON LOCATION \"file://{}\"",
        repo.display()
    );
    let partitions: Vec<String> = (0..PARTITIONS)
        .map(|i| {
            if i + 1 == PARTITIONS {
                format!("PARTITION p{i} VALUES LESS THAN MAXVALUE")
            } else {
                format!("PARTITION p{i} VALUES LESS THAN (\"{}\")", (i + 1) * 1000)
            }
        })
        .collect();
    let mut sa = Session::new(Cluster::open(&base.join("a"), 3)?, "root")?;
    sa.run_script(&format!(
        "CREATE DATABASE d; USE d; {repo_sql};
         CREATE TABLE t (id BIGINT, k INT, v VARCHAR(16)) DUPLICATE KEY(id) PARTITION BY RANGE(k) ({})
         DISTRIBUTED BY HASH(id) BUCKETS {buckets} PROPERTIES (\"replication_num\" = \"1\")",
        partitions.join(", ")
    ))?;
    let rows_per_version = spec.rows_per_version as u64;
    let (_, load_t, _) = timed(|| {
        for v in 0..spec.versions {
            sa.run_script(&format!(
                "INSERT INTO t GENERATE {} ROWS SEED {v}",
                tablets * rows_per_version
            ))?;
        }
        Ok(())
    })?;
    println!("   loaded in {:.2} s", load_t.as_secs_f64());

    let (_, full_backup_t, full_backup_rss) = timed(|| {
        sa.run_script("BACKUP SNAPSHOT full TO r")?;
        sa.wait_for_jobs();
        Ok(())
    })?;
    let full = last_backup(&sa)?;
    let full_data = full.data.unwrap_or_default();
    let full_bytes = full_data.new_bytes + full_data.reused_bytes;
    let full_files = full_data.new_files + full_data.reused_files;

    let mut sb = Session::new(Cluster::open(&base.join("b"), 3)?, "root")?;
    sb.run_script(&format!("CREATE DATABASE d; USE d; {repo_sql}"))?;
    let (_, full_restore_t, full_restore_rss) = timed(|| {
        sb.run_script(&format!(
            "RESTORE SNAPSHOT full FROM r PROPERTIES (\"backup_timestamp\" = \"{}\")",
            full.timestamp
        ))?;
        sb.wait_for_jobs();
        Ok(())
    })?;
    restore_finished(&sb)?;

    // Rounds of: one new version on the tablets of one partition (1%), the
    // incremental backup of it, and its catch-up restore onto cluster b.
    let mut rounds: Vec<Round> = Vec::new();
    for r in 0..opts.rounds.max(1) as u64 {
        let v_old = spec.versions + 1 + r;
        sa.run_script(&format!(
            "INSERT INTO t PARTITION (p0) GENERATE {} ROWS SEED {}",
            buckets * rows_per_version,
            1000 + r
        ))?;
        let changed = changed_bytes(&sa, v_old)?;
        let (_, backup_t, backup_rss) = timed(|| {
            sa.run_script("BACKUP SNAPSHOT later TO r")?;
            sa.wait_for_jobs();
            Ok(())
        })?;
        let inc = last_backup(&sa)?;
        let data = inc.data.unwrap_or_default();
        let (_, catch_up_t, catch_up_rss) = timed(|| {
            sb.run_script(&format!(
                "RESTORE SNAPSHOT later FROM r PROPERTIES (\"backup_timestamp\" = \"{}\", \"catch_up\" = \"true\")",
                inc.timestamp
            ))?;
            sb.wait_for_jobs();
            Ok(())
        })?;
        restore_finished(&sb)?;
        let done = |f: fn(&crate::job::Progress) -> u64| {
            sb.started_jobs().last().map_or(0, |h| f(&h.progress))
        };
        let round = Round {
            changed,
            backup_t,
            backup_rss,
            phases: backup_phases(&inc),
            data,
            catch_up_t,
            catch_up_rss,
            catch_up_files: done(|p| p.files_done.load(std::sync::atomic::Ordering::Relaxed)),
            catch_up_bytes: done(|p| p.bytes_done.load(std::sync::atomic::Ordering::Relaxed)),
        };
        if sa.run_script("CHECKSUM TABLE t")? != sb.run_script("CHECKSUM TABLE t")? {
            bail!("{name}: the caught-up table differs from the source after round {r}");
        }
        println!(
            "   round {r}: incremental BACKUP {:.3} s ({}; uploaded {} files, {} bytes for {} changed: {:.2}x), catch-up RESTORE {:.3} s ({} files)",
            round.backup_t.as_secs_f64(),
            round.phases,
            round.data.new_files,
            round.data.new_bytes,
            round.changed,
            round.data.new_bytes as f64 / round.changed.max(1) as f64,
            round.catch_up_t.as_secs_f64(),
            round.catch_up_files
        );
        rounds.push(round);
    }
    let inc_times: Vec<std::time::Duration> = rounds.iter().map(|r| r.backup_t).collect();
    let catch_up_times: Vec<std::time::Duration> = rounds.iter().map(|r| r.catch_up_t).collect();
    let inc_backup_t = median(&inc_times);
    let catch_up_t = median(&catch_up_times);
    // The round whose backup is the median one stands for the others.
    let mid = rounds
        .iter()
        .find(|r| r.backup_t == inc_backup_t)
        .or(rounds.first())
        .ok_or_else(|| anyhow::anyhow!("{name}: no round ran"))?;
    let inc_data = mid.data;
    let changed = mid.changed;
    let inc_backup_rss = rounds.iter().map(|r| r.backup_rss).fold(0.0, f64::max);
    let catch_up_rss = rounds.iter().map(|r| r.catch_up_rss).fold(0.0, f64::max);
    let (catch_up_files, catch_up_bytes) = (mid.catch_up_files, mid.catch_up_bytes);

    let (_, verify_t, verify_rss) = timed(|| {
        sa.run_script(&format!(
            "VERIFY SNAPSHOT full ON r WHERE TIMESTAMP = \"{}\"",
            full.timestamp
        ))?;
        Ok(())
    })?;

    let pct = |a: std::time::Duration, b: std::time::Duration| {
        100.0 * a.as_secs_f64() / b.as_secs_f64().max(1e-9)
    };
    println!(
        "   full BACKUP {:.2} s, incremental BACKUP {:.3} s (median of {} rounds: {:.1}% of full, goal <= 5%)",
        full_backup_t.as_secs_f64(),
        inc_backup_t.as_secs_f64(),
        rounds.len(),
        pct(inc_backup_t, full_backup_t)
    );
    println!(
        "   full BACKUP: {}; incremental (median round): {}",
        backup_phases(&full),
        mid.phases
    );
    println!(
        "   uploaded {} files, {} bytes for {changed} changed segment bytes ({:.2}x, goal <= 1.5x); reused {} files, {} bytes",
        inc_data.new_files,
        inc_data.new_bytes,
        inc_data.new_bytes as f64 / changed.max(1) as f64,
        inc_data.reused_files,
        inc_data.reused_bytes
    );
    println!(
        "   full RESTORE {:.2} s, catch-up RESTORE {:.3} s (median: {:.1}% of full, goal <= 5%), downloaded {catch_up_files} files, {catch_up_bytes} bytes",
        full_restore_t.as_secs_f64(),
        catch_up_t.as_secs_f64(),
        pct(catch_up_t, full_restore_t)
    );
    println!(
        "   VERIFY {full_bytes} bytes in {:.3} s: {:.0} MB/s (goal >= 1000)",
        verify_t.as_secs_f64(),
        full_bytes as f64 / 1e6 / verify_t.as_secs_f64().max(1e-9)
    );
    drop((sa, sb));
    trash(&base, trash_dir, "incremental")?;
    let full_b = [full_backup_t];
    let full_r = [full_restore_t];
    Ok(vec![
        row(
            name,
            "full BACKUP job",
            &[full_backup_t],
            "-",
            None,
            (full_files, full_bytes),
            full_backup_rss,
        ),
        row(
            name,
            "incr BACKUP job",
            &inc_times,
            "full BACKUP",
            Some(&full_b),
            (inc_data.new_files, inc_data.new_bytes),
            inc_backup_rss,
        ),
        row(
            name,
            "full RESTORE job",
            &[full_restore_t],
            "-",
            None,
            (full_files, full_bytes),
            full_restore_rss,
        ),
        row(
            name,
            "catch-up RESTORE",
            &catch_up_times,
            "full RESTORE",
            Some(&full_r),
            (catch_up_files, catch_up_bytes),
            catch_up_rss,
        ),
        row(
            name,
            "VERIFY",
            &[verify_t],
            "-",
            None,
            (full_files, full_bytes),
            verify_rss,
        ),
    ])
}
