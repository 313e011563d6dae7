//! Removing large trees off the caller's path. A released snapshot of a
//! whole W1 backup is 400k hard links: unlinking them took most of a BACKUP
//! job's commit step. A tree to discard is renamed into its store's trash
//! dir (one rename, on the store's filesystem, checked at open), which is
//! the release; one process-wide thread then deletes the trash copies in the
//! background. A crash leaves them in the trash, which every open empties.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Condvar, Mutex, OnceLock};

use crate::engine::now_ms;
use crate::error::Result;
use crate::file;

static DELETER: OnceLock<Option<Sender<PathBuf>>> = OnceLock::new();
static SEQ: AtomicU64 = AtomicU64::new(0);
/// Trash copies queued and not yet deleted, and its condition.
static PENDING: (Mutex<u64>, Condvar) = (Mutex::new(0), Condvar::new());

fn pending_add(delta: i64) {
    let (m, cv) = &PENDING;
    let mut n = m.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    *n = n.saturating_add_signed(delta);
    if *n == 0 {
        cv.notify_all();
    }
}

/// Blocks until every trash copy queued in this process so far is deleted:
/// a benchmark waits here so the next phase it times does not share the
/// disk and a core with the deletion of the previous one's released trees.
pub fn wait_for_discards() {
    let (m, cv) = &PENDING;
    let mut n = m.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    while *n > 0 {
        n = cv
            .wait(n)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
    }
}

/// The trash path `dir` moves to in `trash` (unique within the process).
pub(crate) fn trash_name(trash: &Path, dir: &Path) -> PathBuf {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    trash.join(format!(
        "discard.{name}.{}.{}",
        now_ms(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Moves `dir` into `trash` (not yet durable: the caller fsyncs both parents
/// once for a batch) and queues the trash copy for deletion. A missing `dir`
/// is fine.
pub(crate) fn discard(trash: &Path, dir: &Path) -> Result<()> {
    let to = trash_name(trash, dir);
    match std::fs::rename(dir, &to) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(crate::Error::io(dir, e)),
    }
    delete_later(to);
    Ok(())
}

/// Deletes `path` (a trash entry) on the background thread; inline when no
/// thread could be started. Failures are left for the next open's sweep.
pub(crate) fn delete_later(path: PathBuf) {
    let tx = DELETER.get_or_init(|| {
        let (tx, rx) = channel::<PathBuf>();
        std::thread::Builder::new()
            .name("trash-deleter".into())
            .spawn(move || {
                for p in rx {
                    let _ = file::remove_dir_all_if_exists(&p);
                    pending_add(-1);
                }
            })
            .ok()
            .map(|_| tx)
    });
    pending_add(1);
    let queued = tx.as_ref().is_some_and(|tx| tx.send(path.clone()).is_ok());
    if !queued {
        pending_add(-1);
        let _ = file::remove_dir_all_if_exists(&path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiting_for_discards_returns_once_the_trash_copies_are_gone() {
        let d = tempfile::tempdir().expect("tempdir");
        let trash = d.path().join("trash");
        std::fs::create_dir(&trash).expect("trash");
        for i in 0..8 {
            let dir = d.path().join(format!("t{i}"));
            std::fs::create_dir_all(dir.join("sub")).expect("dir");
            for f in 0..50 {
                std::fs::write(dir.join("sub").join(f.to_string()), b"x").expect("file");
            }
            discard(&trash, &dir).expect("discard");
            assert!(!dir.exists());
        }
        wait_for_discards();
        let left: Vec<_> = std::fs::read_dir(&trash).expect("trash").collect();
        assert!(left.is_empty(), "trash still holds {left:?}");
    }
}
