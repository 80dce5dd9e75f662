//! Keeping the Redis password out of Debug output, logs and errors.

use llm_core::{ExposeSecret, SecretString};

/// What replaces a secret.
const MASK: &str = "***";

/// Query parameters of a Redis URL that carry credentials (`redis+unix:///s?user=u&pass=p`).
const SECRET_PARAMS: &[&str] = &["user", "username", "pass", "password"];

/// `url` with its userinfo and credential query values replaced by `***`.
///
/// Works on the raw text, so it also redacts URLs that do not parse.
pub(crate) fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        // Not a URL at all: nothing in it can be trusted to be harmless.
        return MASK.to_owned();
    };
    let (scheme, rest) = url.split_at(scheme_end + 3);
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let mut out = String::with_capacity(url.len());
    out.push_str(scheme);
    match authority.rfind('@') {
        Some(at) => {
            out.push_str(MASK);
            out.push_str(&authority[at..]);
        }
        None => out.push_str(authority),
    }
    let (before_fragment, fragment) = match tail.find('#') {
        Some(i) => tail.split_at(i),
        None => (tail, ""),
    };
    match before_fragment.split_once('?') {
        Some((path, query)) => {
            out.push_str(path);
            out.push('?');
            let params: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, _)) if SECRET_PARAMS.contains(&k.to_ascii_lowercase().as_str()) => {
                        format!("{k}={MASK}")
                    }
                    _ => pair.to_owned(),
                })
                .collect();
            out.push_str(&params.join("&"));
        }
        None => out.push_str(before_fragment),
    }
    // A fragment has no meaning for Redis; drop it rather than judge it.
    if !fragment.is_empty() {
        out.push('#');
        out.push_str(MASK);
    }
    out
}

/// Removes known secrets from text that came from elsewhere (the `redis`
/// crate's error messages), as a second line of defence.
pub(crate) struct Scrubber {
    secrets: Vec<SecretString>,
}

impl Scrubber {
    /// Secrets taken from the raw URL (userinfo password, credential query values)
    /// plus `extra` (the password as the `redis` crate decoded it).
    pub(crate) fn new(url: &str, extra: Option<&str>) -> Self {
        let mut secrets: Vec<String> = Vec::new();
        if let Some((_, rest)) = url.split_once("://") {
            let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            let authority = &rest[..authority_end];
            if let Some(at) = authority.rfind('@') {
                let userinfo = &authority[..at];
                match userinfo.split_once(':') {
                    Some((_, password)) => secrets.push(password.to_owned()),
                    None => secrets.push(userinfo.to_owned()),
                }
            }
            if let Some((_, query)) = rest.split_once('?') {
                for pair in query.split(['&', '#']) {
                    if let Some((k, v)) = pair.split_once('=') {
                        let k = k.to_ascii_lowercase();
                        if k == "pass" || k == "password" {
                            secrets.push(v.to_owned());
                        }
                    }
                }
            }
        }
        secrets.extend(extra.map(str::to_owned));
        secrets.retain(|s| !s.is_empty());
        // Longest first, so a secret containing another is removed whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Self {
            secrets: secrets.into_iter().map(SecretString::from).collect(),
        }
    }

    /// `text` with every known secret replaced by `***`.
    pub(crate) fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for secret in &self.secrets {
            let secret = secret.expose_secret();
            if out.contains(secret) {
                out = out.replace(secret, MASK);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_is_redacted() {
        assert_eq!(
            redact_url("redis://user:p%40ss@host:6379/2"),
            "redis://***@host:6379/2"
        );
        assert_eq!(redact_url("redis://:pw@host"), "redis://***@host");
        assert_eq!(redact_url("redis://pw@host/"), "redis://***@host/");
        // An unescaped `@` in the password: everything up to the last `@` goes.
        assert_eq!(redact_url("redis://u:a@b@host/0"), "redis://***@host/0");
        assert_eq!(
            redact_url("redis://127.0.0.1:6379/0?protocol=resp3"),
            "redis://127.0.0.1:6379/0?protocol=resp3"
        );
    }

    #[test]
    fn credential_query_values_and_garbage_are_redacted() {
        assert_eq!(
            redact_url("redis+unix:///tmp/r.sock?db=1&user=bob&PASS=secret"),
            "redis+unix:///tmp/r.sock?db=1&user=***&PASS=***"
        );
        assert_eq!(redact_url("not a url with secret"), "***");
        assert_eq!(redact_url("redis://h/#secret"), "redis://h/#***");
    }

    #[test]
    fn scrubber_removes_raw_and_decoded_passwords() {
        let s = Scrubber::new("redis://u:p%40ss@host?pass=other", Some("p@ss"));
        assert_eq!(
            s.scrub("failed p%40ss p@ss other for u"),
            "failed *** *** *** for u"
        );
        let none = Scrubber::new("redis://host", None);
        assert_eq!(none.scrub("unchanged"), "unchanged");
    }
}
