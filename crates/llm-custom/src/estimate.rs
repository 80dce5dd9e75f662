//! Token estimation for APIs that report no usage.

/// Estimates the number of tokens in `text` when the API reports none.
///
/// Each CJK character counts as one token: CJK Unified Ideographs (with their
/// extensions and compatibility forms), Hiragana, Katakana, Hangul, and CJK or
/// full-width punctuation (`，。「」`). Every other character (Latin letters,
/// digits, spaces, ASCII punctuation) counts as a quarter token, rounded up
/// over the whole run, so non-empty text is at least one token.
///
/// This is deliberately simple and tokenizer-free; it is sane for Chinese text
/// (a 1,000-character chapter is about 1,000 tokens, where counting words
/// would give one) and close to real tokenizers for English (~4 characters per
/// token).
///
/// ```
/// use llm_custom::estimate_tokens;
///
/// assert_eq!(estimate_tokens(""), 0);
/// assert_eq!(estimate_tokens("Hi"), 1);
/// assert_eq!(estimate_tokens("Hello, world"), 3);
/// assert_eq!(estimate_tokens("你好，世界"), 5);
/// ```
pub fn estimate_tokens(text: &str) -> u64 {
    let mut counter = TokenCounter::default();
    counter.add(text);
    counter.tokens()
}

/// [`estimate_tokens`] over text that arrives in pieces (stream deltas): the
/// estimate of the pieces added equals that of their concatenation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TokenCounter {
    cjk: u64,
    other: u64,
}

impl TokenCounter {
    /// Counts one more piece of text.
    pub(crate) fn add(&mut self, text: &str) {
        for c in text.chars() {
            if is_cjk(c) {
                self.cjk += 1;
            } else {
                self.other += 1;
            }
        }
    }

    /// The estimate so far.
    pub(crate) fn tokens(&self) -> u64 {
        self.cjk + self.other.div_ceil(4)
    }
}

/// Whether `c` is a CJK character counted as one token of its own.
fn is_cjk(c: char) -> bool {
    matches!(
        u32::from(c),
        0x1100..=0x11FF       // Hangul Jamo
        | 0x3000..=0x303F     // CJK Symbols and Punctuation
        | 0x3040..=0x309F     // Hiragana
        | 0x30A0..=0x30FF     // Katakana
        | 0x3130..=0x318F     // Hangul Compatibility Jamo
        | 0x31F0..=0x31FF     // Katakana Phonetic Extensions
        | 0x3400..=0x4DBF     // CJK Unified Ideographs Extension A
        | 0x4E00..=0x9FFF     // CJK Unified Ideographs
        | 0xAC00..=0xD7AF     // Hangul Syllables
        | 0xF900..=0xFAFF     // CJK Compatibility Ideographs
        | 0xFF00..=0xFFEF     // Halfwidth and Fullwidth Forms
        // CJK Unified Ideographs Extensions B–H and the Compatibility
        // Ideographs Supplement (2F800–2FA1F) inside them.
        | 0x20000..=0x323AF
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_counts_one_token_per_character() {
        let text: String = "我们一起写一部小说。".chars().cycle().take(1000).collect();
        assert_eq!(text.chars().count(), 1000);
        assert_eq!(estimate_tokens(&text), 1000);
    }

    #[test]
    fn english_counts_about_four_characters_per_token() {
        let text = "The quick brown fox jumps over the lazy dog. ".repeat(20);
        assert_eq!(text.chars().count(), 900);
        assert_eq!(estimate_tokens(&text), 225);
        assert_eq!(estimate_tokens("abcde"), 2);
        assert_eq!(estimate_tokens(" "), 1);
        assert_eq!(estimate_tokens(""), 0);
    }

    #[test]
    fn pieces_add_up_to_the_whole() {
        let mut c = TokenCounter::default();
        for piece in ["He", "llo", ", wor", "ld", "，你好"] {
            c.add(piece);
        }
        assert_eq!(c.tokens(), estimate_tokens("Hello, world，你好"));
    }

    #[test]
    fn japanese_korean_and_mixed_text() {
        assert_eq!(estimate_tokens("ひらがなカタカナ"), 8);
        assert_eq!(estimate_tokens("안녕하세요"), 5);
        // 4 CJK characters and 9 others ("Rust " and " ok!").
        assert_eq!(estimate_tokens("Rust 编程很好 ok!"), 4 + 3);
        // An ideograph outside the BMP (Extension B).
        assert_eq!(estimate_tokens("𠀀"), 1);
    }
}
