//! The original use case: a short story written chapter by chapter.
//!
//! ```sh
//! cargo run -p llm-router --example novel                       # offline, scripted providers
//! cargo run -p llm-router --example novel -- --config config/llm_providers.toml --topic "一只会说话的猫"
//! ```
//!
//! The outline is a short prompt with a small `max_tokens`: the router calls it
//! *simple* and sends it to the cheapest local provider (Ollama, free). Each
//! chapter asks for 创作 (creative writing) with `max_tokens` 4000: *complex*,
//! so it goes to the strongest provider (OpenAI). The example prints which
//! provider wrote what, and the total cost.
//!
//! Without `--config`, two scripted providers (llm-core's test kit) named
//! `ollama` and `openai` stand in for the real ones, so it runs anywhere.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use llm_core::testing::{Reply, ScriptedProvider};
use llm_router::config::Config;
use llm_router::cost::ModelPrice;
use llm_router::{LlmClient, LlmRequest, LlmResponse, ProviderProfile};

/// Chapters written.
const CHAPTERS: usize = 3;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let client = match &args.config {
        Some(path) => LlmClient::from_config(&Config::load(Some(path))?)?,
        None => scripted_client()?,
    };
    let mut ledger = Ledger::default();

    // 1. The outline: short and simple → the local model.
    let outline_request = LlmRequest::new(format!(
        "为一个关于“{}”的短篇小说列出{CHAPTERS}个章节标题，每行一个，不要其他内容。",
        args.topic
    ))
    .max_tokens(200);
    println!("outline route: {}", client.explain(&outline_request));
    let outline = client.generate(outline_request).await?;
    ledger.record("outline", &outline);
    let titles = chapter_titles(&outline.content);
    println!("\n大纲 ({} / {}):", outline.provider, outline.model);
    for (i, t) in titles.iter().enumerate() {
        println!("  {}. {t}", i + 1);
    }

    // 2. Each chapter: creative and long → the strongest model.
    for (i, title) in titles.iter().enumerate() {
        let request = LlmRequest::new(format!(
            "请创作短篇小说《{}》的第{}章「{title}」。全书大纲：\n{}\n要求：情节完整，文笔细腻，约两千字。",
            args.topic,
            i + 1,
            outline.content.trim()
        ))
        .system("你是一位擅长中文短篇小说的作家。")
        .max_tokens(4000)
        .temperature(0.8);
        if i == 0 {
            println!("\nchapter route: {}", client.explain(&request));
        }
        let chapter = client.generate(request).await?;
        ledger.record(&format!("chapter {}", i + 1), &chapter);
        println!(
            "\n第{}章 {title} ({} / {}):\n{}",
            i + 1,
            chapter.provider,
            chapter.model,
            chapter.content.trim()
        );
    }

    ledger.print();
    Ok(())
}

/// `--config PATH`, `--topic TEXT`.
struct Args {
    config: Option<PathBuf>,
    topic: String,
}

impl Args {
    fn parse() -> Self {
        let mut out = Args {
            config: None,
            topic: "雨夜里的旧钟表店".to_string(),
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--config" => out.config = args.next().map(PathBuf::from),
                "--topic" => out.topic = args.next().unwrap_or(out.topic),
                other => eprintln!("ignoring unknown argument `{other}`"),
            }
        }
        out
    }
}

/// Up to [`CHAPTERS`] titles from an outline, numbering stripped.
fn chapter_titles(outline: &str) -> Vec<String> {
    let titles: Vec<String> = outline
        .lines()
        .map(|l| {
            l.trim()
                .trim_start_matches(|c: char| {
                    c.is_ascii_digit() || matches!(c, '.' | '、' | ')' | '-' | '*' | '#' | ' ')
                })
                .trim()
                .to_string()
        })
        .filter(|l| !l.is_empty())
        .take(CHAPTERS)
        .collect();
    if titles.is_empty() {
        (1..=CHAPTERS).map(|i| format!("第{i}部分")).collect()
    } else {
        titles
    }
}

/// Who wrote what, and what it cost.
#[derive(Default)]
struct Ledger {
    rows: Vec<(String, String, String, u64, f64)>,
}

impl Ledger {
    fn record(&mut self, part: &str, r: &LlmResponse) {
        self.rows.push((
            part.to_string(),
            r.provider.clone(),
            r.model.clone(),
            r.tokens_used(),
            r.cost,
        ));
    }

    fn print(&self) {
        println!(
            "\n{:<10} {:<8} {:<12} {:>7} {:>10}",
            "part", "provider", "model", "tokens", "cost"
        );
        let mut per_provider: BTreeMap<&str, f64> = BTreeMap::new();
        for (part, provider, model, tokens, cost) in &self.rows {
            println!(
                "{part:<10} {provider:<8} {model:<12} {tokens:>7} {:>10}",
                usd(*cost)
            );
            *per_provider.entry(provider).or_default() += cost;
        }
        let total: f64 = self.rows.iter().map(|r| r.4).sum();
        for (provider, cost) in per_provider {
            println!("{provider}: {}", usd(cost));
        }
        println!("total cost: {}", usd(total));
    }
}

fn usd(v: f64) -> String {
    format!("${v:.6}")
}

/// Offline stand-ins: a free local `ollama` and a priced `openai`.
fn scripted_client() -> Result<LlmClient, Box<dyn std::error::Error>> {
    let ollama = ScriptedProvider::new("ollama")
        .kind("ollama")
        .local(true)
        .models(["qwen:7b"])
        .otherwise(Reply::text("1. 雨夜的来客\n2. 停摆的座钟\n3. 黎明前的告别"));
    let openai = ScriptedProvider::new("openai")
        .kind("openai")
        .profile(ProviderProfile {
            models: vec!["gpt-4o".into()],
            default_model: Some("gpt-4o".into()),
            pricing: BTreeMap::from([(
                "gpt-4o".to_string(),
                ModelPrice {
                    input_per_1m: 2.5,
                    output_per_1m: 10.0,
                    cached_input_per_1m: None,
                    cache_write_per_1m: None,
                },
            )]),
            ..ProviderProfile::default()
        })
        .then(Reply::text(
            "雨下得正紧，老周刚要关门，一个浑身湿透的女孩推门进来，怀里抱着一只停了的座钟。",
        ))
        .then(Reply::text(
            "座钟的指针停在三点十七分。老周拆开后盖，发现齿轮间夹着一张发黄的车票。",
        ))
        .then(Reply::text(
            "天快亮时，钟声重新响起。女孩把车票留在柜台上，消失在晨雾里。",
        ));
    Ok(LlmClient::builder()
        .provider(Arc::new(ollama))
        .provider(Arc::new(openai))
        .build()?)
}
