//! Locating keys in the configuration text, so errors can name a line.

use std::path::PathBuf;

use crate::error::ConfigError;

/// The configuration's text and file name.
#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    pub(crate) file: Option<PathBuf>,
    pub(crate) text: String,
}

impl SourceMap {
    pub(crate) fn new(file: Option<PathBuf>, text: &str) -> Self {
        Self {
            file,
            text: text.to_string(),
        }
    }

    /// 1-based line of a byte offset.
    pub(crate) fn line_of_offset(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1
    }

    /// Line of `key` inside the table `section` (or one of its sub-tables); the
    /// section's header line when the key is not found there.
    pub(crate) fn line_of(&self, section: &[&str], key: Option<&str>) -> Option<usize> {
        let mut header_line = None;
        let mut in_section = section.is_empty();
        for (idx, raw) in self.text.lines().enumerate() {
            let line = raw.trim_start();
            if let Some(current) = parse_header(line) {
                in_section = starts_with(&current, section);
                if current.len() == section.len() && in_section && header_line.is_none() {
                    header_line = Some(idx + 1);
                }
                continue;
            }
            if !in_section {
                continue;
            }
            let Some(key) = key else { continue };
            // `key = …` directly in the section, or `section.key = …` written dotted.
            if line_key(line).is_some_and(|k| k == key) {
                return Some(idx + 1);
            }
        }
        if header_line.is_none() {
            // The section may be written as dotted keys or an inline table.
            let needle = section.last().copied().or(key)?;
            return self
                .text
                .lines()
                .position(|l| line_key(l.trim_start()).is_some_and(|k| k.contains(needle)))
                .map(|i| i + 1);
        }
        header_line
    }

    /// Line of the first reference to the variable `var` (`${var}` or
    /// `${var:-…`, the whole name: `${API}` is not found in `${API_URL}`)
    /// inside the table `section` or one of its sub-tables.
    pub(crate) fn line_of_var(&self, section: &[&str], var: &str) -> Option<usize> {
        let mut in_section = section.is_empty();
        for (idx, raw) in self.text.lines().enumerate() {
            if let Some(current) = parse_header(raw.trim_start()) {
                in_section = starts_with(&current, section);
                continue;
            }
            if in_section && refers_to(raw, var) {
                return Some(idx + 1);
            }
        }
        None
    }

    /// A located error about `key` in `section`.
    pub(crate) fn error(
        &self,
        section: &[&str],
        key: Option<&str>,
        message: String,
    ) -> ConfigError {
        ConfigError::new(message)
            .with_file(self.file.clone())
            .with_line(if self.text.is_empty() {
                None
            } else {
                self.line_of(section, key)
            })
    }
}

/// Whether `line` holds a reference to `var`: `${var}` or `${var:-`, not
/// escaped as `$${var}`.
fn refers_to(line: &str, var: &str) -> bool {
    let needle = format!("${{{var}");
    line.match_indices(&needle).any(|(at, _)| {
        let after = &line[at + needle.len()..];
        let dollars_before = line[..at].bytes().rev().take_while(|b| *b == b'$').count();
        (after.starts_with('}') || after.starts_with(":-")) && dollars_before % 2 == 0
    })
}

fn starts_with(path: &[String], prefix: &[&str]) -> bool {
    path.len() >= prefix.len() && path.iter().zip(prefix).all(|(a, b)| a == b)
}

/// `[a.b."c d"]` → `["a", "b", "c d"]`.
fn parse_header(line: &str) -> Option<Vec<String>> {
    let inner = line.strip_prefix('[')?;
    let inner = inner.strip_prefix('[').unwrap_or(inner);
    let end = inner.find(']')?;
    Some(split_dotted(&inner[..end]))
}

/// The (last) key of a `key = value` line.
fn line_key(line: &str) -> Option<String> {
    if line.starts_with('#') || line.starts_with('[') {
        return None;
    }
    let (lhs, _) = line.split_once('=')?;
    split_dotted(lhs).pop()
}

fn split_dotted(s: &str) -> Vec<String> {
    s.split('.')
        .map(|p| p.trim().trim_matches('"').trim_matches('\'').to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "top = 1\n[llm_providers.openai]\nenabled = true\napi_key = \"x\"\n\n[llm_providers.\"gpu box\"]\nbase_url = \"u\"\n[routing.rules]\nsimple_max_chars = 5\n";

    #[test]
    fn finds_keys_and_headers() {
        let s = SourceMap::new(None, TEXT);
        assert_eq!(
            s.line_of(&["llm_providers", "openai"], Some("api_key")),
            Some(4)
        );
        assert_eq!(
            s.line_of(&["llm_providers", "openai"], Some("nope")),
            Some(2)
        );
        assert_eq!(
            s.line_of(&["llm_providers", "gpu box"], Some("base_url")),
            Some(7)
        );
        assert_eq!(s.line_of(&["routing"], Some("simple_max_chars")), Some(9));
        assert_eq!(s.line_of(&[], Some("top")), Some(1));
        assert_eq!(s.line_of_offset(9), 2);
    }

    #[test]
    fn variables_are_found_by_their_whole_name_inside_their_section() {
        let s = SourceMap::new(
            None,
            "[a]\nurl = \"${API_URL}\"\nkey = \"${API}\"\n\
             alt = \"$${B} ${B:-x}\"\n[b]\nk = \"${C}\"\n[a.sub]\nk = \"${C}\"\n",
        );
        assert_eq!(s.line_of_var(&["a"], "API"), Some(3));
        assert_eq!(s.line_of_var(&["a"], "API_URL"), Some(2));
        assert_eq!(s.line_of_var(&["a"], "AP"), None);
        assert_eq!(s.line_of_var(&["a"], "B"), Some(4));
        assert_eq!(s.line_of_var(&["a"], "C"), Some(8), "not the one of [b]");
        assert_eq!(s.line_of_var(&["b"], "C"), Some(6));
        let escaped = SourceMap::new(None, "[a]\nk = \"$${B}\"\n");
        assert_eq!(escaped.line_of_var(&["a"], "B"), None);
    }
}
