//! The storage drivers this build has, shown by `SHOW BROKER` in StarRocks's
//! column layout and checked by `CREATE REPOSITORY ... WITH BROKER name`.
//! A new driver is one more line in [`DRIVERS`].

use anyhow::{bail, Result};

/// One storage driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Driver {
    /// The name `WITH BROKER` takes.
    pub name: &'static str,
    /// The location prefix it serves.
    pub scheme: &'static str,
}

/// Every driver of this build.
pub const DRIVERS: &[Driver] = &[
    Driver {
        name: "file",
        scheme: "file://",
    },
    Driver {
        name: "mem",
        scheme: "mem://",
    },
    Driver {
        name: "s3",
        scheme: "s3://",
    },
];

/// The driver named `name`, checked against the location it is asked to serve.
pub fn check(name: &str, location: &str) -> Result<()> {
    let Some(d) = DRIVERS.iter().find(|d| d.name.eq_ignore_ascii_case(name)) else {
        bail!(
            "unknown broker '{name}' (SHOW BROKER lists them: {})",
            DRIVERS
                .iter()
                .map(|d| d.name)
                .collect::<Vec<_>>()
                .join(", ")
        );
    };
    if !location.starts_with(d.scheme) {
        bail!(
            "broker '{}' serves {} locations, not '{location}'",
            d.name,
            d.scheme
        );
    }
    Ok(())
}

/// The rows of `SHOW BROKER`: in-process drivers, alive since the process started.
pub fn show(started_ms: u64) -> crate::sql::ResultSet {
    let mut rs = crate::sql::ResultSet::new([
        "Name",
        "Host",
        "Port",
        "Alive",
        "LastStartTime",
        "LastUpdateTime",
        "ErrMsg",
    ]);
    let now = crate::job::fmt_time(Some(tabletsnap_engine::engine::now_ms()));
    for d in DRIVERS {
        rs.push_row([
            d.name.to_string(),
            "in-process".to_string(),
            "0".to_string(),
            "true".to_string(),
            crate::job::fmt_time(Some(started_ms)),
            now.clone(),
            String::new(),
        ]);
    }
    rs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brokers_match_their_schemes() {
        assert!(check("file", "file:///x").is_ok());
        assert!(check("MEM", "mem://a").is_ok());
        assert!(check("mem", "file:///x").is_err());
        assert!(check("hdfs", "file:///x").is_err());
        assert_eq!(show(0).rows.len(), DRIVERS.len());
    }
}
