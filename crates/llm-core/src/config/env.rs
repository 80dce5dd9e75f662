//! `${VAR}` and `${VAR:-default}` expansion in configuration strings.

/// An expansion that referred to an unset variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UnsetVar(pub(crate) String);

/// Expands `${VAR}` (an unset `VAR` is an error), `${VAR:-default}` (the default
/// when `VAR` is unset or empty) and `$$` (a literal `$`). Other text is kept.
pub(crate) fn expand(
    input: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, UnsetVar> {
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
            let Some(end) = body.find('}') else {
                // No closing brace: keep the text as it is.
                out.push_str(&rest[pos..]);
                return Ok(out);
            };
            let expr = &body[..end];
            let (name, default) = match expr.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (expr, None),
            };
            match (
                lookup(name).filter(|v| !(default.is_some() && v.is_empty())),
                default,
            ) {
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => return Err(UnsetVar(name.to_string())),
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

/// Expands every string inside `value`, returning the first unset variable.
pub(crate) fn expand_value(
    value: &mut toml::Value,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(), UnsetVar> {
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
        assert_eq!(expand("${UNSET}", &env), Err(UnsetVar("UNSET".into())));
        assert_eq!(expand("cost $$5 and $x", &env).unwrap(), "cost $5 and $x");
        assert_eq!(expand("${open", &env).unwrap(), "${open");
        assert_eq!(expand("中文${SET}中文", &env).unwrap(), "中文value中文");
    }
}
