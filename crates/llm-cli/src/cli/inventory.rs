//! `llm providers` and `llm models`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::bail;
use clap::Args;
use llm_router::exec::HealthReport;
use serde::Serialize;

use super::{load_client, print_json, print_table};

/// `llm providers`.
#[derive(Debug, Args)]
pub struct ProvidersArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `llm models`.
#[derive(Debug, Args)]
pub struct ModelsArgs {
    /// Only this provider instance.
    #[arg(long, short = 'p')]
    pub provider: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct ProviderRow {
    name: String,
    kind: String,
    enabled: bool,
    local: Option<bool>,
    available: Option<bool>,
    circuit: Option<String>,
    default_model: Option<String>,
    models: Vec<String>,
}

#[derive(Debug, Serialize)]
struct ProvidersJson {
    kinds: Vec<&'static str>,
    providers: Vec<ProviderRow>,
}

fn yes_no(b: Option<bool>) -> String {
    match b {
        Some(true) => "yes".into(),
        Some(false) => "no".into(),
        None => "-".into(),
    }
}

/// Runs `llm providers`.
pub(crate) async fn providers(
    config_path: Option<&Path>,
    args: ProvidersArgs,
) -> anyhow::Result<ExitCode> {
    let (config, client) = load_client(config_path)?;
    let reports = client.refresh_health().await;
    let rows: Vec<ProviderRow> = config
        .providers
        .iter()
        .map(|entry| {
            let report: Option<&HealthReport> = reports.iter().find(|r| r.provider == entry.name);
            let profile = entry.spec.as_ref().map(|s| &s.profile);
            ProviderRow {
                name: entry.name.clone(),
                kind: entry.kind.clone(),
                enabled: entry.enabled,
                local: profile.map(|p| p.local),
                available: report.and_then(|r| r.available),
                circuit: report.map(|r| r.circuit.as_str().to_string()),
                default_model: profile.and_then(|p| p.default_model.clone()),
                models: profile.map(|p| p.models.clone()).unwrap_or_default(),
            }
        })
        .collect();
    let kinds = llm_router::registry::kinds();
    if args.json {
        print_json(&ProvidersJson {
            kinds,
            providers: rows,
        })?;
        return Ok(ExitCode::SUCCESS);
    }
    println!("compiled-in kinds: {}", kinds.join(", "));
    if rows.is_empty() {
        println!("no provider instances are configured");
        return Ok(ExitCode::SUCCESS);
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.name.clone(),
                r.kind.clone(),
                yes_no(Some(r.enabled)),
                yes_no(r.local),
                yes_no(r.available),
                r.circuit.clone().unwrap_or_else(|| "-".into()),
                r.default_model.clone().unwrap_or_else(|| "-".into()),
                if r.models.is_empty() {
                    "-".into()
                } else {
                    r.models.join(", ")
                },
            ]
        })
        .collect();
    print_table(
        &[
            "NAME",
            "KIND",
            "ENABLED",
            "LOCAL",
            "AVAILABLE",
            "CIRCUIT",
            "DEFAULT MODEL",
            "MODELS",
        ],
        &table,
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Serialize)]
struct ModelsJson {
    provider: String,
    kind: String,
    default_model: Option<String>,
    configured: Vec<String>,
    available: Option<Vec<String>>,
    error: Option<String>,
}

/// Runs `llm models`.
pub(crate) async fn models(
    config_path: Option<&Path>,
    args: ModelsArgs,
) -> anyhow::Result<ExitCode> {
    let (_, client) = load_client(config_path)?;
    let mut instances = client.providers();
    if let Some(name) = &args.provider {
        instances.retain(|p| p.name() == name);
        if instances.is_empty() {
            let known: Vec<String> = client
                .providers()
                .iter()
                .map(|p| p.name().to_string())
                .collect();
            bail!(llm_router::LlmError::UnknownProvider {
                name: name.clone(),
                known
            });
        }
    }
    let lists = futures::future::join_all(instances.iter().map(|p| p.models())).await;
    let out: Vec<ModelsJson> = instances
        .iter()
        .zip(lists)
        .map(|(p, live)| {
            let (available, error) = match live {
                Ok(v) => (Some(v), None),
                Err(e) => (None, Some(e.to_string())),
            };
            ModelsJson {
                provider: p.name().to_string(),
                kind: p.kind().to_string(),
                default_model: p.profile().default_model.clone(),
                configured: p.profile().models.clone(),
                available,
                error,
            }
        })
        .collect();
    if args.json {
        print_json(&out)?;
        return Ok(ExitCode::SUCCESS);
    }
    for m in &out {
        println!("{} ({}):", m.provider, m.kind);
        let mut names: Vec<&String> = m.configured.iter().collect();
        for a in m.available.iter().flatten() {
            if !names.contains(&a) {
                names.push(a);
            }
        }
        let rows: Vec<Vec<String>> = names
            .iter()
            .map(|n| {
                let mut tags = Vec::new();
                if m.configured.contains(n) {
                    tags.push("configured");
                }
                if m.default_model.as_ref() == Some(*n) {
                    tags.push("default");
                }
                if m.available.as_ref().is_some_and(|a| a.contains(n)) {
                    tags.push("available");
                }
                vec![format!("  {n}"), tags.join(", ")]
            })
            .collect();
        for r in rows {
            println!("{:<40} {}", r[0], r[1]);
        }
        if let Some(e) = &m.error {
            println!("  (cannot list the live models: {e})");
        }
    }
    Ok(ExitCode::SUCCESS)
}
