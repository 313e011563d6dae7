//! Passwords: stored only as mysql_native_password's double SHA-1
//! (`*` + hex of SHA1(SHA1(pw)), as MySQL's `authentication_string`), in
//! `<home>/users.json`, mode 0600, apart from the catalog (which keeps who
//! exists and who is an admin).
//!
//! A user without an entry has the empty password: that is how homes made
//! before passwords existed open (root with an empty password until
//! `SET PASSWORD`), and how `sql`/`shell` make a home when
//! `TABLETSNAP_ROOT_PASSWORD` is not set, like a new StarRocks cluster.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};
use tabletsnap_engine::file;

use crate::errcode::{coded, ErrorCode};

/// File name of the password file inside a home.
pub const USERS_FILE: &str = "users.json";

/// The environment variable with root's password: read when a home is
/// created, and by `sql`/`shell` as root's password when `--password` is not given.
pub const ROOT_PASSWORD_ENV: &str = "TABLETSNAP_ROOT_PASSWORD";

/// A password in memory; Debug and Display print `***`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Password(String);

impl Password {
    /// Wraps a password.
    pub fn new(p: impl Into<String>) -> Password {
        Password(p.into())
    }

    /// The password itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl std::fmt::Display for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct UsersFile {
    format_version: u32,
    /// User name to `*HEX` double SHA-1; absent or empty: no password.
    native: BTreeMap<String, String>,
}

fn sha1(parts: &[&[u8]]) -> [u8; 20] {
    let mut h = Sha1::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

fn unhex(s: &str) -> Option<[u8; 20]> {
    let s = s.strip_prefix('*')?;
    if s.len() != 40 {
        return None;
    }
    let mut out = [0u8; 20];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// MySQL's `PASSWORD('pw')`: `*` + uppercase hex of SHA1(SHA1(pw)); empty for an empty password.
pub fn native_hash(password: &Password) -> String {
    if password.0.is_empty() {
        return String::new();
    }
    let stage1 = sha1(&[password.0.as_bytes()]);
    format!("*{}", hex_upper(&sha1(&[&stage1])))
}

/// Checks a mysql_native_password scramble: the client sent
/// SHA1(pw) XOR SHA1(salt + SHA1(SHA1(pw))).
pub fn check_scramble(stored: &str, salt: &[u8], response: &[u8]) -> bool {
    if stored.is_empty() {
        return response.is_empty();
    }
    let (Some(stage2), Ok(response)) = (unhex(stored), <[u8; 20]>::try_from(response)) else {
        return false;
    };
    let mask = sha1(&[salt, &stage2]);
    let mut stage1 = [0u8; 20];
    for i in 0..20 {
        stage1[i] = response[i] ^ mask[i];
    }
    sha1(&[&stage1]) == stage2
}

/// Random bytes from the kernel.
pub fn random_bytes(n: usize) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .context("reading /dev/urandom")?;
    Ok(buf)
}

/// A new random password of 20 letters and digits.
pub fn generate_password() -> Result<Password> {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let bytes = random_bytes(20)?;
    Ok(Password(
        bytes
            .iter()
            .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
            .collect(),
    ))
}

/// The password store of one home.
#[derive(Debug)]
pub struct Passwords {
    path: PathBuf,
    file: UsersFile,
}

impl Passwords {
    /// Reads `<home>/users.json` (absent: nobody has a password).
    pub fn load(home: &Path) -> Result<Passwords> {
        let path = home.join(USERS_FILE);
        let file = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .with_context(|| format!("reading the password file {}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => UsersFile {
                format_version: 1,
                native: BTreeMap::new(),
            },
            Err(e) => {
                return Err(e).with_context(|| format!("reading {}", path.display()));
            }
        };
        Ok(Passwords { path, file })
    }

    /// The stored double SHA-1 of `user` (empty: no password).
    pub fn native(&self, user: &str) -> &str {
        self.file.native.get(user).map_or("", String::as_str)
    }

    /// Sets (or, with an empty password, clears) `user`'s password and saves.
    pub fn set(&mut self, user: &str, password: &Password) -> Result<()> {
        let hash = native_hash(password);
        if hash.is_empty() {
            self.file.native.remove(user);
        } else {
            self.file.native.insert(user.to_string(), hash);
        }
        self.save()
    }

    /// Forgets `user`'s password and saves.
    pub fn remove(&mut self, user: &str) -> Result<()> {
        if self.file.native.remove(user).is_some() {
            self.save()?;
        }
        Ok(())
    }

    /// Whether `password` is `user`'s.
    pub fn verify(&self, user: &str, password: &Password) -> bool {
        native_hash(password) == self.native(user)
    }

    fn save(&self) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(&self.file).context("encoding the password file")?;
        // The temp file is created 0600 before anything is written to it, so
        // no hash is ever readable by others, even for a moment.
        tabletsnap_durable::write_atomic(
            &self.path,
            &file::tmp_path(&self.path),
            &bytes,
            tabletsnap_durable::Opts::PRIVATE,
        )
        .with_context(|| format!("writing {}", self.path.display()))?;
        Ok(())
    }
}

/// Checks `user`'s password for a command-line session; a mismatch is 1045.
pub fn authenticate(
    cluster: &crate::cluster::Cluster,
    user: &str,
    password: &Password,
) -> Result<()> {
    let known = cluster.catalog().users.contains_key(user);
    if known && Passwords::load(cluster.home())?.verify(user, password) {
        return Ok(());
    }
    Err(access_denied(user, !password.expose().is_empty()))
}

/// The 1045 error, worded as MySQL's.
pub fn access_denied(user: &str, using_password: bool) -> anyhow::Error {
    coded(
        ErrorCode::AccessDenied,
        format!(
            "Access denied for user '{user}' (using password: {})",
            if using_password { "YES" } else { "NO" }
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn native_hash_matches_mysql_and_scrambles_check() {
        let h = native_hash(&Password::new("pw"));
        assert_eq!(h.len(), 41);
        assert_eq!(native_hash(&Password::new("")), "");
        let salt = b"abcdefghijklmnopqrst";
        let stage1 = sha1(&[b"pw"]);
        let mask = sha1(&[salt, &sha1(&[&stage1])]);
        let response: Vec<u8> = stage1.iter().zip(mask).map(|(a, b)| a ^ b).collect();
        assert!(check_scramble(&h, salt, &response));
        assert!(!check_scramble(&h, b"another salt........", &response));
        assert!(!check_scramble(&h, salt, b""));
        assert!(check_scramble("", salt, b""));
    }

    #[test]
    fn the_file_is_private_and_holds_no_plain_text() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut p = Passwords::load(tmp.path()).expect("load");
        p.set("bob", &Password::new("secret-pw")).expect("set");
        let path = tmp.path().join(USERS_FILE);
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(!text.contains("secret-pw"));
        let p = Passwords::load(tmp.path()).expect("reload");
        assert!(p.verify("bob", &Password::new("secret-pw")));
        assert!(!p.verify("bob", &Password::new("nope")));
        assert!(p.verify("root", &Password::new("")));
    }
}
