//! Fail point evaluation that can target one tablet of a batch.

use crate::error::Result;

/// Fails with `Error::FailPoint` when `name` is configured to `return`, and its
/// argument is absent or equals `key` (so a test can fail one tablet of many,
/// even when several engines share the process).
#[cfg(feature = "failpoints")]
pub(crate) fn check(name: &str, key: u64) -> Result<()> {
    let fired = fail::eval(name, |arg| match arg {
        Some(a) => a.trim() == key.to_string(),
        None => true,
    });
    if fired == Some(true) {
        return Err(crate::Error::FailPoint(format!("{name} (tablet {key})")));
    }
    Ok(())
}

/// Without the `failpoints` feature a fail point is free.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub(crate) fn check(_name: &str, _key: u64) -> Result<()> {
    Ok(())
}
