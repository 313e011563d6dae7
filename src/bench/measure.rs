//! Timing, peak memory and baseline commands for the benchmark.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Resets the process's peak RSS (VmHWM) so the next phase is measured alone.
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Peak RSS since the last reset, in MiB (VmHWM).
pub fn peak_rss_mib() -> f64 {
    status_mib("VmHWM:")
}

/// A `kB` field of /proc/self/status in MiB (0 when unreadable).
fn status_mib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Resident set now, in MiB (VmRSS), after returning free heap to the
/// kernel: what the process holds at rest.
pub fn rest_rss_mib() -> f64 {
    trim_heap();
    status_mib("VmRSS:")
}

/// Flushes dirty data before a timed operation (untimed), so no phase pays
/// for the writeback of the one before it: our barriers (syncfs) would
/// otherwise flush the previous baseline's unflushed copies.
pub fn settle() {
    let _ = Command::new("sync").status();
}

/// Waits out the filesystem's after-delete state (untimed): on ext4 without
/// a journal, a new inode skips every inode of its group freed within the
/// last writeback interval, checking each one's inode table block, so file
/// creation right after a mass delete is several times slower for about
/// that long (see README.md, "Where a small-file restore's time goes").
/// Flushes, then sleeps the interval (`vm.dirty_expire_centisecs`) and one
/// second more. Returns the seconds waited.
pub fn settle_after_delete() -> f64 {
    let t = Instant::now();
    settle();
    let centis = std::fs::read_to_string("/proc/sys/vm/dirty_expire_centisecs")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(3000)
        .min(12_000);
    std::thread::sleep(Duration::from_millis(centis * 10 + 1000));
    t.elapsed().as_secs_f64()
}

/// Time of a `sync` right after a baseline: its cost of durability.
pub fn sync_time() -> Duration {
    sync_sample().0
}

/// Wall time and CPU seconds of a `sync` right after a baseline.
pub fn sync_sample() -> (Duration, f64) {
    let c = children_cpu_s();
    let t = Instant::now();
    settle();
    (t.elapsed(), children_cpu_s() - c)
}

/// Returns heap freed by earlier phases to the OS, so peak RSS measures the phase.
pub fn trim_heap() {
    // SAFETY: malloc_trim only releases free memory held by glibc's allocator.
    unsafe {
        nix::libc::malloc_trim(0);
    }
}

/// Runs `f`, returning its value, the wall time and the peak RSS during it.
pub fn timed<T>(f: impl FnOnce() -> Result<T>) -> Result<(T, Duration, f64)> {
    timed_cpu(f).map(|(v, t, rss, _)| (v, t, rss))
}

/// [`timed`], and the CPU seconds (user + system, all threads) it took.
pub fn timed_cpu<T>(f: impl FnOnce() -> Result<T>) -> Result<(T, Duration, f64, f64)> {
    settle();
    trim_heap();
    reset_peak_rss();
    let c = self_cpu_s();
    let start = mono_s();
    let t = Instant::now();
    let v = f()?;
    let wall = t.elapsed();
    LAST_WINDOW.with(|w| w.set((start, mono_s())));
    Ok((v, wall, peak_rss_mib(), self_cpu_s() - c))
}

thread_local! {
    static LAST_WINDOW: std::cell::Cell<(f64, f64)> = const { std::cell::Cell::new((0.0, 0.0)) };
}

/// CLOCK_MONOTONIC in seconds: the clock `perf record -k CLOCK_MONOTONIC`
/// stamps samples with.
fn mono_s() -> f64 {
    let mut ts = nix::libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the struct it is given.
    if unsafe { nix::libc::clock_gettime(nix::libc::CLOCK_MONOTONIC, &mut ts) } != 0 {
        return 0.0;
    }
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

/// The CLOCK_MONOTONIC window of the last [`timed_cpu`] phase on this
/// thread, as `perf report --time START,END` takes it: a profile of a whole
/// bench run sliced to one phase.
pub fn last_window() -> String {
    let (a, b) = LAST_WINDOW.with(std::cell::Cell::get);
    format!("[perf --time {a:.3},{b:.3}]")
}

/// Whether an external command exists.
pub fn have(cmd: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {cmd} >/dev/null 2>&1"))
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs a baseline command (argv), failing with its stderr: its wall time
/// and the CPU seconds (user + system) it took.
pub fn run_cmd_cpu(argv: &[&str], cwd: Option<&Path>) -> Result<(Duration, f64)> {
    let mut c = Command::new(argv[0]);
    c.args(&argv[1..]);
    if let Some(d) = cwd {
        c.current_dir(d);
    }
    settle();
    // Waited-for children only: the command is the one child reaped while timed.
    let cpu = children_cpu_s();
    let t = Instant::now();
    let out = c
        .output()
        .with_context(|| format!("running {}", argv.join(" ")))?;
    let el = t.elapsed();
    let cpu = children_cpu_s() - cpu;
    if !out.status.success() {
        bail!(
            "{} failed: {}",
            argv.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok((el, cpu))
}

/// Median of durations.
pub fn median(v: &[Duration]) -> Duration {
    let mut s = v.to_vec();
    s.sort();
    s.get(s.len() / 2).copied().unwrap_or_default()
}

/// Moves `path` into the trash dir (never delete before timing: on this ext4 a
/// mass delete slows file creation for minutes).
pub fn trash(path: &Path, trash_dir: &Path, tag: &str) -> Result<()> {
    if !path.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(trash_dir)?;
    let dst = trash_dir.join(format!("{tag}.{}", tabletsnap_engine::engine::now_ms()));
    std::fs::rename(path, &dst).with_context(|| format!("moving {} to the trash", path.display()))
}

/// CPU seconds (user + system) this process has used, all threads.
pub fn self_cpu_s() -> f64 {
    rusage_cpu_s(nix::libc::RUSAGE_SELF)
}

/// CPU seconds (user + system) of this process's children that have been
/// waited for.
pub fn children_cpu_s() -> f64 {
    rusage_cpu_s(nix::libc::RUSAGE_CHILDREN)
}

fn rusage_cpu_s(who: nix::libc::c_int) -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut ru: nix::libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; `who` is RUSAGE_SELF or RUSAGE_CHILDREN.
    if unsafe { nix::libc::getrusage(who, &mut ru) } != 0 {
        return 0.0;
    }
    let tv = |t: nix::libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// CPU seconds (user + system) process `pid` has used, from
/// `/proc/<pid>/stat`; `None` once it is gone.
pub fn proc_cpu_s(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesized command name: state is field 3, so
    // utime (14) and stime (15) are the 12th and 13th after it.
    let (_, rest) = stat.rsplit_once(')')?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    // SAFETY: sysconf reads a constant.
    let tick = unsafe { nix::libc::sysconf(nix::libc::_SC_CLK_TCK) };
    Some((utime + stime) / tick.max(1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_seconds_grow_with_work() {
        let me = std::process::id();
        let (a, p) = (self_cpu_s(), proc_cpu_s(me).expect("own stat"));
        // Busy work until the kernel's tick-grained counter moves.
        let mut x = 0u64;
        while proc_cpu_s(me).expect("own stat") < p + 0.02 {
            for i in 0..100_000u64 {
                x = x.wrapping_mul(31).wrapping_add(i);
            }
            std::hint::black_box(x);
        }
        assert!(self_cpu_s() > a);
        assert_eq!(proc_cpu_s(u32::MAX), None);
    }
}
