//! Removes anything key-like from upstream error text before it reaches a
//! gateway caller or a log line: `sk-…`/`sk_…` keys (masked ones too, such as
//! `sk-abc***xyz` or `sk-VKMIs…wjh3`), `Bearer …` tokens, `api_key=…` values
//! and, verbatim, the keys this gateway knows (its own bearer keys and any
//! provider key it was given).

use llm_router::{ExposeSecret, SecretString};

/// What replaces a key.
pub const REDACTED: &str = "[redacted]";

/// Shortest configured secret replaced verbatim (shorter ones would shred
/// ordinary words; patterns still catch key-shaped ones).
const MIN_SECRET_LEN: usize = 6;

/// Fewest key characters after `sk-` for a token to count as a key.
const MIN_SK_BODY: usize = 3;

/// Fewest characters of a `Bearer` token ("the bearer of" is prose).
const MIN_BEARER_TOKEN: usize = 8;

/// A scrubber knowing the configured secrets.
#[derive(Default, Clone)]
pub struct Scrubber {
    /// Shared: the gateway's state (and so this) is cloned for every
    /// request, several times; a `Vec` of secrets would be copied each time.
    secrets: std::sync::Arc<Vec<SecretString>>,
}

impl std::fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Scrubber([{} secrets redacted])", self.secrets.len())
    }
}

impl Scrubber {
    /// A scrubber that also removes each of `secrets` wherever it appears.
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a SecretString>) -> Self {
        let mut s = Self::default();
        s.add(secrets);
        s
    }

    /// Adds secrets to remove verbatim.
    pub fn add<'a>(&mut self, secrets: impl IntoIterator<Item = &'a SecretString>) {
        let list = std::sync::Arc::make_mut(&mut self.secrets);
        for k in secrets {
            if k.expose_secret().len() >= MIN_SECRET_LEN {
                list.push(k.clone());
            }
        }
        // Longest first, so a key that contains another is removed whole.
        list.sort_by_key(|k| std::cmp::Reverse(k.expose_secret().len()));
    }

    /// `text` without the configured secrets and without key-like tokens.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for k in self.secrets.iter() {
            let k = k.expose_secret();
            if out.contains(k) {
                out = out.replace(k, REDACTED);
            }
        }
        scrub_patterns(&out)
    }
}

/// Characters a key (or its masked form) is made of.
fn key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '*' | '.' | '…' | '•')
}

