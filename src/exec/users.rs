//! CREATE USER, SET PASSWORD and DROP USER: who exists lives in the
//! catalog, password hashes in the home's 0600 password file.

use anyhow::{bail, Result};

use super::{Output, Session};
use crate::users::{Password, Passwords};

const OK: &str = "Query OK, 0 rows affected";

pub(super) fn create_user(s: &Session, name: &str, password: Option<&str>) -> Result<Output> {
    if name.is_empty() {
        bail!("a user name cannot be empty");
    }
    // The hash first: a crash between the two leaves an unused hash, never a
    // user whose password was meant to be set but is empty.
    let mut passwords = Passwords::load(s.cluster.home())?;
    if s.cluster.catalog().users.contains_key(name) {
        return Err(user_op(format!("user '{name}' already exists")));
    }
    passwords.set(name, &Password::new(password.unwrap_or_default()))?;
    s.cluster.update_catalog(|c| {
        if c.users.contains_key(name) {
            return Err(user_op(format!("user '{name}' already exists")));
        }
        c.users
            .insert(name.to_string(), crate::catalog::User { admin: false });
        Ok(())
    })?;
    Ok(Output::Message(OK.into()))
}

pub(super) fn set_password(s: &Session, name: &str, password: &str) -> Result<Output> {
    if !s.cluster.catalog().users.contains_key(name) {
        bail!("unknown user '{name}'");
    }
    Passwords::load(s.cluster.home())?.set(name, &Password::new(password))?;
    Ok(Output::Message(OK.into()))
}

pub(super) fn drop_user(s: &Session, name: &str, if_exists: bool) -> Result<Output> {
    if name == "root" || name == s.user {
        bail!("user '{name}' cannot be dropped (it is root or the current user)");
    }
    let existed = s
        .cluster
        .update_catalog(|c| Ok(c.users.remove(name).is_some()))?;
    if !existed && !if_exists {
        return Err(user_op(format!(
            "unknown user '{name}' (DROP USER IF EXISTS ignores a missing user)"
        )));
    }
    Passwords::load(s.cluster.home())?.remove(name)?;
    Ok(Output::Message(OK.into()))
}

/// MySQL's 1396 for a user statement that names a user wrongly.
fn user_op(message: String) -> anyhow::Error {
    crate::errcode::coded(crate::errcode::ErrorCode::UserOp, message)
}
