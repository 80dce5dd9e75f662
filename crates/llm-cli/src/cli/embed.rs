//! `llm embed`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::bail;
use clap::Args;
use llm_router::{CacheDirective, EmbeddingRequest, EmbeddingResponse};
use tokio::io::AsyncReadExt;

use super::generate::failure_message;
use super::{load_client, print_json, print_table};

/// Values shown per vector without `--json`.
const PREVIEW_VALUES: usize = 5;

/// Characters of each input shown next to its vector.
const PREVIEW_CHARS: usize = 40;

/// `llm embed`.
#[derive(Debug, Args)]
pub struct EmbedArgs {
    /// Texts to embed, one vector each; `-` (or nothing, with stdin piped)
    /// reads one text per non-empty line from stdin.
    pub texts: Vec<String>,
    /// Embedding model (default: `routing.default_embedding_model`, or the
    /// only one configured).
    #[arg(long, short = 'm')]
    pub model: Option<String>,
    /// Provider instance to try first (it must serve the model).
    #[arg(long, short = 'p')]
    pub provider: Option<String>,
    /// Output dimensions, for models that can shorten their vectors.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub dimensions: Option<u32>,
    /// Neither read nor write the cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Print the whole answer (every vector) as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The inputs: the arguments in order, with `-` replaced by the lines of stdin.
async fn read_inputs(texts: Vec<String>) -> anyhow::Result<Vec<String>> {
    let from_stdin = texts.is_empty() || texts.iter().any(|t| t == "-");
    if texts.is_empty() && std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        bail!(
            "no text to embed: pass texts as arguments, or pipe them on stdin (`-`), one per line"
        );
    }
    if texts.iter().filter(|t| *t == "-").count() > 1 {
        bail!("`-` (stdin) can be given only once");
    }
    let lines: Vec<String> = if from_stdin {
        let mut s = String::new();
        tokio::io::stdin().read_to_string(&mut s).await?;
        let lines: Vec<String> = s
            .lines()
            .map(|l| l.trim_end_matches('\r'))
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect();
        if lines.is_empty() {
            bail!("no text read from stdin (one text per non-empty line)");
        }
        lines
    } else {
        Vec::new()
    };
    if texts.is_empty() {
        return Ok(lines);
    }
    let mut out = Vec::with_capacity(texts.len() + lines.len());
    let mut lines = Some(lines);
    for t in texts {
        if t == "-" {
            out.extend(lines.take().unwrap_or_default());
        } else {
            out.push(t);
        }
    }
    Ok(out)
}

/// Runs `llm embed`.
pub(crate) async fn embed(config_path: Option<&Path>, args: EmbedArgs) -> anyhow::Result<ExitCode> {
    let inputs = read_inputs(args.texts).await?;
    let (config, client) = load_client(config_path)?;
    let mut req = EmbeddingRequest::new(inputs);
    req.model = args.model;
    req.provider = args.provider;
    req.dimensions = args.dimensions;
    if args.no_cache {
        req = req.cache(CacheDirective::Bypass);
    }
    let texts = req.inputs.clone();
    let resp = match client.embed(req).await {
        Ok(resp) => resp,
        Err(e) => return Err(anyhow::anyhow!(failure_message(&e, &config))),
    };
    if args.json {
        print_json(&resp)?;
    } else {
        print_vectors(&texts, &resp);
        eprintln!("{}", footer(&resp));
    }
    Ok(ExitCode::SUCCESS)
}

/// One row per input: its number, the vector's length, its first values and
/// the start of the text.
fn print_vectors(texts: &[String], resp: &EmbeddingResponse) {
    let rows: Vec<Vec<String>> = resp
        .vectors
        .iter()
        .zip(texts)
        .enumerate()
        .map(|(i, (v, text))| {
            vec![
                (i + 1).to_string(),
                v.len().to_string(),
                preview_values(v),
                preview_text(text),
            ]
        })
        .collect();
    print_table(&["#", "DIMS", "FIRST VALUES", "TEXT"], &rows);
}

fn preview_values(v: &[f32]) -> String {
    let mut shown: Vec<String> = v.iter().take(PREVIEW_VALUES).map(|x| value(*x)).collect();
    if v.len() > PREVIEW_VALUES {
        shown.push("…".into());
    }
    format!("[{}]", shown.join(", "))
}

/// Four decimals, or scientific notation for tiny values that would show as 0.
fn value(x: f32) -> String {
    if x != 0.0 && x.abs() < 1e-3 {
        format!("{x:.2e}")
    } else {
        format!("{x:.4}")
    }
}

fn preview_text(text: &str) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if flat.chars().count() > PREVIEW_CHARS {
        let mut s: String = flat.chars().take(PREVIEW_CHARS - 1).collect();
        s.push('…');
        s
    } else {
        flat
    }
}

/// Model, provider, cache hits, usage and cost: one line for stderr.
fn footer(resp: &EmbeddingResponse) -> String {
    let via = if resp.provider.is_empty() {
        "every input from the cache".to_string()
    } else {
        format!("via {} ({})", resp.provider, resp.provider_kind)
    };
    format!(
        "model {} {via} · {} inputs, {} cached · {} tokens · ${:.6} · {} ms",
        resp.model,
        resp.vectors.len(),
        resp.cached_inputs,
        resp.usage.prompt_tokens,
        resp.cost,
        resp.response_time.as_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previews_are_short() {
        assert_eq!(preview_values(&[0.1, 0.2]), "[0.1000, 0.2000]");
        assert_eq!(
            preview_values(&[0.0, -0.5, 1e-5, 1.0, 2.0, 3.0]),
            "[0.0000, -0.5000, 1.00e-5, 1.0000, 2.0000, …]"
        );
        assert_eq!(preview_text("a\nb"), "a b");
        let long = "x".repeat(50);
        assert_eq!(preview_text(&long).chars().count(), PREVIEW_CHARS);
        assert!(preview_text(&long).ends_with('…'));
    }
}
