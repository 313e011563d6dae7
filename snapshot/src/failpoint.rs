//! Fail point evaluation that can target one tablet of a batch.

use crate::error::Result;

/// Fails with `Error::FailPoint` when `name` is configured to `return`, and its
/// argument is absent or equals `key` (so a test can fail one tablet of many).
#[cfg(feature = "failpoints")]
pub(crate) fn check(name: &str, key: Option<u64>) -> Result<()> {
    let fired = fail::eval(name, |arg| match (arg, key) {
        (Some(a), Some(k)) => a.trim() == k.to_string(),
        _ => true,
    });
    if fired == Some(true) {
        return Err(crate::Error::FailPoint(name.to_string()));
    }
    Ok(())
}

/// Without the `failpoints` feature a fail point is free.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub(crate) fn check(_name: &str, _key: Option<u64>) -> Result<()> {
    Ok(())
}
