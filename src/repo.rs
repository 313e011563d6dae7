//! Repository locations: `file:///abs/path` (a local or mounted filesystem)
//! `mem://name` (process-wide in-memory store, for tests and demos) and
//! `s3://bucket/prefix` (an S3-compatible store; its settings come from the
//! repository's PROPERTIES and secret, registered with [`register_s3`]
//! when the repository is created or its cluster opens).
//! Tests may put a wrapped backend (e.g. `Faulty`) in front of a location.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{anyhow, bail, Context, Result};
use tabletsnap_transfer::{Backend, LocalFs, Memory, Repository, S3Config, Secret, S3};

fn registry() -> &'static Mutex<HashMap<String, Arc<dyn Backend>>> {
    static R: OnceLock<Mutex<HashMap<String, Arc<dyn Backend>>>> = OnceLock::new();
    R.get_or_init(|| Mutex::new(HashMap::new()))
}

/// S3 backends by location, made from registered settings.
fn s3_registry() -> &'static Mutex<HashMap<String, Arc<S3>>> {
    static R: OnceLock<Mutex<HashMap<String, Arc<S3>>>> = OnceLock::new();
    R.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Whether `location` names an S3 store.
pub fn is_s3(location: &str) -> bool {
    location.starts_with("s3://") || location.starts_with("s3a://")
}

/// Makes the S3 location of repository `name` usable in this process: its
/// PROPERTIES (StarRocks names: `aws.s3.endpoint`, ...) and its secret key
/// from the secret store (else `AWS_SECRET_ACCESS_KEY`). Sends nothing.
pub fn register_s3(
    name: &str,
    location: &str,
    properties: &[(String, String)],
    secret: Option<&Secret>,
) -> Result<()> {
    let location = parse_location(location)?;
    let mut props = properties.to_vec();
    if let Some(s) = secret {
        props.push((
            tabletsnap_transfer::backend::s3::PROP_SECRET_KEY.to_string(),
            s.expose().to_string(),
        ));
    }
    let mut cfg = S3Config::from_properties(&location, &props)
        .map_err(|e| anyhow!("repository '{name}': {e}"))?;
    cfg.user = format!("repository '{name}'");
    let backend = S3::new(cfg).map_err(|e| anyhow!("repository '{name}': {e}"))?;
    s3_registry()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(location.clone(), Arc::new(backend));
    s3_unusable()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&location);
    Ok(())
}

/// Registers every S3 repository of a catalog, with the secrets of `home`.
/// One whose settings are incomplete (say, credentials expected from an
/// environment variable that is not set) is left out: opening it says why.
pub fn register_catalog_repositories<'a>(
    home: &std::path::Path,
    repos: impl IntoIterator<Item = &'a crate::catalog::RepoDef>,
) -> Result<()> {
    let secrets = crate::secrets::load(home)?;
    for r in repos {
        if is_s3(&r.location) {
            if let Err(e) = register_s3(&r.name, &r.location, &r.properties, secrets.get(&r.name)) {
                // Kept to say why when the repository is used.
                if let Ok(location) = parse_location(&r.location) {
                    s3_unusable()
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(location, format!("{e}"));
                }
            }
        }
    }
    Ok(())
}

/// Why S3 locations of the catalog could not be set up in this process.
fn s3_unusable() -> &'static Mutex<HashMap<String, String>> {
    static R: OnceLock<Mutex<HashMap<String, String>>> = OnceLock::new();
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
        let trimmed = path.trim_end_matches('/');
        if trimmed.is_empty() {
            bail!("repository location '{location}' is the filesystem root: name a directory, file:///abs/path");
        }
        return Ok(format!("file://{trimmed}"));
    }
    if let Some(name) = location.strip_prefix("mem://") {
        if name.is_empty() || name.contains('/') {
            bail!("repository location '{location}': use mem://<name> with a plain name");
        }
        return Ok(location.to_string());
    }
    if is_s3(location) {
        let (bucket, prefix) = tabletsnap_transfer::backend::s3::parse_location(location)?;
        return Ok(format!("s3://{bucket}/{prefix}")
            .trim_end_matches('/')
            .to_string());
    }
    bail!(
        "unsupported repository location '{location}': use \"file:///abs/path\", \
         \"s3://bucket/prefix\" or \"mem://name\""
    )
}

/// Whether to make a location that does not exist yet.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Open,
    Create,
}

/// The storage behind an existing location; never creates it. A missing
/// directory (say, an unmounted mount point) or a `mem://` store no CREATE
/// REPOSITORY made in this process is an error.
pub fn backend_for(location: &str) -> Result<Arc<dyn Backend>> {
    location_backend(location, Mode::Open)
}

