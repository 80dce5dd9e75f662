//! The Kubernetes manifests (deploy/kubernetes) agree with each other, with
//! the gateway's configuration and with the image: the ConfigMap's TOML
//! loads, the drain budget adds up, selectors, ports and names match.
//! (Their schemas are checked offline by `.ci/k8s.sh`.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use llm_router::config::{CacheBackend, Config};
use yaml_rust2::{Yaml, YamlLoader};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every YAML document of a file.
fn docs(path: &str) -> Vec<Yaml> {
    YamlLoader::load_from_str(&read(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The one document of a file.
fn doc(path: &str) -> Yaml {
    let mut d = docs(path);
    assert_eq!(d.len(), 1, "{path} holds one resource");
    d.remove(0)
}

fn str_of<'a>(y: &'a Yaml, what: &str) -> &'a str {
    y.as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {y:?}"))
}

fn int_of(y: &Yaml, what: &str) -> i64 {
    y.as_i64()
        .unwrap_or_else(|| panic!("{what} is not an integer: {y:?}"))
}

/// A label map as sorted (key, value) pairs.
fn labels(y: &Yaml) -> BTreeSet<(String, String)> {
    y.as_hash()
        .unwrap_or_else(|| panic!("not a map: {y:?}"))
        .iter()
        .map(|(k, v)| {
            (
                str_of(k, "label").to_string(),
                str_of(v, "label").to_string(),
            )
        })
        .collect()
}

fn deployment() -> Yaml {
    doc("deploy/kubernetes/deployment.yaml")
}

fn container() -> Yaml {
    let d = deployment();
    let containers = d["spec"]["template"]["spec"]["containers"]
        .as_vec()
        .unwrap();
    assert_eq!(containers.len(), 1, "one container: the gateway");
    containers[0].clone()
}

/// The TOML held by the ConfigMap.
fn config_toml() -> String {
    let cm = doc("deploy/kubernetes/configmap.yaml");
    str_of(&cm["data"]["config.toml"], "config.toml").to_string()
}

/// The environment the Deployment gives the container, with a value for
/// each secret.
fn pod_env(var: &str) -> Option<String> {
    let c = container();
    c["env"].as_vec().unwrap().iter().find_map(|e| {
        (e["name"].as_str() == Some(var)).then(|| {
            e["value"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| match var {
                    "LLM_STORE_URL" => "postgres://llm:pw@postgres:5432/llm".to_string(),
                    "REDIS_URL" => String::new(),
                    _ => format!("value-of-{var}"),
                })
        })
    })
}

fn load(env: &dyn Fn(&str) -> Option<String>) -> Result<Config, String> {
    Config::from_toml_str_with_env(
        &config_toml(),
        Some(PathBuf::from("deploy/kubernetes/configmap.yaml")),
        env,
    )
    .map_err(|e| e.to_string())
}

#[test]
fn the_configmap_loads_with_the_deployments_environment() {
    let config = load(&pod_env).unwrap();
    assert_eq!(config.gateway.addr, "0.0.0.0:8000");
    assert!(config.caching.enabled);
    assert_eq!(config.caching.backend, CacheBackend::Redis);
    assert_eq!(config.caching.redis_url, "redis://redis:6379");
    assert_eq!(
        config.gateway.store.url.as_deref(),
        Some("postgres://llm:pw@postgres:5432/llm")
    );
    assert_eq!(
        config.gateway.store.redis_url.as_deref(),
        Some("redis://redis:6379"),
        "rate limits and budgets are shared by the replicas"
    );
    assert!(config.gateway.master_key.is_some());
    assert_eq!(config.gateway.api_keys.len(), 1);
    assert!(config.gateway.watch_config, "ConfigMap edits are picked up");
    assert!(config.monitoring.enabled);
    assert!(config.build_providers().unwrap().len() >= 2);
}

#[test]
fn the_configmap_requires_the_store_url_and_the_master_key() {
    for var in ["LLM_STORE_URL", "LLM_MASTER_KEY", "LLM_GATEWAY_KEY"] {
        let err = load(&|v| if v == var { None } else { pod_env(v) }).unwrap_err();
        assert!(err.contains(var), "{var}: {err}");
    }
}

#[test]
fn the_termination_grace_covers_prestop_drain_delay_and_shutdown_grace() {
    let config = load(&pod_env).unwrap();
    let c = container();
    let sleep = c["lifecycle"]["preStop"]["exec"]["command"]
        .as_vec()
        .unwrap();
    assert_eq!(str_of(&sleep[0], "preStop command"), "sleep");
    let pre_stop = Duration::from_secs(str_of(&sleep[1], "sleep").parse().unwrap());
    assert!(
        pre_stop >= Duration::from_secs(3),
        "endpoints need time to drop the pod"
    );
    let drain = config.gateway.drain_delay.0;
    let grace = config.gateway.shutdown_grace.0;
    assert!(
        drain > Duration::ZERO,
        "a draining replica keeps accepting a while"
    );
    let period = Duration::from_secs(
        int_of(
            &deployment()["spec"]["template"]["spec"]["terminationGracePeriodSeconds"],
            "terminationGracePeriodSeconds",
        )
        .try_into()
        .unwrap(),
    );
    // `llm serve` then waits at most this long for the spend log's last
    // rows (SPEND_FLUSH_AT_EXIT in llm-cli's serve command).
    let flush = Duration::from_secs(5);
    let needed = pre_stop + drain + grace + flush;
    assert!(
        period > needed,
        "terminationGracePeriodSeconds {period:?} must exceed preStop {pre_stop:?} + \
         drain_delay {drain:?} + shutdown_grace {grace:?} + spend-log flush {flush:?}"
    );
    assert!(
        period <= needed + Duration::from_secs(15),
        "{period:?}: a much longer grace only delays the kill of a stuck pod"
    );
}

#[test]
fn probes_use_the_orchestrator_health_endpoints() {
    let c = container();
    for (probe, path) in [
        ("readinessProbe", "/health/ready"),
        ("livenessProbe", "/health/live"),
        ("startupProbe", "/health/live"),
    ] {
        let get = &c[probe]["httpGet"];
        assert_eq!(get["path"].as_str(), Some(path), "{probe}");
        assert_eq!(get["port"].as_str(), Some("http"), "{probe}");
    }
}

#[test]
fn names_ports_and_selectors_match() {
    let d = deployment();
    let pod_labels = labels(&d["spec"]["template"]["metadata"]["labels"]);
    assert!(labels(&d["spec"]["selector"]["matchLabels"]).is_subset(&pod_labels));
    assert_eq!(int_of(&d["spec"]["replicas"], "replicas"), 3);

    let c = container();
    let ports = c["ports"].as_vec().unwrap();
    let http = ports
        .iter()
        .find(|p| p["name"].as_str() == Some("http"))
        .expect("a port named http");
    let config = load(&pod_env).unwrap();
    assert_eq!(
        config.gateway.addr,
        format!(
            "0.0.0.0:{}",
            int_of(&http["containerPort"], "containerPort")
        ),
        "the gateway listens on the container port"
    );
    let args: Vec<&str> = c["args"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|a| str_of(a, "arg"))
        .collect();
    let config_path = args[args.iter().position(|a| *a == "--config").unwrap() + 1];
    let mount = c["volumeMounts"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|m| m["name"].as_str() == Some("config"))
        .expect("the config volume is mounted");
    assert_eq!(
        format!("{}/config.toml", str_of(&mount["mountPath"], "mountPath")),
        config_path
    );
    assert!(
        mount["subPath"].is_badvalue(),
        "a subPath mount never updates"
    );
    let volume = d["spec"]["template"]["spec"]["volumes"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|v| v["name"].as_str() == Some("config"))
        .unwrap()
        .clone();
    let cm = doc("deploy/kubernetes/configmap.yaml");
    assert_eq!(volume["configMap"]["name"], cm["metadata"]["name"]);

    let svc = doc("deploy/kubernetes/service.yaml");
    assert!(labels(&svc["spec"]["selector"]).is_subset(&pod_labels));
    let svc_port = &svc["spec"]["ports"][0];
    assert_eq!(svc_port["targetPort"].as_str(), Some("http"));

    let pdb = doc("deploy/kubernetes/pdb.yaml");
    assert_eq!(
        labels(&pdb["spec"]["selector"]["matchLabels"]),
        labels(&d["spec"]["selector"]["matchLabels"])
    );

    let hpa = doc("deploy/kubernetes/hpa.yaml");
    assert_eq!(
        hpa["spec"]["scaleTargetRef"]["kind"].as_str(),
        Some("Deployment")
    );
    assert_eq!(hpa["spec"]["scaleTargetRef"]["name"], d["metadata"]["name"]);
    assert_eq!(int_of(&hpa["spec"]["minReplicas"], "minReplicas"), 3);
    let metric = &hpa["spec"]["metrics"][0]["resource"];
    assert_eq!(metric["name"].as_str(), Some("cpu"));

    let sm = doc("deploy/kubernetes/servicemonitor.yaml");
    assert!(labels(&sm["spec"]["selector"]["matchLabels"])
        .is_subset(&labels(&svc["metadata"]["labels"])));
    let endpoint = &sm["spec"]["endpoints"][0];
    assert_eq!(endpoint["port"], svc_port["name"]);
    assert_eq!(endpoint["path"].as_str(), Some("/metrics"));
}

#[test]
fn the_pod_runs_locked_down_as_the_images_user() {
    let d = deployment();
    let pod = &d["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"].as_bool(), Some(true));
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"].as_str(),
        Some("RuntimeDefault")
    );
    let uid = int_of(&pod["securityContext"]["runAsUser"], "runAsUser");
    assert_ne!(uid, 0);
    let dockerfile = read("Dockerfile");
    let user = dockerfile
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("USER "))
        .expect("the Dockerfile sets a USER");
    assert_eq!(user.split(':').next(), Some(uid.to_string().as_str()));

    let sc = &container()["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"].as_bool(), Some(true));
    assert_eq!(sc["allowPrivilegeEscalation"].as_bool(), Some(false));
    let dropped: Vec<&str> = sc["capabilities"]["drop"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|c| str_of(c, "capability"))
        .collect();
    assert_eq!(dropped, ["ALL"]);

    let resources = &container()["resources"];
    for kind in ["requests", "limits"] {
        for what in ["cpu", "memory"] {
            assert!(
                !resources[kind][what].is_badvalue(),
                "resources.{kind}.{what} is set"
            );
        }
    }
}

#[test]
fn every_secret_the_pod_needs_is_in_the_example_secret_which_is_not_applied() {
    let example = doc("deploy/kubernetes/examples/secret.example.yaml");
    let keys: BTreeSet<String> = example["stringData"]
        .as_hash()
        .unwrap()
        .keys()
        .map(|k| str_of(k, "key").to_string())
        .collect();
    for e in container()["env"].as_vec().unwrap() {
        let r = &e["valueFrom"]["secretKeyRef"];
        if r.is_badvalue() || r["optional"].as_bool() == Some(true) {
            continue;
        }
        assert_eq!(r["name"], example["metadata"]["name"]);
        let key = str_of(&r["key"], "key");
        assert!(
            keys.contains(key),
            "{key} is missing from the example Secret"
        );
    }
    let kustomization = doc("deploy/kubernetes/kustomization.yaml");
    let resources: Vec<&str> = kustomization["resources"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|r| str_of(r, "resource"))
        .collect();
    assert!(
        resources
            .iter()
            .all(|r| !r.contains("example") && !r.contains("secret")),
        "{resources:?}: secrets are applied by the operator, not by the kustomization"
    );
    for r in resources {
        assert!(root().join("deploy/kubernetes").join(r).is_file(), "{r}");
    }
}
