//! Virtual keys: generation from the OS random number generator, SHA-256
//! hashing, and the allowed-model globs.
//!
//! A key is `sk-llm-` followed by 43 base62 characters drawn uniformly from
//! the OS generator (over 256 bits of entropy). Only its SHA-256 digest is
//! stored; a key is looked up by digest, never by its text.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What every virtual key starts with.
pub const KEY_PREFIX: &str = "sk-llm-";

/// Base62 characters after [`KEY_PREFIX`].
pub const KEY_RANDOM_CHARS: usize = 43;

/// Characters of a key kept for display (`sk-llm-` and five more).
pub const DISPLAY_PREFIX_CHARS: usize = 12;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The OS random number generator failed (no key can be made safely).
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random number generator failed: {0}")]
pub struct RngError(String);

fn random_bytes(buf: &mut [u8]) -> Result<(), RngError> {
    getrandom::fill(buf).map_err(|e| RngError(e.to_string()))
}

/// A new secret key and what the store keeps of it.
pub struct NewKey {
    /// The full key, shown once to whoever created it.
    pub secret: String,
    /// Its SHA-256 digest.
    pub hash: [u8; 32],
    /// Its first [`DISPLAY_PREFIX_CHARS`] characters.
    pub prefix: String,
}

impl std::fmt::Debug for NewKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewKey")
            .field("secret", &"[redacted]")
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// Generates a key: [`KEY_PREFIX`] and [`KEY_RANDOM_CHARS`] uniform base62
/// characters (bytes of 248 and above are rejected, so every character is
/// equally likely).
pub fn generate() -> Result<NewKey, RngError> {
    let mut secret = String::with_capacity(KEY_PREFIX.len() + KEY_RANDOM_CHARS);
    secret.push_str(KEY_PREFIX);
    let mut chars = 0;
    let mut buf = [0u8; 64];
    while chars < KEY_RANDOM_CHARS {
        random_bytes(&mut buf)?;
        for b in buf {
            if chars == KEY_RANDOM_CHARS {
                break;
            }
            // 248 = 4 × 62: below it, `b % 62` is uniform.
            if b < 248 {
                secret.push(char::from(BASE62[usize::from(b % 62)]));
                chars += 1;
            }
        }
    }
    Ok(NewKey {
        hash: hash(&secret),
        prefix: display_prefix(&secret),
        secret,
    })
}

/// A key id: `key_` and 16 lowercase hex characters.
pub fn new_key_id() -> Result<String, RngError> {
    let mut b = [0u8; 8];
    random_bytes(&mut b)?;
    let mut id = String::with_capacity(20);
    id.push_str("key_");
    for byte in b {
        id.push_str(&format!("{byte:02x}"));
    }
    Ok(id)
}

/// SHA-256 of a key's text.
pub fn hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// Whether two digests are equal, in constant time.
pub fn same_hash(a: &[u8; 32], b: &[u8; 32]) -> bool {
    bool::from(a.ct_eq(b))
}

/// The first characters of a key, for display.
pub fn display_prefix(key: &str) -> String {
    key.chars().take(DISPLAY_PREFIX_CHARS).collect()
}

/// Whether `presented` has the shape of a virtual key (so it is looked up
/// in the store; anything else can only be a configured key).
pub fn looks_virtual(presented: &str) -> bool {
    presented.len() == KEY_PREFIX.len() + KEY_RANDOM_CHARS
        && presented.starts_with(KEY_PREFIX)
        && presented[KEY_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric())
}

/// Whether `glob` matches `text` (`*` any run of characters, `/` included;
/// `?` one character; ASCII case-insensitive).
pub use llm_router::glob_match;

/// Whether a key whose allowed-model globs are `globs` may use one of the
/// `names` a request goes by (`model`, `instance/model`, `instance`). No
/// globs: every model.
pub fn model_allowed<S: AsRef<str>>(globs: &[String], names: &[S]) -> bool {
    globs.is_empty()
        || globs
            .iter()
            .any(|g| names.iter().any(|n| glob_match(g.trim(), n.as_ref())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_long_random_and_hashed() {
        let a = generate().map_err(|e| e.to_string());
        let b = generate().map_err(|e| e.to_string());
        let (Ok(a), Ok(b)) = (a, b) else {
            panic!("rng failed");
        };
        assert_ne!(a.secret, b.secret);
        assert!(a.secret.starts_with("sk-llm-"));
        assert_eq!(a.secret.len(), 50);
        assert!(looks_virtual(&a.secret));
        assert_eq!(a.hash, hash(&a.secret));
        assert!(same_hash(&a.hash, &hash(&a.secret)));
        assert!(!same_hash(&a.hash, &b.hash));
        assert_eq!(a.prefix.len(), 12);
        assert!(a.secret.starts_with(&a.prefix));
        assert!(!format!("{a:?}").contains(&a.secret));
        assert!(!looks_virtual("sk-llm-short"));
        assert!(!looks_virtual("sk-other"));
        let id = new_key_id().unwrap_or_default();
        assert_eq!(id.len(), 20);
        assert!(id.starts_with("key_"));
        assert!(id[4..]
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    }

    #[test]
    fn every_base62_character_is_used() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let Ok(k) = generate() else {
                panic!("rng failed");
            };
            seen.extend(k.secret[7..].chars());
        }
        assert_eq!(seen.len(), 62);
    }

    #[test]
    fn models_are_allowed_by_any_name_a_request_goes_by() {
        // The glob syntax itself is tested with `llm_core::glob_match`.
        let globs = vec!["openai/*".to_string(), "claude-*".to_string()];
        assert!(model_allowed(&globs, &["gpt-4o", "openai/gpt-4o"]));
        assert!(model_allowed(&globs, &["claude-sonnet-4"]));
        assert!(!model_allowed(&globs, &["llama3", "ollama/llama3"]));
        assert!(model_allowed::<&str>(&[], &["anything"]));
    }
}