fn location_backend(location: &str, mode: Mode) -> Result<Arc<dyn Backend>> {
    let location = parse_location(location)?;
    let mut reg = registry().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(b) = reg.get(&location) {
        return Ok(Arc::clone(b));
    }
    if is_s3(&location) {
        let s3 = s3_registry()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&location)
            .cloned()
            .ok_or_else(|| {
                let why = s3_unusable()
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&location)
                    .cloned();
                // Settings do not appear by trying again: permanent.
                anyhow::Error::new(tabletsnap_transfer::Error::Config(match why {
                    Some(why) => format!(
                        "{why} (a repository created with its keys in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY needs them in every process that uses it)"
                    ),
                    None => format!(
                        "location {location} has no S3 settings in this process: give \
                         CREATE REPOSITORY the PROPERTIES \"aws.s3.endpoint\", \"aws.s3.access_key\" \
                         and \"aws.s3.secret_key\" (or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
                    ),
                }))
            })?;
        if mode == Mode::Create {
            // Refuse a dead endpoint, a missing bucket or bad keys now,
            // not at the first backup.
            s3.check_bucket()?;
        }
        return Ok(s3 as Arc<dyn Backend>);
    }
    if let Some(path) = location.strip_prefix("file://") {
        // Puts skip fsync; the uploader's barriers (syncfs) before the
        // manifest and before the info make them durable in one go.
        let durability = tabletsnap_transfer::Durability::Batched;
        let fs = match mode {
            Mode::Open => LocalFs::open(path, durability),
            Mode::Create => LocalFs::create(path, durability),
        };
        return match fs {
            Ok(fs) => Ok(Arc::new(fs)),
            Err(tabletsnap_transfer::Error::LocationNotFound { .. }) => {
                bail!("location {location} does not exist (is the filesystem mounted?)")
            }
            Err(e) => Err(e).with_context(|| format!("opening repository location {location}")),
        };
    }
    if mode == Mode::Open {
        bail!(
            "location {location} does not exist (mem:// stores live in one process; \
             CREATE REPOSITORY in this process makes one)"
        );
    }
    // mem:// stores live as long as the process, shared by every home in it.
    let b: Arc<dyn Backend> = Arc::new(Memory::new());
    reg.insert(location, Arc::clone(&b));
    Ok(b)
}

/// Opens the existing repository `name` at `location`. Never creates
/// anything: a missing location or repository is an error that says so.
pub fn open_repository(name: &str, location: &str) -> Result<Repository> {
    let backend = location_backend(location, Mode::Open)
        // Context, not a new message: the chain keeps its types (a job
        // tells a permanent error by them) and is said once.
        .with_context(|| format!("repository '{name}'"))?;
    match with_retries(|| Repository::open(Arc::clone(&backend), name)) {
        Ok(repo) => Ok(repo),
        Err(tabletsnap_transfer::Error::RepositoryNotFound { .. }) => bail!(
            "repository '{name}': location {location} holds no repository '{name}' \
             (is the filesystem mounted? CREATE REPOSITORY creates one)"
        ),
        Err(e) => Err(e).with_context(|| format!("opening repository '{name}' at {location}")),
    }
}

/// Creates the repository `name` at `location` (the directory, or the
/// `mem://` store, and the repository's info object), or opens it if it
/// exists already (another cluster's: that is how two clusters share one).
/// Only CREATE REPOSITORY calls this. The name is checked before anything
/// is made, so a refused name leaves nothing behind.
pub fn create_repository(name: &str, location: &str) -> Result<Repository> {
    tabletsnap_transfer::names::validate_component("repository name", name)?;
    let backend = location_backend(location, Mode::Create)
        // Context, not a new message: the chain keeps its types (a job
        // tells a permanent error by them) and is said once.
        .with_context(|| format!("repository '{name}'"))?;
    with_retries(|| Repository::open_or_create(Arc::clone(&backend), name))
        .with_context(|| format!("creating repository '{name}' at {location}"))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn message(r: Result<Repository>) -> String {
        match r {
            Ok(_) => panic!("expected an error"),
            Err(e) => format!("{e:#}"),
        }
    }

    #[test]
    fn opening_never_creates_a_location_or_a_repository() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mnt = tmp.path().join("mnt/x");
        let loc = format!("file://{}", mnt.display());
        let msg = message(open_repository("r", &loc));
        assert!(
            msg.contains(&format!(
                "repository 'r': location {loc} does not exist (is the filesystem mounted?)"
            )),
            "{msg}"
        );
        assert!(
            !tmp.path().join("mnt").exists(),
            "opening created the location"
        );

        // An empty mount point directory: the location is there, the repository is not.
        std::fs::create_dir_all(&mnt).expect("mkdir");
        let msg = message(open_repository("r", &loc));
        assert!(msg.contains("holds no repository 'r'"), "{msg}");
        assert!(std::fs::read_dir(&mnt).expect("read_dir").next().is_none());

        create_repository("r", &loc).expect("create");
        open_repository("r", &loc).expect("open after create");
        create_repository("r", &loc).expect("create again opens the existing one");
    }

    #[test]
    fn a_refused_name_creates_nothing() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("new");
        let loc = format!("file://{}", dir.display());
        for bad in ["../x", ".hidden", "a/b", ""] {
            assert!(create_repository(bad, &loc).is_err(), "{bad:?} accepted");
        }
        assert!(!dir.exists(), "a refused name created the location");
        assert!(create_repository("bad/name", "mem://repo_unit_bad_name").is_err());
        assert!(backend_for("mem://repo_unit_bad_name").is_err());
    }

    #[test]
    fn a_mem_store_exists_only_once_created() {
        let loc = "mem://repo_unit_never_created";
        let msg = message(open_repository("r", loc));
        assert!(msg.contains("does not exist"), "{msg}");
        create_repository("r", loc).expect("create");
        open_repository("r", loc).expect("open");
        let msg = message(open_repository("other", loc));
        assert!(msg.contains("holds no repository 'other'"), "{msg}");
    }
}
