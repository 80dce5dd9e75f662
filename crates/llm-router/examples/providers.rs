//! Loads the configuration (`--config`-less: `LLM_CONFIG`, else
//! `config/llm_providers.toml`), builds every enabled provider through the
//! plugin registry and prints whether each one is available.

use llm_router::config::Config;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).map(std::path::PathBuf::from);
    let config = Config::load(path.as_deref())?;
    println!(
        "compiled-in kinds: {}",
        llm_router::registry::kinds().join(", ")
    );
    for entry in &config.providers {
        match &entry.instance {
            None => println!("{:<12} {:<10} disabled", entry.name, entry.kind),
            Some(p) => {
                let up = p.is_available().await;
                println!(
                    "{:<12} {:<10} {}",
                    entry.name,
                    entry.kind,
                    if up { "available" } else { "unavailable" }
                );
            }
        }
    }
    Ok(())
}
