//! The deployment files: docker-compose.yml, monitoring/prometheus.yml,
//! config/docker.toml and the Dockerfile agree with each other and load.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::workspace;
use std::path::PathBuf;
use std::process::Command;

use llm_router::config::{CacheBackend, Config};
use yaml_rust2::{Yaml, YamlLoader};

fn read(path: &str) -> String {
    std::fs::read_to_string(workspace().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn yaml(path: &str) -> Yaml {
    let mut docs = YamlLoader::load_from_str(&read(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(docs.len(), 1, "{path} holds one YAML document");
    docs.remove(0)
}

/// The strings of a YAML list (empty when absent).
fn strings(y: &Yaml) -> Vec<String> {
    y.as_vec()
        .map(|v| {
            v.iter()
                .map(|i| match i {
                    Yaml::String(s) => s.clone(),
                    Yaml::Integer(n) => n.to_string(),
                    other => panic!("not a string: {other:?}"),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Where the gateway reads its configuration in the image.
const CONFIG_IN_IMAGE: &str = "/etc/llm/config.toml";

#[test]
fn compose_has_the_services_of_the_design() {
    let compose = yaml("docker-compose.yml");
    let services = &compose["services"];
    let names: Vec<&str> = services
        .as_hash()
        .expect("a services map")
        .keys()
        .filter_map(Yaml::as_str)
        .collect();
    for s in ["gateway", "ollama", "redis", "prometheus"] {
        assert!(names.contains(&s), "service {s} in {names:?}");
    }

    let gateway = &services["gateway"];
    assert_eq!(
        gateway["build"].as_str(),
        Some("."),
        "built from the Dockerfile"
    );
    assert!(strings(&gateway["ports"]).contains(&"8000:8000".to_string()));
    let command = strings(&gateway["command"]).join(" ");
    assert!(
        command.contains("serve --addr 0.0.0.0:8000") && command.contains(CONFIG_IN_IMAGE),
        "{command}"
    );
    assert!(strings(&gateway["volumes"])
        .contains(&format!("./config/docker.toml:{CONFIG_IN_IMAGE}:ro")));
    assert!(
        !gateway["environment"]["LLM_GATEWAY_KEY"].is_badvalue(),
        "the gateway gets its bearer key from the environment"
    );

    let ollama = &services["ollama"];
    assert!(ollama["image"]
        .as_str()
        .unwrap()
        .starts_with("ollama/ollama"));
    assert!(strings(&ollama["ports"]).contains(&"11434:11434".to_string()));
    let volumes = strings(&ollama["volumes"]);
    assert!(
        volumes.iter().any(|v| v.ends_with(":/root/.ollama")),
        "models are kept in a volume: {volumes:?}"
    );
    let named = volumes[0].split(':').next().unwrap();
    assert!(
        !compose["volumes"][named].is_badvalue(),
        "volume {named} is declared"
    );

    assert_eq!(services["redis"]["image"].as_str(), Some("redis:7-alpine"));

    let prometheus = &services["prometheus"];
    assert!(prometheus["image"]
        .as_str()
        .unwrap()
        .starts_with("prom/prometheus"));
    assert!(strings(&prometheus["ports"]).contains(&"9090:9090".to_string()));
    assert!(strings(&prometheus["volumes"])
        .contains(&"./monitoring/prometheus.yml:/etc/prometheus/prometheus.yml:ro".to_string()));
}

#[test]
fn prometheus_scrapes_the_gateway_metrics() {
    let prom = yaml("monitoring/prometheus.yml");
    let jobs = prom["scrape_configs"].as_vec().expect("scrape_configs");
    let gateway = jobs
        .iter()
        .find(|j| {
            j["static_configs"]
                .as_vec()
                .into_iter()
                .flatten()
                .any(|s| strings(&s["targets"]).contains(&"gateway:8000".to_string()))
        })
        .expect("a job scraping gateway:8000");
    // `/metrics` is also Prometheus' default path.
    let path = gateway["metrics_path"].as_str().unwrap_or("/metrics");
    assert_eq!(path, "/metrics");
}

#[test]
fn promtool_accepts_the_prometheus_config() {
    let available = Command::new("promtool").arg("--version").output().is_ok();
    if !available {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "promtool is required in CI (Debian package `prometheus`)"
        );
        eprintln!("skipped: promtool is not installed (apt-get install prometheus)");
        return;
    }
    let out = Command::new("promtool")
        .args(["check", "config", "monitoring/prometheus.yml"])
        .current_dir(workspace())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool check config failed\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn load_docker_config(env: &dyn Fn(&str) -> Option<String>) -> Result<Config, String> {
    Config::from_toml_str_with_env(
        &read("config/docker.toml"),
        Some(PathBuf::from("config/docker.toml")),
        env,
    )
    .map_err(|e| e.to_string())
}

#[test]
fn the_docker_config_points_at_the_compose_services() {
    let config =
        load_docker_config(&|var| (var == "LLM_GATEWAY_KEY").then(|| "k".to_string())).unwrap();

    let ollama = config.provider("ollama").expect("an ollama instance");
    assert!(ollama.enabled);
    let spec = ollama.spec.as_ref().unwrap();
    assert_eq!(
        spec.options["base_url"].as_str(),
        Some("http://ollama:11434"),
        "the compose service name"
    );
    assert!(config.build_providers().unwrap().len() >= 2);

    assert!(config.caching.enabled);
    assert_eq!(config.caching.backend, CacheBackend::Redis);
    assert_eq!(config.caching.redis_url, "redis://redis:6379");

    assert_eq!(config.gateway.addr, "0.0.0.0:8000");
    assert_eq!(config.gateway.api_keys.len(), 1);
    assert!(config.monitoring.enabled);
}

#[test]
fn the_docker_config_requires_the_gateway_key() {
    let err = load_docker_config(&|_| None).unwrap_err();
    assert!(err.contains("LLM_GATEWAY_KEY"), "{err}");
    assert!(err.contains("gateway.api_keys"), "{err}");
}

#[test]
fn the_dockerfile_builds_the_gateway_into_a_small_non_root_image() {
    let dockerfile = read("Dockerfile");
    let lines: Vec<&str> = dockerfile
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .collect();
    let from: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("FROM "))
        .collect();
    assert_eq!(from.len(), 2, "a build stage and a runtime stage: {from:?}");
    assert!(from[0].starts_with("rust:") && from[0].ends_with(" AS builder"));
    assert_eq!(from[1], "debian:bookworm-slim");
    assert!(dockerfile.contains("cargo build --release --locked -p llm-cli"));
    assert!(dockerfile.contains("ca-certificates"));
    let user = lines
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("a USER line");
    assert!(
        !["root", "0", "0:0"].contains(&user),
        "the gateway runs as a non-root user"
    );
    assert!(lines.contains(&"EXPOSE 8000"));
    assert!(dockerfile.contains(&format!("COPY config/docker.toml {CONFIG_IN_IMAGE}")));
    assert!(dockerfile.contains(&format!(
        r#"CMD ["serve", "--addr", "0.0.0.0:8000", "--config", "{CONFIG_IN_IMAGE}"]"#
    )));
    assert!(lines.contains(&r#"ENTRYPOINT ["llm"]"#));

    let ignore = read(".dockerignore");
    assert!(ignore.lines().any(|l| l.trim() == "target/"));
    for member in ["crates/", "xtask/", "tests/"] {
        assert!(
            !ignore.lines().any(|l| l.trim() == member),
            "workspace member {member} must stay in the build context"
        );
    }
}
