//! Integration tests of xtask: one test binary, one module per area.

mod check_providers;
mod kubernetes;
mod new_provider;
mod sbom;
