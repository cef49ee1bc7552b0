//! Claude Code interop: `pai import skill DIR/SKILL.md` turns a Markdown skill into a
//! `.pai` skill, and `pai export claude OUT/` writes pai skills as Claude Code skills
//! (agentskills.io layout: `OUT/NAME/SKILL.md`, `workflows/*.md`, `agents/*.md`).
//!
//! What both directions share lives here: YAML front matter, the `USE WHEN` clause of a
//! description, and names in the form both sides accept.

pub mod export;
pub mod import;

/// The longest skill name agentskills.io allows.
pub const MAX_NAME: usize = 64;
/// The longest description agentskills.io allows, in characters.
pub const MAX_DESCRIPTION: usize = 1024;

/// The `key: value` pairs of a Markdown file's front matter, and the body after it.
/// Values are read line by line (a PAI description is one line and often holds `: `,
/// which strict YAML refuses); `key: |` and `key: >` blocks are joined.
pub fn front_matter(text: &str) -> (Vec<(String, String)>, &str) {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let Some(rest) = text.strip_prefix("---") else {
        return (Vec::new(), text);
    };
    let Some(end) = rest.find("\n---") else {
        return (Vec::new(), text);
    };
    let header = &rest[..end];
    let body = rest[end + 4..].trim_start_matches(['-']);
    let body = body.strip_prefix('\n').unwrap_or(body);
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut block: Option<(String, Vec<String>)> = None;
    for line in header.lines() {
        if let Some((_, lines)) = block.as_mut() {
            if line.starts_with(' ') || line.starts_with('\t') || line.trim().is_empty() {
                lines.push(line.trim().to_string());
                continue;
            }
            if let Some((key, lines)) = block.take() {
                pairs.push((key, lines.join(" ").trim().to_string()));
            }
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let key = key.trim().to_string();
        if key.is_empty() || key.starts_with('#') || line.starts_with(' ') {
            continue;
        }
        let value = value.trim();
        if matches!(value, "|" | ">" | "|-" | ">-") {
            block = Some((key, Vec::new()));
        } else {
            pairs.push((key, unquote(value)));
        }
    }
    if let Some((key, lines)) = block {
        pairs.push((key, lines.join(" ").trim().to_string()));
    }
    (pairs, body)
}

fn unquote(value: &str) -> String {
    let value = value.trim();
    if let Some(inner) = value
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
    {
        // YAML double quotes: `\"`, `\\`, `\n` and `\t`; anything else stays as written.
        let mut out = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            match (c, c == '\\') {
                (_, true) => match chars.next() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some(other) => out.push(other),
                    None => out.push('\\'),
                },
                (c, false) => out.push(c),
            }
        }
        return out;
    }
    if let Some(inner) = value
        .strip_prefix('\'')
        .and_then(|rest| rest.strip_suffix('\''))
    {
        return inner.replace("''", "'");
    }
    value.to_string()
}

