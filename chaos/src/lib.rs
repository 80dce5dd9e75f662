//! Fault-injecting upstreams for the chaos and soak suites.
