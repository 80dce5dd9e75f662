//! `llm generate` and `llm route`.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::bail;
use clap::Args;
use futures::StreamExt;
use llm_router::config::Config;
use llm_router::{
    Attempt, AttemptOutcome, CacheDirective, FinishReason, LlmClient, LlmError, LlmRequest,
    LlmResponse, StreamEvent, Usage,
};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{hints, load_client, print_json, print_table};

/// `llm generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// The prompt; `-` or nothing reads it from stdin.
    pub prompt: Option<String>,
    /// System prompt.
    #[arg(long, short = 's')]
    pub system: Option<String>,
    /// Provider instance to try first.
    #[arg(long, short = 'p')]
    pub provider: Option<String>,
    /// Model to ask for.
    #[arg(long, short = 'm')]
    pub model: Option<String>,
    /// Upper bound on generated tokens (default 4096).
    #[arg(long)]
    pub max_tokens: Option<u32>,
    /// Sampling temperature, 0 to 2 (default 0.7).
    #[arg(long, short = 't')]
    pub temperature: Option<f32>,
    /// Print the answer token by token as it arrives.
    #[arg(long)]
    pub stream: bool,
    /// Neither read nor write the response cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Print the answer and its metadata as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `llm route`.
#[derive(Debug, Args)]
pub struct RouteArgs {
    /// The prompt; `-` reads it from stdin.
    pub prompt: String,
    /// `max_tokens` of the request (default 4096).
    #[arg(long)]
    pub max_tokens: Option<u32>,
    /// Provider instance the request names.
    #[arg(long, short = 'p')]
    pub provider: Option<String>,
    /// Print the plan as JSON.
    #[arg(long)]
    pub json: bool,
}

/// What `--json` prints.
#[derive(Debug, Serialize)]
struct GenerateJson<'a> {
    content: &'a str,
    provider: &'a str,
    provider_kind: &'a str,
    model: &'a str,
    usage: Usage,
    cost: f64,
    response_time_ms: u64,
    cached: bool,
    finish_reason: &'a str,
    attempts: Vec<AttemptJson<'a>>,
}

/// One provider tried, flattened for scripts.
#[derive(Debug, Serialize)]
struct AttemptJson<'a> {
    provider: &'a str,
    model: &'a str,
    /// `success`, `failed` or `skipped`.
    outcome: &'static str,
    /// `retryable`, `fallback` or `fatal` for a failure.
    class: Option<&'static str>,
    status: Option<u16>,
    /// Why it failed or was skipped.
    message: Option<&'a str>,
    elapsed_ms: u64,
    calls: u32,
}

impl<'a> From<&'a Attempt> for AttemptJson<'a> {
    fn from(a: &'a Attempt) -> Self {
        let (outcome, class, status, message) = match &a.outcome {
            AttemptOutcome::Success => ("success", None, None, None),
            AttemptOutcome::Failed {
                class,
                status,
                message,
                ..
            } => (
                "failed",
                Some(class.as_str()),
                *status,
                Some(message.as_str()),
            ),
            AttemptOutcome::Skipped { reason } => ("skipped", None, None, Some(reason.as_str())),
        };
        Self {
            provider: &a.provider,
            model: &a.model,
            outcome,
            class,
            status,
            message,
            elapsed_ms: u64::try_from(a.elapsed.as_millis()).unwrap_or(u64::MAX),
            calls: a.calls,
        }
    }
}

impl<'a> From<&'a LlmResponse> for GenerateJson<'a> {
    fn from(r: &'a LlmResponse) -> Self {
        Self {
            content: &r.content,
            provider: &r.provider,
            provider_kind: &r.provider_kind,
            model: &r.model,
            usage: r.usage,
            cost: r.cost,
            response_time_ms: u64::try_from(r.response_time.as_millis()).unwrap_or(u64::MAX),
            cached: r.cached,
            finish_reason: r.finish_reason.as_str(),
            attempts: r.attempts.iter().map(AttemptJson::from).collect(),
        }
    }
}

async fn read_prompt(arg: Option<String>) -> anyhow::Result<String> {
    match arg.as_deref() {
        Some("-") | None => {
            if arg.is_none() && std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                bail!("no prompt: pass it as an argument, or pipe it on stdin (`-`)");
            }
            let mut s = String::new();
            tokio::io::stdin().read_to_string(&mut s).await?;
            let s = s.trim_end_matches(['\n', '\r']).to_string();
            if s.trim().is_empty() {
                bail!("the prompt read from stdin is empty");
            }
            Ok(s)
        }
        Some(p) => Ok(p.to_string()),
    }
}

fn build_request(args: &GenerateArgs, prompt: String) -> LlmRequest {
    let mut req = LlmRequest::new(prompt);
    if let Some(s) = &args.system {
        req = req.system(s.clone());
    }
    if let Some(p) = &args.provider {
        req = req.provider(p.clone());
    }
    if let Some(m) = &args.model {
        req = req.model(m.clone());
    }
    if let Some(n) = args.max_tokens {
        req = req.max_tokens(n);
    }
    if let Some(t) = args.temperature {
        req = req.temperature(t);
    }
    if args.no_cache {
        req = req.cache(CacheDirective::Bypass);
    }
    req
}

