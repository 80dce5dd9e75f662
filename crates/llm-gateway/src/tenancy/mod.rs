//! Multi-tenancy: virtual keys, limits, budgets and the spend log.

pub mod spend;
pub mod store;
pub mod types;
