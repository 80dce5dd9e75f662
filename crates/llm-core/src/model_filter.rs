//! Which instances and models may serve a request: globs over the names a
//! routed call goes by, checked by the router for every place of the plan
//! (primary, fallbacks, last resort), so a fallback never leaves them.

use serde::{Deserialize, Serialize};

/// Globs a request's route must stay within ([`LlmRequest::allowed_models`]).
///
/// An instance may serve the request when a glob matches the model it would
/// be sent (`gpt-4o-mini`), `instance/model` (`openai/gpt-4o-mini`), or,
/// when that model is the instance's default model, the instance's name
/// alone (`openai`). An empty filter allows nothing; see [`glob_match`] for
/// the syntax.
///
/// ```
/// use llm_core::ModelFilter;
///
/// let f = ModelFilter::new(["openai/*", "claude-*"]);
/// assert!(f.allows("openai", "gpt-4o-mini", false));
/// assert!(f.allows("anthropic", "claude-sonnet-4", false));
/// assert!(!f.allows("ollama", "llama3", true));
/// assert!(ModelFilter::new(["ollama"]).allows("ollama", "llama3", true));
/// ```
///
/// [`LlmRequest::allowed_models`]: crate::LlmRequest::allowed_models
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(from = "Vec<String>", into = "Vec<String>")]
pub struct ModelFilter {
    globs: Vec<String>,
}

impl From<Vec<String>> for ModelFilter {
    /// The same as [`ModelFilter::new`] (globs trimmed).
    fn from(globs: Vec<String>) -> Self {
        Self::new(globs)
    }
}

impl From<ModelFilter> for Vec<String> {
    fn from(filter: ModelFilter) -> Self {
        filter.globs
    }
}

impl ModelFilter {
    /// A filter of `globs` (surrounding whitespace ignored).
    pub fn new<S: Into<String>>(globs: impl IntoIterator<Item = S>) -> Self {
        Self {
            globs: globs
                .into_iter()
                .map(|g| g.into().trim().to_string())
                .collect(),
        }
    }

    /// The globs, in order.
    pub fn globs(&self) -> &[String] {
        &self.globs
    }

    /// Whether `instance` may serve the request with `model`
    /// (`is_default`: `model` is the instance's default model).
    pub fn allows(&self, instance: &str, model: &str, is_default: bool) -> bool {
        let pair = format!("{instance}/{model}");
        self.globs.iter().any(|g| {
            glob_match(g, model) || glob_match(g, &pair) || (is_default && glob_match(g, instance))
        })
    }
}

/// Whether `glob` matches `text`: `*` is any run of characters (`/`
/// included), `?` one character; everything else matches itself, ASCII
/// case-insensitively.
///
/// ```
/// use llm_core::glob_match;
///
/// assert!(glob_match("openai/*", "openai/gpt-4o-mini"));
/// assert!(glob_match("GPT-?o", "gpt-4o"));
/// assert!(!glob_match("gpt-4o", "gpt-4o-mini"));
/// ```
pub fn glob_match(glob: &str, text: &str) -> bool {
    let g: Vec<char> = glob.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut gi, mut ti) = (0usize, 0usize);
    // Where the last `*` was, and the text position it is trying to cover up to.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match g.get(gi) {
            Some('*') => {
                star = Some((gi, ti));
                gi += 1;
            }
            Some(c) if *c == '?' || c.eq_ignore_ascii_case(&t[ti]) => {
                gi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sg, st)) => {
                    gi = sg + 1;
                    ti = st + 1;
                    star = Some((sg, st + 1));
                }
                None => return false,
            },
        }
    }
    g[gi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_models_and_instances() {
        assert!(glob_match("openai/*", "openai/gpt-4o-mini"));
        assert!(!glob_match("openai/*", "gpt-4o-mini"));
        assert!(glob_match("gpt-4o*", "gpt-4o-mini"));
        assert!(glob_match("*", "anything/at/all"));
        assert!(glob_match("*mini", "gpt-4o-mini"));
        assert!(glob_match("gpt-?o", "gpt-4o"));
        assert!(!glob_match("gpt-?o", "gpt-40o"));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("a*b*c", "aXXbYY"));
        assert!(glob_match("GPT-4O", "gpt-4o"));
        assert!(!glob_match("", "x"));
        assert!(glob_match("", ""));
    }

    #[test]
    fn a_filter_allows_by_model_pair_or_default_instance() {
        let f = ModelFilter::new([" gpt-4o* ", "anthropic/*", "local"]);
        assert_eq!(f.globs(), ["gpt-4o*", "anthropic/*", "local"]);
        assert!(f.allows("azure", "gpt-4o-mini", false));
        assert!(f.allows("anthropic", "claude-sonnet-4", false));
        assert!(!f.allows("openai", "o3", false));
        // The instance's name alone covers its default model only.
        assert!(f.allows("local", "llama3", true));
        assert!(!f.allows("local", "qwen3", false));
        assert!(!ModelFilter::default().allows("openai", "gpt-4o", true));
        // Read back from JSON the same way: trimmed.
        let read: ModelFilter = serde_json::from_str(r#"[" gpt-4o ", "local"]"#).unwrap();
        assert_eq!(read, ModelFilter::new(["gpt-4o", "local"]));
        assert_eq!(
            serde_json::to_string(&read).unwrap(),
            r#"["gpt-4o","local"]"#
        );
    }
}
