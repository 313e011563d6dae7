//! Backend nodes as separate processes: the `tabletsnap node` server, the
//! coordinator's RPC client, the cluster token, and `cluster start/stop`.

pub mod client;
pub mod heartbeat;
pub mod procs;
pub mod recovery;
pub mod server;

use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};

/// A resolver of S3 repository settings from `cluster`'s catalog and its
/// home's secret store.
pub fn s3_resolver(cluster: &std::sync::Arc<crate::cluster::Cluster>) -> client::RepoResolver {
    let weak = std::sync::Arc::downgrade(cluster);
    std::sync::Arc::new(move |repo: &crate::backend::RepoRef| {
        let c = weak
            .upgrade()
            .context("the cluster is closing; no repository settings")?;
        let properties = c
            .catalog()
            .repositories
            .get(&repo.name)
            .map(|r| r.properties.clone())
            .with_context(|| format!("repository '{}' is not in the catalog", repo.name))?;
        let secret = crate::secrets::load(c.home())?
            .get(&repo.name)
            .map(|s| s.expose().to_string());
        Ok(Some(crate::task::S3Access { properties, secret }))
    })
}

/// The cluster token's file in a home.
pub const TOKEN_FILE: &str = "cluster.token";

/// The token file of `home`.
pub fn token_path(home: &Path) -> PathBuf {
    home.join(TOKEN_FILE)
}

/// Reads the token of `home`, creating a random one (mode 0600) if there is none.
pub fn ensure_token(home: &Path) -> Result<String> {
    let path = token_path(home);
    if path.exists() {
        return read_token(&path);
    }
    let mut raw = [0u8; 32];
    {
        use std::io::Read;
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut raw))
            .context("reading random bytes for the cluster token")?;
    }
    let token = crate::task::to_hex(&raw);
    write_private(&path, token.as_bytes())?;
    Ok(token)
}

/// Reads a token file.
pub fn read_token(path: &Path) -> Result<String> {
    let t = std::fs::read_to_string(path)
        .with_context(|| format!("reading the cluster token {}", path.display()))?;
    let t = t.trim().to_string();
    if t.is_empty() {
        bail!("the cluster token {} is empty", path.display());
    }
    Ok(t)
}

/// Writes `bytes` to `path` readable by its owner only, atomically and
/// durably (temp file created 0600, fsync, rename, fsync the dir).
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    tabletsnap_durable::write_atomic(path, &tmp, bytes, tabletsnap_durable::Opts::PRIVATE)
        .with_context(|| format!("writing {}", path.display()))
}

/// Compares tokens in time independent of where they differ.
pub fn token_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether `p` is an absolute path inside `root` with no `..` in it.
pub fn is_inside(root: &Path, p: &Path) -> bool {
    p.is_absolute()
        && !p.components().any(|c| matches!(c, Component::ParentDir))
        && p.starts_with(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_outside_the_root_are_refused() {
        let root = Path::new("/n/be1");
        assert!(is_inside(root, Path::new("/n/be1/store0/snapshot/x")));
        assert!(!is_inside(root, Path::new("/n/be1/../be2/x")));
        assert!(!is_inside(root, Path::new("/n/be2/x")));
        assert!(!is_inside(root, Path::new("be1/x")));
    }

    #[test]
    fn token_is_private_and_stable() {
        let d = tempfile::tempdir().expect("tempdir");
        let a = ensure_token(d.path()).expect("token");
        assert_eq!(a.len(), 64);
        assert_eq!(ensure_token(d.path()).expect("token"), a);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(token_path(d.path()))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(token_eq(&a, &a) && !token_eq(&a, "x"));
    }
}
