//! Locating keys in the configuration, so errors can name a line.
//!
//! The text is parsed once more with `toml`'s spanned document model
//! ([`toml::de::DeTable`]); every key, table and string value is indexed with
//! its byte span. Lines therefore come from the document's structure: a key
//! name inside a comment or a string value is never mistaken for the key.

use std::ops::Range;
use std::path::PathBuf;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::error::ConfigError;

/// The configuration's text and file name, with the span of every key.
#[derive(Clone, Default)]
pub struct SourceMap {
    pub(crate) file: Option<PathBuf>,
    pub(crate) text: String,
    /// Every key of the document (tables included), in file order.
    entries: Vec<Entry>,
    /// Every string value (array elements included), in file order.
    strings: Vec<StringValue>,
}

/// The text is left out: it may hold secrets written inline.
impl std::fmt::Debug for SourceMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceMap")
            .field("file", &self.file)
            .field("keys", &self.entries.len())
            .finish_non_exhaustive()
    }
}

/// One key of the document.
#[derive(Debug, Clone)]
struct Entry {
    /// The full dotted path of the key, unquoted.
    path: Vec<String>,
    /// Where the key's name is written (for a `[table]` header, the name in it).
    key: Range<usize>,
    /// Where its value is written (for a `[table]`, the header).
    value: Range<usize>,
    /// Whether the value is a table (header, dotted or inline).
    table: bool,
}

impl Entry {
    /// Where the entry begins: its key, or the `[` of its header.
    fn start(&self) -> usize {
        self.key.start.min(self.value.start)
    }
}

/// One string value and the path of the key holding it.
#[derive(Debug, Clone)]
struct StringValue {
    path: Vec<String>,
    span: Range<usize>,
}

impl SourceMap {
    pub(crate) fn new(file: Option<PathBuf>, text: &str) -> Self {
        let mut map = Self {
            file,
            text: text.to_string(),
            entries: Vec::new(),
            strings: Vec::new(),
        };
        // A document with a syntax error is indexed as far as it parses.
        let (root, _errors) = DeTable::parse_recoverable(text);
        map.index_table(&mut Vec::new(), root.get_ref());
        map.entries.sort_by_key(|e| e.key.start);
        map.strings.sort_by_key(|s| s.span.start);
        map
    }

    fn index_table(&mut self, path: &mut Vec<String>, table: &DeTable<'_>) {
        for (key, value) in table.iter() {
            path.push(key.get_ref().to_string());
            self.entries.push(Entry {
                path: path.clone(),
                key: key.span(),
                value: value.span(),
                table: matches!(value.get_ref(), DeValue::Table(_)),
            });
            self.index_value(path, value);
            path.pop();
        }
    }

    fn index_value(&mut self, path: &mut Vec<String>, value: &Spanned<DeValue<'_>>) {
        match value.get_ref() {
            DeValue::Table(t) => self.index_table(path, t),
            DeValue::Array(items) => {
                for item in items.iter() {
                    self.index_value(path, item);
                }
            }
            DeValue::String(_) => self.strings.push(StringValue {
                path: path.clone(),
                span: value.span(),
            }),
            _ => {}
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
    /// line naming the section when the key is not found there.
    pub(crate) fn line_of(&self, section: &[&str], key: Option<&str>) -> Option<usize> {
        let found = key.and_then(|key| {
            self.entries.iter().find(|e| {
                e.path.len() > section.len()
                    && starts_with(&e.path, section)
                    && e.path.last().is_some_and(|k| k == key)
            })
        });
        let at = match found {
            Some(e) => e.key.start,
            None => {
                if section.is_empty() {
                    return None;
                }
                self.entries
                    .iter()
                    .find(|e| e.path.len() == section.len() && starts_with(&e.path, section))?
                    .key
                    .start
            }
        };
        Some(self.line_of_offset(at))
    }

    /// Line of the first reference to the variable `var` (`${var}` or
    /// `${var:-…`, the whole name: `${API}` is not found in `${API_URL}`)
    /// in a string value inside the table `section` or one of its sub-tables.
    pub(crate) fn line_of_var(&self, section: &[&str], var: &str) -> Option<usize> {
        self.strings
            .iter()
            .filter(|s| starts_with(&s.path, section))
            .find_map(|s| {
                let raw = self.text.get(s.span.clone())?;
                let mut at = s.span.start;
                for line in raw.split_inclusive('\n') {
                    if refers_to(line, var) {
                        return Some(self.line_of_offset(at));
                    }
                    at += line.len();
                }
                None
            })
    }

    /// The dotted path of the key written at byte `offset` (its name or its
    /// value); else the table whose header or body holds it.
    pub(crate) fn key_at_offset(&self, offset: usize) -> Option<String> {
        let holding = self
            .entries
            .iter()
            .filter(|e| e.start() <= offset && offset < e.value.end.max(e.key.end))
            .max_by_key(|e| (e.path.len(), e.start()));
        let entry = holding.or_else(|| {
            self.entries
                .iter()
                .filter(|e| e.table && e.key.start <= offset)
                .max_by_key(|e| e.key.start)
        })?;
        Some(entry.path.join("."))
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
        assert_eq!(s.line_of(&["nowhere"], Some("top")), None);
    }

    #[test]
    fn offsets_map_to_the_key_written_there() {
        let s = SourceMap::new(None, TEXT);
        let at = |needle: &str| TEXT.find(needle).unwrap();
        assert_eq!(s.key_at_offset(at("1")).as_deref(), Some("top"));
        assert_eq!(
            s.key_at_offset(at("\"x\"")).as_deref(),
            Some("llm_providers.openai.api_key")
        );
        assert_eq!(
            s.key_at_offset(at("[llm_providers.openai]")).as_deref(),
            Some("llm_providers.openai")
        );
        // Between keys: the table around it.
        assert_eq!(
            s.key_at_offset(at("\n\n[llm_providers.\"gpu") + 1)
                .as_deref(),
            Some("llm_providers.openai")
        );
        assert_eq!(
            s.key_at_offset(at("5")).as_deref(),
            Some("routing.rules.simple_max_chars")
        );
    }

    #[test]
    fn comments_and_strings_are_not_keys() {
        let text = "# [a]\n# k = 1\n[b]\ns = \"\"\"\n[a]\nk = ${V}\n\"\"\"\n[a]\nk = \"${V}\"\n";
        let s = SourceMap::new(None, text);
        assert_eq!(s.line_of(&["a"], Some("k")), Some(9));
        assert_eq!(s.line_of(&["a"], None), Some(8));
        assert_eq!(s.line_of_var(&["a"], "V"), Some(9));
        assert_eq!(
            s.line_of_var(&["b"], "V"),
            Some(6),
            "inside a multi-line string"
        );
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
