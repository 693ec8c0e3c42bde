//! Keel: a production runtime for applications built on foundation models.
//!
//! See ARCHITECTURE.md for the code map and the invariants each folder keeps.

pub mod answer;
pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod digest;
pub mod embedding;
pub mod gateway;
pub mod governance;
pub mod guardrails;
pub mod http;
pub mod index;
pub mod kb;
pub mod limits;
pub mod metrics;
pub mod pipeline;
pub mod store;
pub mod trace;
