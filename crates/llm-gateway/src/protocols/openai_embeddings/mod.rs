//! OpenAI Embeddings, `POST /v1/embeddings`: a string or a list of strings in,
//! one vector per input out, as float arrays or (`encoding_format: base64`,
//! what the official SDKs ask for by default) base64 of little-endian `f32`s.
//! Routing, the per-input cache, usage and cost are `LlmClient::embed`'s.

mod convert;
mod routes;
pub mod wire;

pub(crate) use routes::embeddings;
