//! `llm keys …` and `llm usage`: virtual keys and their spend, read and
//! written directly in the configured store (`[gateway.store] url`, the
//! SQLite file by default), so they work without a running gateway. A
//! running gateway sees a change within its `key_cache_ttl`.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand, ValueEnum};
use llm_gateway::tenancy::admin::{self, CreateKey, KeyView};
use llm_gateway::tenancy::store::{self, Store};
use llm_gateway::tenancy::types::{BudgetPeriod, GroupBy, KeyPatch, KeyRecord};

use super::{load_config, print_json, print_table};

/// `llm keys …`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key; its secret is printed this once.
    Create(CreateArgs),
    /// List keys (never their secrets).
    List(OutputArgs),
    /// Show one key and its spend in the current budget period.
    Show(IdArgs),
    /// Revoke a key for good (its record and spend stay).
    Revoke(IdArgs),
    /// Give a key a new secret (printed this once); the old one stops working.
    Rotate(IdArgs),
    /// Change a key's limits, budget, models, name or state.
    Update(UpdateArgs),
}

/// Budget periods on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Period {
    /// Resets every day at 00:00 UTC.
    Daily,
    /// Resets every Monday at 00:00 UTC.
    Weekly,
    /// Resets on the first of every month at 00:00 UTC.
    Monthly,
    /// Never resets.
    Total,
}

impl From<Period> for BudgetPeriod {
    fn from(p: Period) -> Self {
        match p {
            Period::Daily => BudgetPeriod::Daily,
            Period::Weekly => BudgetPeriod::Weekly,
            Period::Monthly => BudgetPeriod::Monthly,
            Period::Total => BudgetPeriod::Total,
        }
    }
}

