//! The gateway's OpenAI doors through real HTTP, against mock upstreams of
//! every provider kind answering with the bytes each API sends.

mod common;
mod completions;
mod embeddings;
mod responses;