/// Runs `llm generate`.
pub(crate) async fn generate(
    config_path: Option<&Path>,
    args: GenerateArgs,
) -> anyhow::Result<ExitCode> {
    let prompt = read_prompt(args.prompt.clone()).await?;
    let (config, client) = load_client(config_path)?;
    // The client prepares each provider (starts Ollama, pulls its required
    // models) before its first attempt, fallbacks included.
    let req = build_request(&args, prompt);
    let result = if args.stream {
        stream(&client, req, args.json).await
    } else {
        client.generate(req).await.map_err(Failure::Call)
    };
    match result {
        Ok(resp) => {
            if args.json {
                print_json(&GenerateJson::from(&resp))?;
            } else if !args.stream {
                println!("{}", resp.content);
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(Failure::Call(e)) => Err(anyhow::anyhow!(failure_message(&e, &config))),
        Err(Failure::Midway(e)) => bail!("the answer was cut off: {e}"),
        Err(Failure::Io(e)) => Err(e.into()),
    }
}

enum Failure {
    /// No provider produced an answer.
    Call(LlmError),
    /// A stream failed after it started.
    Midway(llm_router::ProviderError),
    /// Writing to stdout failed.
    Io(std::io::Error),
}

/// Streams the answer to stdout (unless `quiet`), returning it whole.
async fn stream(client: &LlmClient, req: LlmRequest, quiet: bool) -> Result<LlmResponse, Failure> {
    let started = Instant::now();
    let mut s = client.stream(req).await.map_err(Failure::Call)?;
    let mut out = tokio::io::stdout();
    let mut content = String::new();
    let mut usage = None;
    let mut finish = FinishReason::Stop;
    while let Some(ev) = s.next().await {
        match ev {
            Ok(StreamEvent::Delta { text }) => {
                if !quiet {
                    out.write_all(text.as_bytes()).await.map_err(Failure::Io)?;
                    out.flush().await.map_err(Failure::Io)?;
                }
                content.push_str(&text);
            }
            Ok(StreamEvent::Usage { usage: u }) => usage = Some(u),
            // `llm generate` offers no tools, so no model calls one; it asks
            // for no thinking either.
            Ok(
                StreamEvent::ToolCall { .. }
                | StreamEvent::Logprobs { .. }
                | StreamEvent::Thinking { .. }
                | StreamEvent::ThinkingSignature { .. }
                | StreamEvent::RedactedThinking { .. },
            ) => {}
            Ok(StreamEvent::Done { finish_reason }) => {
                finish = finish_reason;
                break;
            }
            Err(e) => {
                if !quiet {
                    let _ = out.write_all(b"\n").await;
                    let _ = out.flush().await;
                }
                return Err(Failure::Midway(e));
            }
        }
    }
    if !quiet {
        out.write_all(b"\n").await.map_err(Failure::Io)?;
        out.flush().await.map_err(Failure::Io)?;
    }
    let usage = usage.unwrap_or_default();
    let cost = if s.cached {
        0.0
    } else {
        client.provider(&s.provider).map_or(0.0, |p| {
            llm_router::cost::cost_usd(p.profile(), &s.model, &usage)
        })
    };
    Ok(LlmResponse {
        content,
        provider: s.provider.clone(),
        provider_kind: s.provider_kind.clone(),
        model: s.model.clone(),
        usage,
        cost,
        response_time: started.elapsed(),
        finish_reason: finish,
        cached: s.cached,
        attempts: std::mem::take(&mut s.attempts),
        tool_calls: Vec::new(),
        logprobs: Vec::new(),
        thinking: Vec::new(),
    })
}

/// The error, every provider tried and why, and what the user can do.
pub(crate) fn failure_message(e: &LlmError, config: &Config) -> String {
    let mut msg = e.to_string();
    let hints = hints::for_error(e, config);
    if !hints.is_empty() {
        msg.push_str("\nWhat you can do:");
        for h in hints {
            msg.push_str("\n  - ");
            msg.push_str(&h);
        }
    }
    msg
}

/// Runs `llm route`.
pub(crate) async fn route(config_path: Option<&Path>, args: RouteArgs) -> anyhow::Result<ExitCode> {
    let prompt = read_prompt(Some(args.prompt)).await?;
    let (_, client) = load_client(config_path)?;
    let mut req = LlmRequest::new(prompt);
    if let Some(n) = args.max_tokens {
        req = req.max_tokens(n);
    }
    if let Some(p) = args.provider {
        if client.provider(&p).is_none() {
            let known: Vec<String> = client
                .providers()
                .iter()
                .map(|p| p.name().to_string())
                .collect();
            bail!(LlmError::UnknownProvider { name: p, known });
        }
        req = req.provider(p);
    }
    let plan = client.explain(&req);
    if args.json {
        print_json(&plan)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!("classification: {}", plan.classification);
    println!("strategy:       {}", plan.strategy);
    if let Some(r) = &plan.requested {
        println!("requested:      {r}");
    }
    if plan.sequence.is_empty() {
        println!("no provider available");
    } else {
        let rows: Vec<Vec<String>> = plan
            .sequence
            .iter()
            .enumerate()
            .map(|(i, p)| {
                vec![
                    (i + 1).to_string(),
                    p.provider.clone(),
                    p.model.clone(),
                    p.max_tokens
                        .map_or_else(|| "unset".to_string(), |n| n.to_string()),
                    p.reason.clone(),
                ]
            })
            .collect();
        print_table(&["#", "PROVIDER", "MODEL", "MAX_TOKENS", "WHY"], &rows);
    }
    for s in &plan.skipped {
        println!("skipped {}: {}", s.provider, s.reason);
    }
    Ok(ExitCode::SUCCESS)
}