/// `text` without key-like tokens: `sk-…`/`sk_…` (masked forms included),
/// the token after `Bearer`, and the value after `api_key=`/`api-key:`/`x-api-key:`.
pub fn scrub_patterns(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let boundary =
            i == 0 || !(chars[i - 1].is_ascii_alphanumeric() || matches!(chars[i - 1], '_' | '-'));
        if boundary {
            if let Some(skip) = sk_key(&chars[i..]) {
                i += push_redacted(&mut out, &chars[i..i + skip]);
                continue;
            }
            if let Some((label, skip)) = labelled_secret(&chars[i..]) {
                out.extend(&chars[i..i + label]);
                i += label;
                i += push_redacted(&mut out, &chars[i..i + skip]);
                continue;
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// Writes [`REDACTED`] for `token`, keeping the full stops that end it (they
/// end the sentence, not the key); returns `token.len()`.
fn push_redacted(out: &mut String, token: &[char]) -> usize {
    let dots = token.iter().rev().take_while(|c| **c == '.').count();
    out.push_str(REDACTED);
    out.extend(&token[token.len() - dots..]);
    token.len()
}

/// The length of an `sk-`/`sk_` key at the start of `s`.
fn sk_key(s: &[char]) -> Option<usize> {
    if s.len() < 4 || !s[0].eq_ignore_ascii_case(&'s') || !s[1].eq_ignore_ascii_case(&'k') {
        return None;
    }
    if s[2] != '-' && s[2] != '_' {
        return None;
    }
    let len = 3 + s[3..].iter().take_while(|c| key_char(**c)).count();
    // `sk-` followed by little or nothing key-like is a word, not a key.
    (len >= 3 + MIN_SK_BODY).then_some(len)
}

/// `(label length, secret length)` for `Bearer <token>` or
/// `api_key=<value>` (and similar labels) at the start of `s`.
fn labelled_secret(s: &[char]) -> Option<(usize, usize)> {
    let lower: String = s.iter().take(12).collect::<String>().to_ascii_lowercase();
    let bearer = lower.starts_with("bearer");
    let label = if bearer {
        let spaces = s[6..].iter().take_while(|c| c.is_whitespace()).count();
        if spaces == 0 {
            return None;
        }
        6 + spaces
    } else {
        let word = ["x-api-key", "api_key", "api-key", "apikey"]
            .into_iter()
            .find(|w| lower.starts_with(w))?;
        let mut n = word.len();
        n += s[n..]
            .iter()
            .take_while(|c| **c == ' ' || **c == '"')
            .count();
        if !matches!(s.get(n), Some('=' | ':')) {
            return None;
        }
        n += 1;
        n += s[n..]
            .iter()
            .take_while(|c| **c == ' ' || **c == '"')
            .count();
        n
    };
    let secret = s[label..]
        .iter()
        .take_while(|c| key_char(**c) || matches!(c, '+' | '/' | '='))
        .count();
    let min = if bearer { MIN_BEARER_TOKEN } else { 1 };
    (secret >= min).then_some((label, secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_openai_keys_whole_and_masked() {
        for (input, expected) in [
            (
                "Incorrect API key provided: sk-VKMIs***************************************wjh3. You can find your API key at https://platform.openai.com/account/api-keys.",
                "Incorrect API key provided: [redacted]. You can find your API key at https://platform.openai.com/account/api-keys.",
            ),
            (
                "Incorrect API key provided: sk-abc...wxyz. See docs.",
                "Incorrect API key provided: [redacted]. See docs.",
            ),
            ("key sk-VKMIs…wjh3 is invalid", "key [redacted] is invalid"),
            ("key sk-abc***xyz", "key [redacted]"),
            (
                "proj key sk-proj-AbC_123-xyz was revoked",
                "proj key [redacted] was revoked",
            ),
            (
                "invalid x-api-key sk-ant-api03-upstream-secret...",
                "invalid x-api-key [redacted]...",
            ),
            ("stripe sk_live_abc123", "stripe [redacted]"),
        ] {
            assert_eq!(scrub_patterns(input), expected, "{input}");
        }
    }

    #[test]
    fn removes_bearer_tokens_and_labelled_keys() {
        assert_eq!(
            scrub_patterns("unauthorized: Bearer sk-upstream-secret-key-0123"),
            "unauthorized: Bearer [redacted]"
        );
        assert_eq!(
            scrub_patterns("header authorization: bearer eyJhbGciOi.J9x/y+z= rejected"),
            "header authorization: bearer [redacted] rejected"
        );
        assert_eq!(
            scrub_patterns("GET /v1?api_key=AIzaSyD-123&x=1 failed"),
            "GET /v1?api_key=[redacted]&x=1 failed"
        );
        assert_eq!(
            scrub_patterns(r#"{"api-key": "abc123def"}"#),
            r#"{"api-key": "[redacted]"}"#
        );
    }

    #[test]
    fn leaves_ordinary_text_alone() {
        for text in [
            "This model's maximum context length is 128000 tokens.",
            "task-sk-1 failed",
            "ask-me anything",
            "sk- is a prefix",
            "The bearer of bad news",
            "Use an API key: see the docs",
            "",
        ] {
            assert_eq!(scrub_patterns(text), text, "{text}");
        }
    }

    #[test]
    fn removes_configured_secrets_verbatim() {
        let secrets = [
            SecretString::from("gw-test-key-2b7e151628aed2a6"),
            SecretString::from("abc"),
        ];
        let s = Scrubber::new(&secrets);
        assert_eq!(
            s.scrub("the key gw-test-key-2b7e151628aed2a6 is wrong; abc stays"),
            "the key [redacted] is wrong; abc stays"
        );
        assert!(!format!("{s:?}").contains("gw-test"));
    }
}
