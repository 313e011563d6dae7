//! Removing large trees off the caller's path. A released snapshot of a
//! whole W1 backup is 400k hard links: unlinking them took most of a BACKUP
//! job's commit step. A tree to discard is renamed into its store's trash
//! dir (one rename, on the store's filesystem, checked at open), which is
//! the release; one process-wide thread then deletes the trash copies in the
//! background. A crash leaves them in the trash, which every open empties.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::OnceLock;

use crate::engine::now_ms;
use crate::error::Result;
use crate::file;

static DELETER: OnceLock<Option<Sender<PathBuf>>> = OnceLock::new();
static SEQ: AtomicU64 = AtomicU64::new(0);

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
                }
            })
            .ok()
            .map(|_| tx)
    });
    let queued = tx.as_ref().is_some_and(|tx| tx.send(path.clone()).is_ok());
    if !queued {
        let _ = file::remove_dir_all_if_exists(&path);
    }
}
