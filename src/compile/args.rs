//! `--arg name=value`: values from the command line, checked against the workflow's
//! parameter types before anything is planned.

use foldhash::{HashMap, HashMapExt};
use std::path::PathBuf;

use super::value::{PlanValue, Val};
use super::PlanError;
use crate::check::budget::tokens_of_bytes;
use crate::check::types::Type;
use crate::diagnostics::{suggest, thousands};
use crate::syntax::ast::{ExprKind, Param};

/// Splits `name=value`.
pub fn split(raw: &str) -> Result<(String, String), PlanError> {
    match raw.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_string(), value.to_string()))
        }
        _ => Err(PlanError::usage(
            format!("`--arg {raw}` is not of the form `name=value`"),
            "write `--arg request=\"add a login page\"`",
        )),
    }
}

/// Binds every parameter of `workflow` from `given` or its default.
pub fn bind(
    workflow: &str,
    params: &[(Param, Type)],
    given: &[(String, String)],
) -> Result<HashMap<String, PlanValue>, PlanError> {
    let mut values = HashMap::new();
    let mut seen: HashMap<&str, ()> = HashMap::new();
    for (name, raw) in given {
        if seen.insert(name.as_str(), ()).is_some() {
            return Err(PlanError::usage(
                format!("`--arg {name}` is given more than once"),
                "give each argument once",
            ));
        }
        let Some((param, ty)) = params.iter().find(|(p, _)| &p.name.name == name) else {
            let names: Vec<&str> = params.iter().map(|(p, _)| p.name.name.as_str()).collect();
            let help = suggest(name, names.iter().copied()).unwrap_or_else(|| {
                if names.is_empty() {
                    format!("`{workflow}` takes no arguments")
                } else {
                    format!(
                        "the parameters of `{workflow}` are {}",
                        crate::diagnostics::backticked(&names)
                    )
                }
            });
            return Err(PlanError::usage(
                format!("`{workflow}` has no parameter `{name}`"),
                help,
            ));
        };
        let value = parse(name, raw, ty)?;
        if let (Some(max), Type::Text) = (param.max.as_ref().and_then(|q| q.as_count()), ty) {
            let tokens = tokens_of_bytes(raw.len());
            if tokens > max {
                return Err(PlanError::usage(
                    format!(
                        "`--arg {name}` is {} tokens, more than its `max {}`",
                        thousands(tokens),
                        thousands(max)
                    ),
                    "shorten the value, or raise the parameter's `max`",
                ));
            }
        }
        if let (Some(max), Val::List(items)) = (param.ty.element_max(), &value.val) {
            if let Some((i, tokens)) = items
                .iter()
                .map(|item| tokens_of_bytes(rendered_bytes(item)))
                .enumerate()
                .find(|&(_, tokens)| tokens > max)
            {
                return Err(PlanError::usage(
                    format!(
                        "element {i} of `--arg {name}` is {} tokens, more than its `max {}`",
                        thousands(tokens),
                        thousands(max)
                    ),
                    "shorten the element, or raise the `max` in `list<T max N>`",
                ));
            }
        }
        if let (Some(max), Val::List(items)) =
            (param.max.as_ref().and_then(|q| q.as_count()), &value.val)
        {
            if items.len() as u64 > max {
                return Err(PlanError::usage(
                    format!(
                        "`--arg {name}` has {} elements, more than its `max {max}`",
                        items.len()
                    ),
                    "give fewer elements, or raise the parameter's `max`",
                ));
            }
        }
        values.insert(name.clone(), value);
    }
    for (param, ty) in params {
        if values.contains_key(&param.name.name) {
            continue;
        }
        match &param.default {
            Some(default) => {
                let value = default_value(&default.kind, ty).ok_or_else(|| {
                    PlanError::usage(
                        format!("the default of `{}` is not a constant", param.name.name),
                        "run `pai check` on the file",
                    )
                })?;
                values.insert(param.name.name.clone(), value);
            }
            None => {
                return Err(PlanError::usage(
                    format!(
                        "`{workflow}` needs the argument `{}` ({ty})",
                        param.name.name
                    ),
                    format!("add `--arg {}=...`", param.name.name),
                ))
            }
        }
    }
    Ok(values)
}

