//! Repository locations: `file:///abs/path` (a local or mounted filesystem)
//! and `mem://name` (process-wide in-memory store, for tests and demos).
//! Tests may put a wrapped backend (e.g. `Faulty`) in front of a location.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{bail, Context, Result};
use tabletsnap_transfer::{Backend, LocalFs, Memory, Repository};

fn registry() -> &'static Mutex<HashMap<String, Arc<dyn Backend>>> {
    static R: OnceLock<Mutex<HashMap<String, Arc<dyn Backend>>>> = OnceLock::new();
    R.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Serves `location` from `backend` in this process (fault injection, tests).
pub fn set_backend_override(location: &str, backend: Arc<dyn Backend>) {
    registry()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(location.to_string(), backend);
}

/// Removes an override set by [`set_backend_override`].
pub fn clear_backend_override(location: &str) {
    registry()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(location);
}

/// Checks a location string and returns its canonical form.
pub fn parse_location(location: &str) -> Result<String> {
    if let Some(path) = location.strip_prefix("file://") {
        let p = PathBuf::from(path);
        if !p.is_absolute() {
            bail!("repository location '{location}' must be an absolute path: file:///abs/path");
        }
        if p.components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            bail!("repository location '{location}' must not contain '..'");
        }
        return Ok(location.trim_end_matches('/').to_string());
    }
    if let Some(name) = location.strip_prefix("mem://") {
        if name.is_empty() || name.contains('/') {
            bail!("repository location '{location}': use mem://<name> with a plain name");
        }
        return Ok(location.to_string());
    }
    bail!(
        "unsupported repository location '{location}': use \"file:///abs/path\" or \"mem://name\""
    )
}

/// The storage behind a location.
pub fn backend_for(location: &str) -> Result<Arc<dyn Backend>> {
    let location = parse_location(location)?;
    let mut reg = registry().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(b) = reg.get(&location) {
        return Ok(Arc::clone(b));
    }
    if let Some(path) = location.strip_prefix("file://") {
        let b: Arc<dyn Backend> = Arc::new(
            // Puts skip fsync; the uploader's barriers (syncfs) before the
            // manifest and before the info make them durable in one go.
            LocalFs::with_durability(path, tabletsnap_transfer::Durability::Batched)
                .with_context(|| format!("opening repository location {location}"))?,
        );
        return Ok(b);
    }
    // mem:// stores live as long as the process, shared by every home in it.
    let b: Arc<dyn Backend> = Arc::new(Memory::new());
    reg.insert(location, Arc::clone(&b));
    Ok(b)
}

/// Opens (creating if new) the repository `name` at `location`.
pub fn open_repository(name: &str, location: &str) -> Result<Repository> {
    let backend = backend_for(location)?;
    with_retries(|| Repository::open_or_create(Arc::clone(&backend), name))
        .with_context(|| format!("opening repository '{name}' at {location}"))
}

/// Runs a small repository read, retrying transient errors and checksum or
/// size mismatches (which may be corruption in transit: a re-read tells)
/// a bounded number of times with capped exponential backoff.
pub fn with_retries<T>(
    mut f: impl FnMut() -> tabletsnap_transfer::Result<T>,
) -> tabletsnap_transfer::Result<T> {
    use tabletsnap_transfer::Error as E;
    const ATTEMPTS: u32 = 5;
    let mut delay = std::time::Duration::from_millis(50);
    let mut attempt = 1;
    loop {
        match f() {
            Ok(v) => return Ok(v),
            Err(e)
                if attempt < ATTEMPTS
                    && (e.is_retryable()
                        || matches!(e, E::ChecksumMismatch { .. } | E::SizeMismatch { .. })) =>
            {
                std::thread::sleep(delay);
                delay = (delay * 2).min(std::time::Duration::from_secs(2));
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}
