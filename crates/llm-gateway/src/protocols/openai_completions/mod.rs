//! Legacy OpenAI Completions, `POST /v1/completions`: one prompt in, its
//! continuation out, as one `text_completion` object or server-sent chunks
//! ending with `data: [DONE]`. The prompt is sent to the provider as one
//! user message.

mod convert;
mod routes;
mod stream;
pub mod wire;

pub(crate) use routes::completions;