/// Parses one value as `ty`.
fn parse(name: &str, raw: &str, ty: &Type) -> Result<PlanValue, PlanError> {
    let bad = |expected: &str| {
        PlanError::usage(
            format!("`--arg {name}={raw}` is not a valid `{ty}`"),
            format!("give {expected}"),
        )
    };
    let val = match ty {
        Type::Text | Type::Unknown => Val::Text(raw.to_string()),
        Type::Path => {
            let path = PathBuf::from(raw);
            if !path.exists() {
                return Err(PlanError::usage(
                    format!("`--arg {name}={raw}`: no such file or directory"),
                    "give a path that exists, relative to the current directory",
                ));
            }
            Val::Path(path)
        }
        Type::Number => Val::Number(parse_number(raw.trim()).ok_or_else(|| {
            bad("a number as the language writes one: `3`, `2.5`, `1_000` or `2k`")
        })?),
        Type::Bool => match raw.trim() {
            "true" => Val::Bool(true),
            "false" => Val::Bool(false),
            _ => return Err(bad("`true` or `false`")),
        },
        Type::Duration => Val::Duration(
            parse_duration(raw.trim()).ok_or_else(|| bad("a duration such as `30s` or `10m`"))?,
        ),
        Type::List(element) => {
            let items = parse_list(raw, element.is_list())
                .ok_or_else(|| bad("a list: `[\"a\", \"b\"]` (JSON) or `a,b`"))?;
            let mut values = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                values.push(parse(&format!("{name}[{i}]"), item, element)?);
            }
            Val::List(values)
        }
        Type::EmptyList => Val::List(Vec::new()),
        Type::Result | Type::Record(_) => {
            return Err(PlanError::usage(
                format!("`{name}` is a `{ty}`, which cannot be given on the command line"),
                "give the workflow text or paths and let it call the agents",
            ))
        }
    };
    Ok(PlanValue::constant(val))
}

/// The bytes `value` renders as in a prompt: a list as handlebars writes one,
/// `[a, b]`, at every depth. An element of `list<T max N>` is held to N as it renders,
/// which is what the checker counts it at.
fn rendered_bytes(value: &PlanValue) -> usize {
    match &value.val {
        Val::Text(text) => text.len(),
        Val::Path(path) => path.as_os_str().len(),
        Val::List(items) => crate::check::budget::rendered_list_bytes(
            items.len(),
            items.iter().map(rendered_bytes).sum(),
        ),
        _ => usize::try_from(value.tokens().saturating_mul(4)).unwrap_or(usize::MAX),
    }
}

/// `["a", "b"]` as JSON, or `a,b`; `[]` and the empty text are the empty list. An
/// element that is itself a list stays JSON, for its own type to parse, where the
/// elements are lists (`nested`); elsewhere it is refused, not read as a text.
fn parse_list(raw: &str, nested: bool) -> Option<Vec<String>> {
    let trimmed = raw.trim();
    if trimmed.starts_with('[') {
        let value: serde_json::Value = serde_json::from_str(trimmed).ok()?;
        return value
            .as_array()?
            .iter()
            .map(|v| match v {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                serde_json::Value::Bool(b) => Some(b.to_string()),
                serde_json::Value::Array(_) if nested => Some(v.to_string()),
                _ => None,
            })
            .collect();
    }
    if trimmed.is_empty() {
        return Some(Vec::new());
    }
    Some(trimmed.split(',').map(|s| s.trim().to_string()).collect())
}

