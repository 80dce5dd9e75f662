//! The files of a scaffolded provider crate, with `{{placeholder}}`s.

use anyhow::{bail, Result};

/// Path inside the new crate and template text (everything but `Cargo.toml`,
/// which depends on where the crate lives and is written by `new_provider`).
pub(crate) const PROVIDER_FILES: &[(&str, &str)] = &[
    (
        "README.md",
        include_str!("../templates/provider/README.md.tmpl"),
    ),
    (
        "src/lib.rs",
        include_str!("../templates/provider/src/lib.rs.tmpl"),
    ),
    (
        "src/config.rs",
        include_str!("../templates/provider/src/config.rs.tmpl"),
    ),
    (
        "src/provider.rs",
        include_str!("../templates/provider/src/provider.rs.tmpl"),
    ),
    (
        "src/stream.rs",
        include_str!("../templates/provider/src/stream.rs.tmpl"),
    ),
    (
        "src/wire.rs",
        include_str!("../templates/provider/src/wire.rs.tmpl"),
    ),
    (
        "src/error.rs",
        include_str!("../templates/provider/src/error.rs.tmpl"),
    ),
    (
        "tests/integration/main.rs",
        include_str!("../templates/provider/tests/integration/main.rs.tmpl"),
    ),
    (
        "tests/integration/fixtures.rs",
        include_str!("../templates/provider/tests/integration/fixtures.rs.tmpl"),
    ),
    (
        "tests/integration/provider.rs",
        include_str!("../templates/provider/tests/integration/provider.rs.tmpl"),
    ),
    (
        "tests/integration/mapping.rs",
        include_str!("../templates/provider/tests/integration/mapping.rs.tmpl"),
    ),
    (
        "tests/integration/conformance.rs",
        include_str!("../templates/provider/tests/integration/conformance.rs.tmpl"),
    ),
    (
        "tests/fixtures/completion.json",
        include_str!("../templates/provider/tests/fixtures/completion.json.tmpl"),
    ),
    (
        "tests/fixtures/models.json",
        include_str!("../templates/provider/tests/fixtures/models.json.tmpl"),
    ),
    (
        "tests/fixtures/stream.sse",
        include_str!("../templates/provider/tests/fixtures/stream.sse.tmpl"),
    ),
    (
        "tests/fixtures/stream_cjk.sse",
        include_str!("../templates/provider/tests/fixtures/stream_cjk.sse.tmpl"),
    ),
    (
        "tests/fixtures/stream_error.sse",
        include_str!("../templates/provider/tests/fixtures/stream_error.sse.tmpl"),
    ),
    (
        "tests/fixtures/unauthorized.json",
        include_str!("../templates/provider/tests/fixtures/unauthorized.json.tmpl"),
    ),
    (
        "tests/fixtures/forbidden.json",
        include_str!("../templates/provider/tests/fixtures/forbidden.json.tmpl"),
    ),
    (
        "tests/fixtures/model_not_found.json",
        include_str!("../templates/provider/tests/fixtures/model_not_found.json.tmpl"),
    ),
    (
        "tests/fixtures/rate_limited.json",
        include_str!("../templates/provider/tests/fixtures/rate_limited.json.tmpl"),
    ),
    (
        "tests/fixtures/server_error.json",
        include_str!("../templates/provider/tests/fixtures/server_error.json.tmpl"),
    ),
    (
        "tests/fixtures/unavailable.json",
        include_str!("../templates/provider/tests/fixtures/unavailable.json.tmpl"),
    ),
];

/// Replaces every `{{key}}` of `vars` in `template`; a placeholder left over is an error.
pub(crate) fn render(template: &str, vars: &[(&str, String)]) -> Result<String> {
    let mut out = template.to_string();
    for (key, value) in vars {
        out = out.replace(&format!("{{{{{key}}}}}"), value);
    }
    if let Some(left) = leftover_placeholder(&out) {
        bail!("template placeholder `{{{{{left}}}}}` has no value");
    }
    Ok(out)
}

/// The first `{{identifier}}` in `text`.
fn leftover_placeholder(text: &str) -> Option<&str> {
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        if len > 0 && after[len..].starts_with("}}") {
            return Some(&after[..len]);
        }
        rest = &rest[start + 1..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_and_rejects_leftovers() {
        let vars = [("kind", "acme".to_string()), ("ENV", "ACME".to_string())];
        assert_eq!(
            render("${{{ENV}}_KEY} {{kind}}", &vars).unwrap(),
            "${ACME_KEY} acme"
        );
        assert!(render("{{nope}}", &vars).is_err());
        assert_eq!(
            render("format!(\"{{}}\")", &vars).unwrap(),
            "format!(\"{{}}\")"
        );
    }

    #[test]
    fn every_template_renders_with_the_scaffold_vars() {
        let vars = crate::new_provider::Names::new("my-llm").unwrap().vars();
        for (path, text) in PROVIDER_FILES {
            let out = render(text, &vars).unwrap_or_else(|e| panic!("{path}: {e}"));
            assert!(!out.contains("{{kind}}"), "{path}");
        }
    }
}
