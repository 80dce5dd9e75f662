//! The `llm` command line tool and the OpenAI-compatible gateway of llm-router.
//!
//! The binary is a thin shell over [`cli::run`]; the gateway is the
//! `llm-gateway` crate (re-exported as [`gateway`]), so that it can be
//! started in-process (tests, embedding):
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use llm_cli::gateway::Gateway;
//! use llm_router::{config::Config, LlmClient};
//!
//! let config = Config::from_toml_str(r#"
//!     [llm_providers.local]
//!     kind = "openai"
//!     base_url = "http://127.0.0.1:8080/v1"
//!     models = ["qwen2.5"]
//!
//!     [gateway]
//!     api_keys = ["${GATEWAY_KEY:-}"]
//!     max_concurrency = 64
//! "#)?;
//! let client = LlmClient::from_config(&config)?;
//! let handle = Gateway::new(client, &config.gateway).bind("127.0.0.1:0").await?;
//! println!("OpenAI base URL: http://{}/v1", handle.local_addr());
//! handle.run_until_signal().await;
//! # Ok(()) }
//! ```

pub mod cli;
pub use llm_gateway as gateway;
