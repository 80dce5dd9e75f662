//! `${VAR}` and `${VAR:-default}` expansion in configuration strings.

/// Deepest nesting of defaults (`${A:-${B:-${C}}}` is two levels).
const MAX_NESTING: usize = 8;

/// Longest variable name quoted in an error.
const MAX_QUOTED: usize = 40;

/// Why a string could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ExpandError {
    /// `${VAR}` referred to an unset variable (its name).
    Unset(String),
    /// A reference that is not well formed (what is wrong with it). Never
    /// quotes a default value: it may be a secret.
    Malformed(String),
}

/// Expands `${VAR}` (an unset `VAR` is an error), `${VAR:-default}` (the default
/// when `VAR` is unset or empty; it may itself hold references, expanded only
/// when used) and `$$` (a literal `$`). A `$` not followed by `{` or `$` is kept.
///
/// Names are letters, digits and `_`, not starting with a digit. A malformed
/// reference (a `${` without its `}`, an invalid name, defaults nested more
/// than eight deep) is an error, including in a default that is not used.
pub(crate) fn expand(
    input: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ExpandError> {
    expand_at(input, lookup, 0)
}

fn expand_at(
    input: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    depth: usize,
) -> Result<String, ExpandError> {
    if !input.contains('$') {
        return Ok(input.to_string());
    }
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let Some(end) = closing_brace(body) else {
                return Err(ExpandError::Malformed(
                    "`${` without its closing `}` (write `$${` for a literal `${`)".into(),
                ));
            };
            let expr = &body[..end];
            let (name, default) = match expr.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (expr, None),
            };
            check_name(name)?;
            let value = lookup(name).filter(|v| !(default.is_some() && v.is_empty()));
            match (value, default) {
                (Some(v), Some(d)) => {
                    // Unused, but checked: a broken default fails everywhere,
                    // not only where the variable happens to be unset.
                    expand_default(d, &|_| Some(String::new()), depth)?;
                    out.push_str(&v);
                }
                (Some(v), None) => out.push_str(&v),
                (None, Some(d)) => out.push_str(&expand_default(d, lookup, depth)?),
                (None, None) => return Err(ExpandError::Unset(name.to_string())),
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn expand_default(
    default: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    depth: usize,
) -> Result<String, ExpandError> {
    if depth >= MAX_NESTING && default.contains("${") {
        return Err(ExpandError::Malformed(format!(
            "defaults nested more than {MAX_NESTING} deep"
        )));
    }
    expand_at(default, lookup, depth + 1)
}

/// Byte offset in `body` (the text after a `${`) of the `}` that closes it,
/// skipping nested `${…}` and `$$`.
fn closing_brace(body: &str) -> Option<usize> {
    let bytes = body.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match (b, bytes.get(i + 1)) {
            (b'$', Some(b'$')) => i += 1,
            (b'$', Some(b'{')) => {
                depth += 1;
                i += 1;
            }
            (b'}', _) if depth == 0 => return Some(i),
            (b'}', _) => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

/// A variable name: `[A-Za-z_][A-Za-z0-9_]*`.
fn check_name(name: &str) -> Result<(), ExpandError> {
    let mut chars = name.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        return Ok(());
    }
    if name.is_empty() {
        return Err(ExpandError::Malformed("`${}` names no variable".into()));
    }
    let quoted: String = name.chars().take(MAX_QUOTED).collect();
    let more = if name.chars().count() > MAX_QUOTED {
        "…"
    } else {
        ""
    };
    Err(ExpandError::Malformed(format!(
        "`{quoted}{more}` is not a variable name (letters, digits and `_`; \
         a default is written `${{NAME:-default}}`)"
    )))
}

/// Expands every string inside `value`, returning the first unset variable.
pub(crate) fn expand_value(
    value: &mut toml::Value,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(), ExpandError> {
    match value {
        toml::Value::String(s) => *s = expand(s, lookup)?,
        toml::Value::Array(items) => {
            for v in items {
                expand_value(v, lookup)?;
            }
        }
        toml::Value::Table(t) => {
            for (_, v) in t.iter_mut() {
                expand_value(v, lookup)?;
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "SET" => Some("value".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expands_set_unset_and_defaults() {
        assert_eq!(expand("a ${SET} b", &env).unwrap(), "a value b");
        assert_eq!(expand("${UNSET:-dflt}", &env).unwrap(), "dflt");
        assert_eq!(expand("${SET:-dflt}", &env).unwrap(), "value");
        assert_eq!(expand("${EMPTY:-dflt}", &env).unwrap(), "dflt");
        assert_eq!(expand("${EMPTY}", &env).unwrap(), "");
        assert_eq!(expand("${UNSET:-}", &env).unwrap(), "");
        assert_eq!(
            expand("${UNSET}", &env),
            Err(ExpandError::Unset("UNSET".into()))
        );
        assert_eq!(expand("cost $$5 and $x", &env).unwrap(), "cost $5 and $x");
        assert_eq!(expand("中文${SET}中文", &env).unwrap(), "中文value中文");
        assert_eq!(expand("$${SET}", &env).unwrap(), "${SET}");
    }

    #[test]
    fn defaults_nest() {
        assert_eq!(expand("${UNSET:-${SET}}", &env).unwrap(), "value");
        assert_eq!(expand("${UNSET:-${SET}}/x", &env).unwrap(), "value/x");
        assert_eq!(expand("${SET:-${UNSET}}", &env).unwrap(), "value");
        assert_eq!(
            expand("${UNSET:-${EMPTY:-a${SET}b}}!", &env).unwrap(),
            "avalueb!"
        );
        assert_eq!(expand("${UNSET:-$${SET}}", &env).unwrap(), "${SET}");
        assert_eq!(expand("${UNSET:-x}}", &env).unwrap(), "x}");
        // Every variable of the chain unset: the innermost one is named.
        assert_eq!(
            expand("${UNSET:-${ALSO_UNSET}}", &env),
            Err(ExpandError::Unset("ALSO_UNSET".into()))
        );
        // Eight levels of nesting (nine references) expand; nine do not.
        let deep = format!("{}x{}", "${UNSET:-".repeat(9), "}".repeat(9));
        assert_eq!(expand(&deep, &env).unwrap(), "x");
        let deeper = format!("{}x{}", "${UNSET:-".repeat(10), "}".repeat(10));
        assert!(
            matches!(expand(&deeper, &env), Err(ExpandError::Malformed(m)) if m.contains("nested"))
        );
    }

    #[test]
    fn malformed_references_are_errors() {
        let malformed = |s: &str| match expand(s, &env) {
            Err(ExpandError::Malformed(m)) => m,
            other => panic!("{s}: {other:?}"),
        };
        assert!(malformed("${open").contains("closing `}`"));
        assert!(malformed("${UNSET:-${SET}").contains("closing `}`"));
        assert!(malformed("${}").contains("names no variable"));
        assert!(malformed("${A-default}").contains("`A-default` is not a variable name"));
        assert!(malformed("${1A}").contains("not a variable name"));
        assert!(malformed("${${SET}}").contains("not a variable name"));
        // Checked even where the default is not used.
        assert!(malformed("${SET:-${bad name}}").contains("`bad name`"));
        // A default value is never quoted.
        let m = malformed("${bad name:-sk-secret-default}");
        assert!(!m.contains("sk-secret"), "{m}");
    }
}
