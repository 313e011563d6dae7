#![deny(clippy::unwrap_used)]
//! placeholder
