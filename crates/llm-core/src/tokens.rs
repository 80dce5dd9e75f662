//! Token estimates, used only when a provider reports no usage.
//!
//! Counting whitespace-separated words gives one "token" for a whole Chinese
//! chapter; this estimator counts each CJK character as 0.8 token (within 30 %
//! of what current BPE tokenizers produce for Chinese) and other text at about
//! four characters per token. OpenAI-family models are counted exactly with
//! their own tokenizer.

use crate::types::{LlmRequest, ThinkingBlock, Usage};

/// Whether `c` is a CJK ideograph, kana, Hangul syllable or CJK punctuation.
fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3000..=0x303F   // CJK symbols and punctuation
        | 0x3040..=0x30FF // Hiragana, Katakana
        | 0x3400..=0x4DBF // CJK Extension A
        | 0x4E00..=0x9FFF // CJK Unified Ideographs
        | 0xAC00..=0xD7AF // Hangul syllables
        | 0xF900..=0xFAFF // CJK compatibility ideographs
        | 0xFF00..=0xFFEF // Half/full-width forms
        | 0x20000..=0x2FFFF)
}

/// Estimated tokens of `text`: 0.8 per CJK character, plus one per four other
/// non-space characters (each rounded up); at least 1 for non-empty text.
///
/// ```
/// use llm_core::tokens::estimate_tokens;
/// assert_eq!(estimate_tokens(""), 0);
/// assert_eq!(estimate_tokens("你好世界你"), 4);
/// assert_eq!(estimate_tokens("hello world!"), 3);
/// ```
pub fn estimate_tokens(text: &str) -> u64 {
    let mut cjk = 0u64;
    let mut other = 0u64;
    for c in text.chars() {
        if is_cjk(c) {
            cjk += 1;
        } else if !c.is_whitespace() {
            other += 1;
        }
    }
    // Current BPE vocabularies (o200k, Llama 3, Qwen) spend 0.6–1.0 tokens on
    // a Chinese character; 0.8 stays within 30 % of them.
    let est = (cjk * 4).div_ceil(5) + other.div_ceil(4);
    if est == 0 && !text.trim().is_empty() {
        1
    } else {
        est
    }
}

/// Whether `model` is an OpenAI model whose tokenizer is known.
pub fn is_openai_family(model: &str) -> bool {
    [
        "gpt-",
        "o1",
        "o3",
        "o4",
        "chatgpt-",
        "text-embedding-",
        "davinci",
        "babbage",
    ]
    .iter()
    .any(|p| model.starts_with(p))
}

/// Tokens of `text` for `model`: a real BPE count (tiktoken) for OpenAI-family
/// models, else [`estimate_tokens`].
pub fn count_tokens(model: &str, text: &str) -> u64 {
    if is_openai_family(model) {
        if let Ok(bpe) = tiktoken_rs::bpe_for_model(model) {
            return bpe.count_ordinary(text) as u64;
        }
    }
    estimate_tokens(text)
}

