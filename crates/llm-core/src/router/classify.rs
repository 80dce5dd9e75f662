//! Task classification: simple tasks go to a cheap local model, complex ones
//! to the strongest available provider.

use std::fmt;

use serde::Serialize;

use crate::config::RulesConfig;
use crate::types::LlmRequest;

/// The class of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskClass {
    /// Short prompt, small answer: the cheapest available local provider.
    Simple,
    /// Long prompt, long answer or creative writing: the strongest available provider.
    Complex,
    /// Neither: the routing strategy decides.
    Standard,
}

impl fmt::Display for TaskClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TaskClass::Simple => "simple",
            TaskClass::Complex => "complex",
            TaskClass::Standard => "standard",
        })
    }
}

/// A classification and the measurements behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Classification {
    /// The class.
    pub class: TaskClass,
    /// Why, e.g. `max_tokens 4000 > 3000`.
    pub reason: String,
    /// Prompt length in characters (Unicode scalar values).
    pub prompt_chars: usize,
}

impl fmt::Display for Classification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.class, self.reason)
    }
}

/// Classifies a request. Simple is checked first, as in the original design: a
/// short prompt that mentions a creative keyword with a small `max_tokens` is simple.
///
/// ```
/// use llm_core::config::RulesConfig;
/// use llm_core::router::{classify, TaskClass};
/// use llm_core::LlmRequest;
///
/// let rules = RulesConfig::default();
/// assert_eq!(classify(&LlmRequest::new("Hello").max_tokens(100), &rules).class, TaskClass::Simple);
/// assert_eq!(classify(&LlmRequest::new("Hello").max_tokens(4000), &rules).class, TaskClass::Complex);
/// ```
pub fn classify(req: &LlmRequest, rules: &RulesConfig) -> Classification {
    classify_with(req, rules, true)
}

/// [`classify`]; without `explain`, the reason is left empty (the class
/// and measurements are the same).
pub(crate) fn classify_with(
    req: &LlmRequest,
    rules: &RulesConfig,
    explain: bool,
) -> Classification {
    let chars = req.prompt_chars();
    let tokens = req.max_tokens;
    let make = |class, reason: &dyn Fn() -> String| Classification {
        class,
        reason: if explain { reason() } else { String::new() },
        prompt_chars: chars,
    };
    // An unset max_tokens is no length signal.
    let shown = || {
        tokens.map_or_else(
            || "max_tokens unset".to_string(),
            |t| format!("max_tokens {t}"),
        )
    };
    if chars < rules.simple_max_chars && tokens.is_none_or(|t| t < rules.simple_max_tokens) {
        return make(TaskClass::Simple, &|| {
            let limit = match tokens {
                Some(_) => format!("{} < {}", shown(), rules.simple_max_tokens),
                None => shown(),
            };
            format!("{chars} chars < {}, {limit}", rules.simple_max_chars)
        });
    }
    if chars > rules.complex_min_chars {
        return make(TaskClass::Complex, &|| {
            format!("{chars} chars > {}", rules.complex_min_chars)
        });
    }
    if let Some(tokens) = tokens.filter(|t| *t > rules.complex_min_tokens) {
        return make(TaskClass::Complex, &|| {
            format!("max_tokens {tokens} > {}", rules.complex_min_tokens)
        });
    }
    let text = req.prompt_text();
    if let Some(k) = rules
        .complex_keywords
        .iter()
        .find(|k| !k.is_empty() && text.contains(k.as_str()))
    {
        return make(TaskClass::Complex, &|| format!("keyword `{k}`"));
    }
    make(TaskClass::Standard, &|| {
        format!("{chars} chars, {}", shown())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(req: &LlmRequest) -> TaskClass {
        classify(req, &RulesConfig::default()).class
    }

    #[test]
    fn unset_max_tokens_is_no_length_signal() {
        let c = classify(
            &LlmRequest::new("用一句话介绍 Rust 语言"),
            &RulesConfig::default(),
        );
        assert_eq!(c.class, TaskClass::Simple);
        assert!(c.reason.contains("max_tokens unset"), "{}", c.reason);
        let p1001 = "中".repeat(1001);
        let c = classify(&LlmRequest::new(p1001), &RulesConfig::default());
        assert_eq!(c.class, TaskClass::Standard);
        assert!(c.reason.contains("max_tokens unset"), "{}", c.reason);
    }

    #[test]
    fn original_design_cases() {
        assert_eq!(
            class(&LlmRequest::new("Hello").max_tokens(100)),
            TaskClass::Simple
        );
        let long = "写一篇关于人工智能的深度分析文章".repeat(100);
        let c = classify(
            &LlmRequest::new(long).max_tokens(4000),
            &RulesConfig::default(),
        );
        assert_eq!(c.class, TaskClass::Complex);
    }

    #[test]
    fn chinese_boundary_counts_characters_not_bytes() {
        let p999 = "中".repeat(999);
        assert_eq!(p999.len(), 2997);
        assert_eq!(
            class(&LlmRequest::new(p999).max_tokens(100)),
            TaskClass::Simple
        );
        let p1001 = "中".repeat(1001);
        assert_eq!(
            class(&LlmRequest::new(p1001).max_tokens(100)),
            TaskClass::Standard
        );
        let p5001 = "中".repeat(5001);
        assert_eq!(
            class(&LlmRequest::new(p5001).max_tokens(100)),
            TaskClass::Complex
        );
        let p5000 = "中".repeat(5000);
        assert_eq!(
            class(&LlmRequest::new(p5000).max_tokens(100)),
            TaskClass::Standard
        );
    }

    #[test]
    fn max_tokens_boundaries() {
        assert_eq!(
            class(&LlmRequest::new("hi").max_tokens(1999)),
            TaskClass::Simple
        );
        assert_eq!(
            class(&LlmRequest::new("hi").max_tokens(2000)),
            TaskClass::Standard
        );
        assert_eq!(
            class(&LlmRequest::new("hi").max_tokens(3000)),
            TaskClass::Standard
        );
        assert_eq!(
            class(&LlmRequest::new("hi").max_tokens(3001)),
            TaskClass::Complex
        );
    }

    #[test]
    fn keywords_make_complex_unless_simple_first() {
        assert_eq!(
            class(&LlmRequest::new("请帮我创作一首诗").max_tokens(100)),
            TaskClass::Simple
        );
        let c = classify(
            &LlmRequest::new("请帮我创作一首诗").max_tokens(2500),
            &RulesConfig::default(),
        );
        assert_eq!(c.class, TaskClass::Complex);
        assert_eq!(c.reason, "keyword `创作`");
        assert_eq!(
            class(&LlmRequest::new("一些创意").max_tokens(2500)),
            TaskClass::Complex
        );
        let rules = RulesConfig {
            complex_keywords: vec!["novel".into()],
            ..RulesConfig::default()
        };
        assert_eq!(
            classify(&LlmRequest::new("a novel").max_tokens(2500), &rules).class,
            TaskClass::Complex
        );
    }

    #[test]
    fn system_prompt_is_not_measured() {
        let req = LlmRequest::new("hi")
            .system("创作".repeat(5000))
            .max_tokens(2500);
        assert_eq!(class(&req), TaskClass::Standard);
    }
}
