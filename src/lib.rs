#![deny(clippy::unwrap_used)]
//! tabletsnap job layer: simulated cluster, catalog, repositories, backup/restore jobs, statements.

pub mod sql;