/// Output format.
#[derive(Debug, Clone, Args)]
pub struct OutputArgs {
    /// JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// A key id.
#[derive(Debug, Clone, Args)]
pub struct IdArgs {
    /// The key's id (`key_…`).
    pub id: String,
    /// JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `llm keys create`.
#[derive(Debug, Clone, Args)]
pub struct CreateArgs {
    /// A name for the key (app, team, customer).
    #[arg(long, default_value = "key")]
    pub name: String,
    /// Who owns it.
    #[arg(long)]
    pub owner: Option<String>,
    /// Its team.
    #[arg(long)]
    pub team: Option<String>,
    /// Allowed models: globs over `model` or `instance/model`, comma-separated
    /// or repeated (default: every model).
    #[arg(long, value_delimiter = ',')]
    pub models: Vec<String>,
    /// Requests per minute.
    #[arg(long)]
    pub rpm: Option<u32>,
    /// Tokens per minute.
    #[arg(long)]
    pub tpm: Option<u32>,
    /// Concurrent requests.
    #[arg(long)]
    pub max_concurrency: Option<u32>,
    /// Budget in USD per period.
    #[arg(long)]
    pub budget: Option<f64>,
    /// The budget's period.
    #[arg(long, value_enum, default_value_t = Period::Total)]
    pub period: Period,
    /// Expiry: `YYYY-MM-DD` (00:00 UTC) or unix milliseconds.
    #[arg(long)]
    pub expires: Option<String>,
    /// Metadata entries `name=value` (repeatable).
    #[arg(long = "meta", value_name = "NAME=VALUE")]
    pub metadata: Vec<String>,
    /// Create it disabled.
    #[arg(long)]
    pub disabled: bool,
    /// JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `llm keys update`.
#[derive(Debug, Clone, Args)]
pub struct UpdateArgs {
    /// The key's id.
    pub id: String,
    /// New name.
    #[arg(long)]
    pub name: Option<String>,
    /// New allowed-model globs (comma-separated; `""` allows every model).
    #[arg(long, value_delimiter = ',')]
    pub models: Option<Vec<String>>,
    /// New requests per minute (`0`: no limit).
    #[arg(long)]
    pub rpm: Option<u32>,
    /// New tokens per minute (`0`: no limit).
    #[arg(long)]
    pub tpm: Option<u32>,
    /// New concurrency limit (`0`: no limit).
    #[arg(long)]
    pub max_concurrency: Option<u32>,
    /// New budget in USD (negative: no budget).
    #[arg(long, allow_hyphen_values = true)]
    pub budget: Option<f64>,
    /// New budget period.
    #[arg(long, value_enum)]
    pub period: Option<Period>,
    /// Enable the key.
    #[arg(long, conflicts_with = "disable")]
    pub enable: bool,
    /// Disable the key.
    #[arg(long)]
    pub disable: bool,
    /// JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// How a usage report is grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum By {
    /// Per key.
    Key,
    /// Per model.
    Model,
    /// Per UTC day.
    Day,
}

/// `llm usage`.
#[derive(Debug, Clone, Args)]
pub struct UsageArgs {
    /// Grouping.
    #[arg(long, value_enum, default_value_t = By::Key)]
    pub by: By,
    /// First day (`YYYY-MM-DD`, UTC).
    #[arg(long)]
    pub from: Option<String>,
    /// Last day, included (`YYYY-MM-DD`, UTC).
    #[arg(long)]
    pub to: Option<String>,
    /// Only this key id.
    #[arg(long)]
    pub key: Option<String>,
    /// JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

async fn open_store(config_path: Option<&Path>) -> anyhow::Result<Arc<dyn Store>> {
    let config = load_config(config_path)?;
    let url = config.gateway.store.effective_url();
    store::open(&url)
        .await
        .with_context(|| "cannot open the key store ([gateway.store] url)".to_string())
}

fn parse_expiry(s: &str) -> anyhow::Result<i64> {
    if let Ok(ms) = s.trim().parse::<i64>() {
        return Ok(ms);
    }
    admin::parse_day(s)
        .with_context(|| format!("--expires: expected YYYY-MM-DD or unix ms, got `{s}`"))
}

fn opt(v: Option<&str>) -> String {
    v.unwrap_or("-").to_string()
}

fn time_text(ms: Option<i64>) -> String {
    ms.map_or_else(
        || "-".to_string(),
        |ms| llm_gateway::tenancy::types::day_string(ms.div_euclid(86_400_000)),
    )
}

fn state(k: &KeyRecord) -> &'static str {
    if k.revoked_at.is_some() {
        "revoked"
    } else if !k.enabled {
        "disabled"
    } else if k
        .expires_at
        .is_some_and(|at| at <= llm_gateway::tenancy::now_ms())
    {
        "expired"
    } else {
        "active"
    }
}

fn budget_text(k: &KeyRecord) -> String {
    k.budget_usd.map_or_else(
        || "-".to_string(),
        |b| format!("${b:.2}/{}", k.budget_period),
    )
}

fn describe(k: &KeyRecord) {
    let rows = [
        ("id", k.id.clone()),
        ("name", k.name.clone()),
        ("prefix", format!("{}…", k.prefix)),
        ("state", state(k).to_string()),
        ("owner", opt(k.owner.as_deref())),
        ("team", opt(k.team.as_deref())),
        (
            "models",
            if k.models.is_empty() {
                "*".to_string()
            } else {
                k.models.join(", ")
            },
        ),
        ("rpm", k.rpm.map_or("-".into(), |v| v.to_string())),
        ("tpm", k.tpm.map_or("-".into(), |v| v.to_string())),
        (
            "max_concurrency",
            k.max_concurrency.map_or("-".into(), |v| v.to_string()),
        ),
        ("budget", budget_text(k)),
        ("expires", time_text(k.expires_at)),
        ("created", time_text(Some(k.created_at))),
    ];
    for (name, value) in rows {
        println!("{name:<16}{value}");
    }
}

fn print_secret(view: &KeyView, json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(view);
    }
    describe(&view.record);
    if let Some(secret) = &view.key {
        println!("{:<16}{secret}", "key");
        eprintln!("The key is shown only now: store it safely.");
    }
    Ok(())
}

/// Runs `llm keys …`.
pub async fn keys(config_path: Option<&Path>, cmd: KeysCommand) -> anyhow::Result<ExitCode> {
    let store = open_store(config_path).await?;
    let store = store.as_ref();
    match cmd {
        KeysCommand::Create(a) => {
            let mut metadata = serde_json::Map::new();
            for m in &a.metadata {
                let Some((k, v)) = m.split_once('=') else {
                    bail!("--meta: expected NAME=VALUE, got `{m}`");
                };
                metadata.insert(k.trim().to_string(), serde_json::Value::from(v.trim()));
            }
            let req = CreateKey {
                name: a.name,
                owner: a.owner,
                team: a.team,
                metadata,
                models: a
                    .models
                    .into_iter()
                    .filter(|m| !m.trim().is_empty())
                    .collect(),
                rpm: a.rpm,
                tpm: a.tpm,
                max_concurrency: a.max_concurrency,
                budget_usd: a.budget,
                budget_period: Some(a.period.into()),
                expires_at: a.expires.as_deref().map(parse_expiry).transpose()?,
                enabled: Some(!a.disabled),
            };
            let (record, secret) = admin::create_key(store, req).await?;
            print_secret(
                &KeyView {
                    record,
                    key: Some(secret),
                    spent_usd: None,
                    budget_resets_at: None,
                },
                a.json,
            )?;
        }
        KeysCommand::List(o) => {
            let keys = store.list_keys().await?;
            if o.json {
                print_json(&keys)?;
            } else {
                let rows: Vec<Vec<String>> = keys
                    .iter()
                    .map(|k| {
                        vec![
                            k.id.clone(),
                            k.name.clone(),
                            format!("{}…", k.prefix),
                            state(k).to_string(),
                            k.rpm.map_or("-".into(), |v| v.to_string()),
                            k.tpm.map_or("-".into(), |v| v.to_string()),
                            budget_text(k),
                            if k.models.is_empty() {
                                "*".into()
                            } else {
                                k.models.join(",")
                            },
                        ]
                    })
                    .collect();
                print_table(
                    &[
                        "ID", "NAME", "PREFIX", "STATE", "RPM", "TPM", "BUDGET", "MODELS",
                    ],
                    &rows,
                );
            }
        }
        KeysCommand::Show(a) => {
            let view = admin::show_key(store, &a.id).await?;
            if a.json {
                print_json(&view)?;
            } else {
                describe(&view.record);
                if let Some(spent) = view.spent_usd {
                    println!("{:<16}${spent:.4}", "spent");
                }
                if let Some(at) = view.budget_resets_at {
                    println!("{:<16}{}", "resets", time_text(Some(at)));
                }
            }
        }
        KeysCommand::Revoke(a) => {
            let record = admin::revoke_key(store, &a.id).await?;
            if a.json {
                print_json(&record)?;
            } else {
                println!("revoked {} ({})", record.id, record.name);
            }
        }
        KeysCommand::Rotate(a) => {
            let (record, secret) = admin::rotate_key(store, &a.id).await?;
            print_secret(
                &KeyView {
                    record,
                    key: Some(secret),
                    spent_usd: None,
                    budget_resets_at: None,
                },
                a.json,
            )?;
        }
        KeysCommand::Update(a) => {
            let limit = |v: Option<u32>| v.map(|v| (v > 0).then_some(v));
            let patch = KeyPatch {
                name: a.name,
                models: a
                    .models
                    .map(|m| m.into_iter().filter(|g| !g.trim().is_empty()).collect()),
                rpm: limit(a.rpm),
                tpm: limit(a.tpm),
                max_concurrency: limit(a.max_concurrency),
                budget_usd: a.budget.map(|b| (b >= 0.0).then_some(b)),
                budget_period: a.period.map(Into::into),
                enabled: if a.enable {
                    Some(true)
                } else if a.disable {
                    Some(false)
                } else {
                    None
                },
                ..KeyPatch::default()
            };
            let record = admin::update_key(store, &a.id, &patch).await?;
            if a.json {
                print_json(&record)?;
            } else {
                describe(&record);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `llm usage`.
pub async fn usage(config_path: Option<&Path>, a: UsageArgs) -> anyhow::Result<ExitCode> {
    let store = open_store(config_path).await?;
    let group_by = match a.by {
        By::Key => GroupBy::Key,
        By::Model => GroupBy::Model,
        By::Day => GroupBy::Day,
    };
    let lines = admin::usage_report(
        store.as_ref(),
        group_by,
        a.from.as_deref(),
        a.to.as_deref(),
        a.key.as_deref(),
    )
    .await?;
    if a.json {
        return print_json(&lines).map(|()| ExitCode::SUCCESS);
    }
    let first = match a.by {
        By::Key => "KEY",
        By::Model => "MODEL",
        By::Day => "DAY",
    };
    let mut header = vec![first];
    if a.by == By::Key {
        header.push("NAME");
    }
    header.extend(["REQUESTS", "ERRORS", "TOKENS IN", "TOKENS OUT", "COST USD"]);
    let mut total = (0u64, 0u64, 0u64, 0u64, 0f64);
    let mut rows: Vec<Vec<String>> = Vec::with_capacity(lines.len() + 1);
    for l in &lines {
        let r = &l.row;
        total.0 += r.requests;
        total.1 += r.errors;
        total.2 += r.tokens_in;
        total.3 += r.tokens_out;
        total.4 += r.cost_usd;
        let mut row = vec![if r.group.is_empty() {
            "(config keys)".to_string()
        } else {
            r.group.clone()
        }];
        if a.by == By::Key {
            row.push(opt(l.name.as_deref()));
        }
        row.extend([
            r.requests.to_string(),
            r.errors.to_string(),
            r.tokens_in.to_string(),
            r.tokens_out.to_string(),
            format!("{:.6}", r.cost_usd),
        ]);
        rows.push(row);
    }
    let mut row = vec!["TOTAL".to_string()];
    if a.by == By::Key {
        row.push(String::new());
    }
    row.extend([
        total.0.to_string(),
        total.1.to_string(),
        total.2.to_string(),
        total.3.to_string(),
        format!("{:.6}", total.4),
    ]);
    rows.push(row);
    print_table(&header, &rows);
    Ok(ExitCode::SUCCESS)
}