/// A number as the language writes one: digits with `_` between groups, an optional
/// fraction, an optional `k` or `M`. Not `NaN`, `inf` or `1e3`, which Rust's parser
/// takes and a `.pai` file does not.
fn parse_number(raw: &str) -> Option<f64> {
    let (digits, factor) = match raw.strip_suffix('k') {
        Some(digits) => (digits, 1_000.0),
        None => match raw.strip_suffix('M') {
            Some(digits) => (digits, 1_000_000.0),
            None => (raw, 1.0),
        },
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, "0"));
    let grouped = !whole.is_empty()
        && whole
            .split('_')
            .all(|group| !group.is_empty() && group.bytes().all(|b| b.is_ascii_digit()));
    let fraction_ok = !fraction.is_empty() && fraction.bytes().all(|b| b.is_ascii_digit());
    if !grouped || !fraction_ok || digits.len() > MAX_NUMBER_CHARS {
        return None;
    }
    let number: f64 = format!("{}.{fraction}", whole.replace('_', ""))
        .parse()
        .ok()?;
    Some(number * factor)
}

/// `250ms`, `30s`, `10m`, `2h` in seconds.
fn parse_duration(raw: &str) -> Option<f64> {
    let (number, factor) = if let Some(n) = raw.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = raw.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = raw.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = raw.strip_suffix('h') {
        (n, 3600.0)
    } else {
        return None;
    };
    // Digits and one `.` only, as the language writes them: `1e300s` parsed, and
    // rendered as 301 digits where the budget counted a duration at 6 tokens.
    let plain = !number.is_empty()
        && number.chars().all(|c| c.is_ascii_digit() || c == '.')
        && number.matches('.').count() <= 1;
    if !plain || number.len() > MAX_NUMBER_CHARS {
        return None;
    }
    number
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite() && *n >= 0.0)
        .map(|n| n * factor)
}

/// The longest number a number or duration argument may have, fraction included: far
/// past any timeout or count, short enough that it renders within the 6 tokens a scalar
/// is counted at.
const MAX_NUMBER_CHARS: usize = 12;

fn default_value(kind: &ExprKind, ty: &Type) -> Option<PlanValue> {
    let val = match kind {
        ExprKind::Text(text) if *ty == Type::Path => Val::Path(PathBuf::from(&text.value)),
        ExprKind::Text(text) => Val::Text(text.value.clone()),
        ExprKind::Quantity(q) if q.is_duration() => Val::Duration(q.as_duration()?.as_secs_f64()),
        ExprKind::Quantity(q) => Val::Number(q.as_number()),
        ExprKind::Bool(b) => Val::Bool(*b),
        ExprKind::List(items) => {
            let element = ty.element().unwrap_or(Type::Unknown);
            Val::List(
                items
                    .iter()
                    .map(|item| default_value(&item.kind, &element))
                    .collect::<Option<Vec<_>>>()?,
            )
        }
        _ => return None,
    };
    Some(PlanValue::constant(val))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_as_json_or_commas() {
        assert_eq!(
            parse_list(r#"["a b", "c"]"#, false),
            Some(vec!["a b".to_string(), "c".to_string()])
        );
        assert_eq!(
            parse_list("a, b", false),
            Some(vec!["a".to_string(), "b".to_string()])
        );
        assert_eq!(parse_list("", false), Some(vec![]));
        assert_eq!(parse_list("[1, {}]", true), None);
        assert_eq!(
            parse_list(r#"[["a"], []]"#, true),
            Some(vec![r#"["a"]"#.to_string(), "[]".to_string()])
        );
        // A list where texts are expected is refused, not read as the text `["a"]`.
        assert_eq!(parse_list(r#"[["a"], "b"]"#, false), None);
    }

    #[test]
    fn numbers_parse_as_the_language_writes_them() {
        assert_eq!(parse_number("3"), Some(3.0));
        assert_eq!(parse_number("2.5"), Some(2.5));
        assert_eq!(parse_number("1_000"), Some(1000.0));
        assert_eq!(parse_number("2k"), Some(2000.0));
        assert_eq!(parse_number("1.5M"), Some(1_500_000.0));
        for bad in ["NaN", "inf", "1e3", "-1", "", "1__0", "_1", "1.", ".5", "k"] {
            assert_eq!(parse_number(bad), None, "{bad}");
        }
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("250ms"), Some(0.25));
        assert_eq!(parse_duration("10m"), Some(600.0));
        assert_eq!(parse_duration("10"), None);
    }
}
