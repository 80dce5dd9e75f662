//! Token estimates, used only when a provider reports no usage.
//!
//! Counting whitespace-separated words gives one "token" for a whole Chinese
//! chapter; this estimator counts each CJK character as one token (close to
//! what BPE tokenizers produce for Chinese and Japanese) and other text at
//! about four characters per token.

use crate::types::{LlmRequest, Usage};

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

/// Estimated tokens of `text`: one per CJK character, plus one per four other
/// non-space characters (rounded up); at least 1 for non-empty text.
///
/// ```
/// use llm_core::tokens::estimate_tokens;
/// assert_eq!(estimate_tokens(""), 0);
/// assert_eq!(estimate_tokens("你好世界"), 4);
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
    let est = cjk + other.div_ceil(4);
    if est == 0 && !text.trim().is_empty() {
        1
    } else {
        est
    }
}

/// Estimated usage of a request and its answer.
pub fn estimate_usage(req: &LlmRequest, answer: &str) -> Usage {
    let mut prompt = req.system_prompt.as_deref().map_or(0, estimate_tokens);
    for m in &req.messages {
        prompt += estimate_tokens(&m.content);
    }
    Usage::new(prompt, estimate_tokens(answer))
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn english_is_about_four_chars_per_token() {
        let text = "The quick brown fox jumps over the lazy dog.";
        assert_eq!(estimate_tokens(text), 9);
    }
}
