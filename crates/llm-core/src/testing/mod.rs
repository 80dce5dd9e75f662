//! Test utilities (feature `testing`): a scripted provider for routing and
//! caching tests without HTTP, a misbehaving HTTP mock server, and the provider
//! conformance suite.

pub mod conformance;
pub mod mock;
mod scripted;

pub use conformance::{ConformanceTarget, Fixtures};
pub use mock::{MockBody, MockReply, MockServer, RecordedRequest};
pub use scripted::{Reply, ScriptedProvider};
