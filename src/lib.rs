#![deny(clippy::unwrap_used)]
//! tabletsnap job layer: a cluster of simulated backends, its catalog,
//! repositories, backup/restore jobs and the statements that drive them.

pub mod backend;
pub mod bench;
pub mod broker;
pub mod carry;
pub mod catalog;
pub mod catch_up;
pub mod cluster;
pub mod demo;
pub mod errcode;
pub mod exec;
pub mod in_place;
pub mod job;
pub mod meta_store;
pub mod node;
pub mod repo;
pub mod secrets;
pub mod server;
pub mod sql;
pub mod task;
pub mod users;