/// Usage of a request and its answer when the provider reported none.
pub fn estimate_usage(req: &LlmRequest, answer: &str) -> Usage {
    let model = req.model.as_deref().unwrap_or("");
    let mut prompt = req
        .system_prompt
        .as_deref()
        .map_or(0, |s| count_tokens(model, s));
    for m in &req.messages {
        prompt += count_tokens(model, &m.content);
        for c in &m.tool_calls {
            prompt += count_tokens(model, &c.name) + count_tokens(model, &c.arguments);
        }
        // Thinking sent back in an assistant turn is read as input too.
        for b in &m.thinking {
            prompt += match b {
                ThinkingBlock::Thinking { thinking, .. } => count_tokens(model, thinking),
                ThinkingBlock::RedactedThinking { data } => estimate_tokens(data),
            };
        }
    }
    // Tool definitions are part of the prompt the model reads.
    for t in &req.tools {
        prompt += count_tokens(model, &t.name)
            + t.description
                .as_deref()
                .map_or(0, |d| count_tokens(model, d))
            + count_tokens(model, &t.parameters.to_string());
    }
    Usage::new(prompt, count_tokens(model, answer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tools_and_tool_calls_count_toward_the_prompt() {
        use crate::types::{Message, Tool, ToolCall};
        let plain = LlmRequest::new("What's the weather in Paris?");
        let with_tool = plain.clone().tool(Tool::function(
            "get_weather",
            "Current weather in a city",
            serde_json::json!({"type": "object", "properties": {"city": {"type": "string"}}}),
        ));
        let with_call = plain.clone().message(Message::assistant_tool_calls(
            "",
            vec![ToolCall {
                id: "call_1".into(),
                name: "get_weather".into(),
                arguments: r#"{"city":"Paris"}"#.into(),
            }],
        ));
        let base = estimate_usage(&plain, "").prompt_tokens;
        assert!(estimate_usage(&with_tool, "").prompt_tokens > base + 10);
        assert!(estimate_usage(&with_call, "").prompt_tokens > base + 3);
    }

    #[test]
    fn thinking_sent_back_counts_toward_the_prompt() {
        use crate::types::Message;
        let plain = LlmRequest::new("Is 1009 prime?");
        let mut turn = Message::assistant("Yes.");
        let base = estimate_usage(&plain.clone().message(turn.clone()), "").prompt_tokens;
        turn.thinking = vec![
            ThinkingBlock::Thinking {
                thinking: "Check every prime divisor up to 31: none divides 1009.".repeat(4),
                signature: "EqQBCgIYAhIM".into(),
            },
            ThinkingBlock::RedactedThinking {
                data: "EmwKAhgBEgy3".repeat(8),
            },
        ];
        let with = estimate_usage(&plain.message(turn), "").prompt_tokens;
        assert!(with > base + 40, "{with} vs {base}");
    }

    #[test]
    fn chinese_chapter_is_not_one_token() {
        let chapter =
            "在很久很久以前，有一个小村庄。村里住着一位老人，他每天都会去山上砍柴。".repeat(30);
        let n = chapter.chars().count() as u64;
        let est = estimate_tokens(&chapter);
        // Real BPE tokenizers give roughly one token per Chinese character (±30 %).
        assert!(
            est as f64 >= n as f64 * 0.7 && est as f64 <= n as f64 * 1.3,
            "{est} vs {n}"
        );
        assert_eq!(
            chapter.split_whitespace().count(),
            1,
            "the word count the estimator replaces"
        );
    }

    #[test]
    fn estimate_is_within_30_percent_of_a_real_tokenizer_on_chinese() {
        let text: String = "人工智能正在深刻地改变着我们的生活方式和工作方式，从医疗诊断到自动驾驶，从语言翻译到文学创作。"
            .chars()
            .cycle()
            .take(1000)
            .collect();
        assert_eq!(text.chars().count(), 1000);
        let est = estimate_tokens(&text) as f64;
        // o200k (gpt-4o and later); the older cl100k spends about 1.2 per character.
        for model in ["gpt-4o", "gpt-4.1-mini"] {
            let real = count_tokens(model, &text) as f64;
            assert!(real > 300.0, "{model}: {real}");
            let ratio = est / real;
            assert!(
                (0.7..=1.3).contains(&ratio),
                "{model}: estimate {est} vs real {real}"
            );
        }
    }

    #[test]
    fn openai_models_use_the_real_tokenizer() {
        assert!(is_openai_family("gpt-4o-mini"));
        assert!(!is_openai_family("llama3:8b"));
        assert_eq!(count_tokens("gpt-4o", "hello world"), 2);
        assert_eq!(count_tokens("llama3:8b", "你好"), 2);
        assert_eq!(count_tokens("llama3:8b", "你好你好你"), 4);
    }

    #[test]
    fn english_is_about_four_chars_per_token() {
        let text = "The quick brown fox jumps over the lazy dog.";
        assert_eq!(estimate_tokens(text), 9);
    }
}
