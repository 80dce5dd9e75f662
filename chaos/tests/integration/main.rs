//! Integration tests of the chaos harness: one test binary, one module per area.

mod chaos;
mod cluster;
mod corpus_replay;
mod gateway_limits;
mod stream_deadline;
