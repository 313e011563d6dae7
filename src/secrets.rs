//! Repository secrets (S3 secret keys), kept out of the catalog in
//! `<home>/secrets.json`, mode 0600, written atomically. The catalog, SHOW
//! REPOSITORIES and job records never hold them: a job names its
//! repository, and the secret is looked up here when the repository is
//! opened.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use tabletsnap_transfer::Secret;

/// File name of the secret store inside a home.
pub const SECRETS_FILE: &str = "secrets.json";

/// Path of the secret store of `home`.
pub fn path(home: &Path) -> PathBuf {
    home.join(SECRETS_FILE)
}

/// The stored secrets by repository name (empty when there is no file).
pub fn load(home: &Path) -> Result<BTreeMap<String, Secret>> {
    let p = path(home);
    let text = match std::fs::read_to_string(&p) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", p.display())),
    };
    let raw: BTreeMap<String, String> = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a JSON map of secrets", p.display()))?;
    Ok(raw.into_iter().map(|(k, v)| (k, Secret::new(v))).collect())
}

/// Stores (`Some`) or removes (`None`) the secret of repository `name`.
pub fn set(home: &Path, name: &str, secret: Option<&Secret>) -> Result<()> {
    let mut all = load(home)?;
    match secret {
        Some(s) => all.insert(name.to_string(), s.clone()),
        None => all.remove(name),
    };
    let raw: BTreeMap<&str, &str> = all.iter().map(|(k, v)| (k.as_str(), v.expose())).collect();
    let bytes = serde_json::to_vec_pretty(&raw).context("encoding the secret store")?;
    write_private(&path(home), &bytes)
}

/// Writes `bytes` to `path` atomically (temp file, fsync, rename, fsync the
/// dir), the temp file created with mode 0600 so no other user can ever read it.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = tabletsnap_durable::parent_of(path);
    let tmp = dir.join(format!(".{SECRETS_FILE}.tmp-{}", std::process::id()));
    tabletsnap_durable::write_atomic(path, &tmp, bytes, tabletsnap_durable::Opts::PRIVATE)
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn stored_private_and_round_trips() {
        let tmp = tempfile::tempdir().expect("tempdir");
        set(tmp.path(), "oss", Some(&Secret::new("s3cr3t"))).expect("set");
        let mode = std::fs::metadata(path(tmp.path()))
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(load(tmp.path()).expect("load")["oss"].expose(), "s3cr3t");
        set(tmp.path(), "oss", None).expect("remove");
        assert!(load(tmp.path()).expect("load").is_empty());
    }
}