/// `text` on one line as a YAML double-quoted scalar.
pub fn yaml_quote(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    format!("\"{}\"", line.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A description split at its `USE WHEN` clause: what the skill does, and its triggers.
pub fn split_use_when(description: &str) -> (String, Vec<String>) {
    // The clause is `USE WHEN` as written by PAI; failing that, the last "use when"
    // in any case that stands as words ("a tool to use when debugging. Use when ...").
    // Searched byte-wise: uppercasing first would shift offsets past non-ASCII text.
    let needle = b"USE WHEN";
    let bytes = description.as_bytes();
    let is_word_edge = |at: usize| {
        at.checked_sub(1)
            .and_then(|before| bytes.get(before))
            .is_none_or(|b| !b.is_ascii_alphanumeric())
    };
    let ends_word = |at: usize| {
        bytes
            .get(at + needle.len())
            .is_none_or(|b| !b.is_ascii_alphanumeric())
    };
    let positions = || {
        bytes
            .windows(needle.len())
            .enumerate()
            .filter(|(at, _)| is_word_edge(*at) && ends_word(*at))
    };
    let exact = positions().find(|(_, w)| *w == needle).map(|(at, _)| at);
    let Some(at) = exact.or_else(|| {
        positions()
            .filter(|(_, w)| w.eq_ignore_ascii_case(needle))
            .map(|(at, _)| at)
            .next_back()
    }) else {
        return (description.trim().to_string(), Vec::new());
    };
    let what = description[..at]
        .trim()
        .trim_end_matches('.')
        .trim()
        .to_string();
    let clause = &description[at + "USE WHEN".len()..];
    (what, triggers(clause))
}

/// The trigger phrases of a `USE WHEN` clause: its quoted phrases when it has any,
/// otherwise its parts between commas, `OR` and semicolons, without lead-ins such as
/// "user says".
pub fn triggers(clause: &str) -> Vec<String> {
    let mut quoted = Vec::new();
    let mut rest = clause;
    while let Some(start) = rest.find(['"', '\'', '“']) {
        let open = rest[start..].chars().next().unwrap_or('"');
        let close = if open == '“' { '”' } else { open };
        let after = &rest[start + open.len_utf8()..];
        // An apostrophe inside a word (`user's`) is not a quote.
        if open == '\'' && start > 0 && rest[..start].ends_with(char::is_alphanumeric) {
            rest = after;
            continue;
        }
        let Some(end) = after.find(close) else {
            break;
        };
        let phrase = after[..end].trim();
        if !phrase.is_empty() {
            quoted.push(phrase.to_string());
        }
        rest = &after[end + close.len_utf8()..];
    }
    let phrases = if quoted.is_empty() {
        clause
            .replace(" OR ", ",")
            .replace(" or ", ",")
            .split([',', ';'])
            .map(|part| strip_lead_in(part.trim().trim_end_matches('.').trim()))
            .filter(|part| !part.is_empty())
            .collect()
    } else {
        quoted
    };
    let mut unique: Vec<String> = Vec::new();
    for phrase in phrases {
        if !unique.iter().any(|p| p.eq_ignore_ascii_case(&phrase)) {
            unique.push(phrase);
        }
    }
    unique
}

fn strip_lead_in(part: &str) -> String {
    const LEAD_INS: &[&str] = &[
        "the user ",
        "user ",
        "says ",
        "mentions ",
        "wants to ",
        "asks for ",
        "asks to ",
        "needs to ",
        "requests ",
        "is ",
    ];
    let mut text = part.to_string();
    while let Some(rest) = LEAD_INS.iter().find_map(|lead| {
        text.get(..lead.len())
            .filter(|start| start.eq_ignore_ascii_case(lead))
            .and_then(|_| text.get(lead.len()..))
    }) {
        text = rest.trim_start().to_string();
    }
    text
}

/// `name` as a pai name and an agentskills.io name: lowercase letters and digits with
/// single `-` between parts, starting with a letter (`QuickResearch` → `quick-research`).
pub fn kebab(name: &str) -> String {
    let mut out = String::new();
    let mut previous_lower = false;
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            if previous_lower {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
            previous_lower = false;
        } else if c.is_ascii_alphanumeric() {
            out.push(c);
            previous_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        } else {
            out.push('-');
            previous_lower = false;
        }
    }
    let parts: Vec<&str> = out.split('-').filter(|p| !p.is_empty()).collect();
    let mut name = parts.join("-");
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        name = format!("skill-{name}");
    }
    name.truncate(MAX_NAME);
    name.trim_end_matches('-').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn front_matter_reads_one_line_descriptions_with_colons_and_blocks() {
        let (pairs, body) = front_matter(
            "---\nname: Research\ndescription: Finds things. USE WHEN user says: 'research X'\nmodel: \"sonnet\"\nnotes: |\n  two\n  lines\n---\n# Research\n",
        );
        assert_eq!(
            pairs,
            vec![
                ("name".to_string(), "Research".to_string()),
                (
                    "description".to_string(),
                    "Finds things. USE WHEN user says: 'research X'".to_string()
                ),
                ("model".to_string(), "sonnet".to_string()),
                ("notes".to_string(), "two lines".to_string()),
            ]
        );
        assert_eq!(body, "# Research\n");
    }

    #[test]
    fn use_when_clauses_give_triggers_quoted_or_listed() {
        assert_eq!(
            split_use_when("Multi-agent debate. USE WHEN user says 'council', \"debate\" or 'get perspectives'."),
            (
                "Multi-agent debate".to_string(),
                vec!["council".to_string(), "debate".to_string(), "get perspectives".to_string()]
            )
        );
        assert_eq!(
            split_use_when(
                "Blog workflow. USE WHEN user mentions their blog, wants to publish OR proofread."
            ),
            (
                "Blog workflow".to_string(),
                vec![
                    "their blog".to_string(),
                    "publish".to_string(),
                    "proofread".to_string()
                ]
            )
        );
        assert_eq!(split_use_when("No clause.").1, Vec::<String>::new());
        assert_eq!(
            split_use_when("Which tool to use when debugging. USE WHEN \"debug\"."),
            (
                "Which tool to use when debugging".to_string(),
                vec!["debug".to_string()]
            )
        );
        assert_eq!(split_use_when("Reuse whenever.").1, Vec::<String>::new());
        // `ß` uppercases to two letters: offsets must come from the text itself.
        assert_eq!(
            split_use_when("Straße ßß. use when 'x'"),
            ("Straße ßß".to_string(), vec!["x".to_string()])
        );
    }

    #[test]
    fn quoted_scalars_round_trip() {
        for text in [
            "Plans work: one agent per file",
            "fix issue #12",
            "say \"hi\" \\ bye",
            "# Task",
        ] {
            let line = format!("---\ndescription: {}\n---\n", yaml_quote(text));
            let (pairs, _) = front_matter(&line);
            assert_eq!(pairs, vec![("description".to_string(), text.to_string())]);
        }
    }

    #[test]
    fn names_become_kebab_case() {
        assert_eq!(kebab("QuickResearch"), "quick-research");
        assert_eq!(kebab("pai-council"), "pai-council");
        assert_eq!(kebab("My Skill_v2"), "my-skill-v2");
        assert_eq!(kebab("3d"), "skill-3d");
        assert_eq!(kebab("APIClient"), "apiclient");
    }
}
