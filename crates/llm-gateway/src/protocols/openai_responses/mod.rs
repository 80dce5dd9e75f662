//! OpenAI Responses, `POST /v1/responses`, stateless: the whole conversation
//! comes in `input` on every call; nothing is stored, so
//! `previous_response_id` is refused. One `response` object as JSON, or the
//! Responses API's typed server-sent events.

mod convert;
mod routes;
mod stream;
pub mod wire;

pub(crate) use routes::responses;
