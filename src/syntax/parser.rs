//! The pest parser, its resource limits, and the translation of pest's errors into our
//! own diagnostics.

use std::num::NonZeroUsize;

use pest::error::{ErrorVariant, InputLocation};
use pest::Parser as _;

use crate::diagnostics::{self, Diagnostic};
use crate::source::Span;

#[derive(pest_derive::Parser)]
#[grammar = "grammar/pai.pest"]
pub(crate) struct PaiParser;

/// Deepest nesting of `(`, `[` and `{` accepted before parsing.
pub const MAX_NESTING: usize = 256;

/// Parsing steps allowed per byte of input (pest's "calls"). Measured (docs/parsing.md):
/// realistic workflows take about 3 per byte; the densest legal texts, lists of
/// one-letter names or brackets nested 200 deep, take up to 35. The limit keeps parsing
/// linear in the input's size with twice the room of the worst legal case.
/// `PAI_PARSE_STEPS_PER_BYTE` overrides it.
const CALLS_PER_BYTE: usize = 100;
/// Steps every input may take on top, however small it is.
const MIN_CALLS: usize = 10_000;

/// pest's call limit and error detail are process-wide settings, so two parses on two
/// threads would change each other's limits: parses take turns.
static PARSE_SETTINGS: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// The steps pest may take on `len` bytes.
fn call_limit(len: usize) -> usize {
    let per_byte = std::env::var("PAI_PARSE_STEPS_PER_BYTE")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(CALLS_PER_BYTE);
    len.saturating_mul(per_byte).saturating_add(MIN_CALLS)
}

/// Parses `text` with `rule`, under a call limit proportional to its size.
pub(crate) fn parse_rule(
    rule: Rule,
    text: &str,
) -> Result<pest::iterators::Pairs<'_, Rule>, pest::error::Error<Rule>> {
    parse_with(rule, text, false)
}

fn parse_with(
    rule: Rule,
    text: &str,
    detail: bool,
) -> Result<pest::iterators::Pairs<'_, Rule>, pest::error::Error<Rule>> {
    let _turn = Settings::take(text.len(), detail);
    PaiParser::parse(rule, text)
}

/// Parses the pieces of `text` that start at `starts` (from [`prescan`]) with the `file`
/// rule and hands each piece's start and pairs to `lower`. The pieces are shared out
/// between `threads` threads, each taking the next piece not yet taken, and each
/// piece is lowered as soon as it is parsed, so pest's token queue never holds more
/// than one piece a thread. `None` when a piece does not parse.
pub(crate) fn parse_pieces<T: Send>(
    text: &str,
    starts: &[usize],
    threads: usize,
    lower: impl Fn(usize, pest::iterators::Pairs<'_, Rule>) -> T + Sync,
) -> Option<Vec<T>> {
    let mut bounds = vec![0];
    bounds.extend_from_slice(starts);
    bounds.push(text.len());
    let pieces: Vec<(usize, usize)> = bounds.windows(2).map(|w| (w[0], w[1])).collect();
    let longest = pieces.iter().map(|(a, b)| b - a).max().unwrap_or(0);
    let _turn = Settings::take(longest, false);
    // Once a piece fails the others are not worth parsing: the whole parse reports.
    let failed = std::sync::atomic::AtomicBool::new(false);
    let lowered = crate::parallel::map_each(&pieces, threads, |&(start, end)| {
        if failed.load(std::sync::atomic::Ordering::Relaxed) {
            return None;
        }
        let parsed = text
            .get(start..end)
            .and_then(|piece| PaiParser::parse(Rule::file, piece).ok());
        if parsed.is_none() {
            failed.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        Some(lower(start, parsed?))
    });
    lowered.into_iter().collect()
}

/// pest's process-wide settings, held for one parse of ours: set on taking, put back
/// (no limit, no detail) on drop, since handlebars parses with pest too and must not
/// run under the step limit of whichever file was parsed last.
struct Settings {
    _turn: std::sync::RwLockWriteGuard<'static, ()>,
}

/// Runs `parse` (handlebars' parser, which is pest's too) with pest's settings at their
/// defaults: no step limit. Many may run at once; a parse of ours waits for them, and
/// they for it. Without this, a template compiled on one thread while a small file was
/// parsed on another ran under that file's step limit and was refused.
pub(crate) fn without_limits<T>(parse: impl FnOnce() -> T) -> T {
    let _turn = PARSE_SETTINGS.read().unwrap_or_else(|e| e.into_inner());
    parse()
}

impl Settings {
    /// Takes the settings (waiting for any other parse) with the step limit for `len`
    /// bytes and pest's error detail on or off.
    fn take(len: usize, detail: bool) -> Settings {
        // A poisoned lock only means another parse panicked; the settings are still
        // ours to set.
        let turn = PARSE_SETTINGS.write().unwrap_or_else(|e| e.into_inner());
        pest::set_call_limit(NonZeroUsize::new(call_limit(len)));
        pest::set_error_detail(detail);
        Settings { _turn: turn }
    }
}

impl Drop for Settings {
    fn drop(&mut self) {
        pest::set_call_limit(None);
        pest::set_error_detail(false);
    }
}

/// The linear scan that runs before pest: it refuses input whose brackets nest deeper
/// than [`MAX_NESTING`], and finds where the text can be cut into pieces of at least
/// `piece_len` bytes that parse alone exactly as they parse together (returning the
/// start of every piece but the first).
///
/// Brackets inside strings and comments do not count. Two things recurse in the
/// grammar without brackets and are counted too: `list<...>` types (their `<`, after
/// the word `list`, apart from brackets: every `>` closes one, which over-counts at
/// worst), and an `if` or `for` in the condition or iterable of another (each `if` and
/// `for` counts as a bracket until the next `{`, which opens its block).
///
/// A piece starts at a line that starts with an item keyword, outside any bracket, right
/// after a `}` (whitespace and comments between): there the whole parse is always
/// between items, since only a `use` item has no braces, and an unparseable item is
/// skipped exactly up to such a line.
pub(crate) fn prescan(text: &str, piece_len: usize) -> Result<Vec<usize>, Box<Diagnostic>> {
    let too_deep = |start, end| {
        Box::new(diagnostics::nested_too_deeply(
            Span::new(start, end),
            MAX_NESTING,
        ))
    };
    let mut starts = Vec::new();
    let mut next_cut = piece_len;
    let mut last = 0u8;
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut list_depth = 0usize;
    // `if` and `for` whose block has not opened yet: `if if if a {...` nests in the
    // grammar without a bracket, until the next `{`.
    let mut open_keywords = 0usize;
    // The block after `else` belongs to an `if` whose count its first block took.
    let mut after_else = false;
    let mut after_list = false;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'\n'
                if depth == 0
                    && last == b'}'
                    && i + 1 >= next_cut
                    && starts_item(bytes.get(i + 1..).unwrap_or_default()) =>
            {
                starts.push(i + 1);
                next_cut = (i + 1).saturating_add(piece_len);
                i += 1;
                continue;
            }
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => {
                let start = i;
                while bytes.get(i).copied().is_some_and(is_name_byte) {
                    i += 1;
                }
                let word = bytes.get(start..i);
                after_list = word == Some(b"list");
                after_else = word == Some(b"else");
                if matches!(word, Some(b"if" | b"for")) {
                    open_keywords += 1;
                    if depth + open_keywords > MAX_NESTING {
                        return Err(too_deep(start, i));
                    }
                }
                last = b'a';
                continue;
            }
            b'<' if after_list => {
                list_depth += 1;
                if list_depth > MAX_NESTING {
                    return Err(too_deep(i, i + 1));
                }
            }
            b'>' => list_depth = list_depth.saturating_sub(1),
            // Comments and strings end where pest's do: at `\r` as well as `\n`.
            b'#' => {
                let rest = bytes.get(i..).unwrap_or_default();
                i += rest
                    .iter()
                    .position(|&c| c == b'\n' || c == b'\r')
                    .unwrap_or(rest.len());
                continue;
            }
            b'"' if bytes.get(i..i + 3) == Some(b"\"\"\"") => {
                // Searched for, not stepped through: prompts are most of a file's bytes.
                let body = i + 3;
                let end = text.get(body..).and_then(|rest| rest.find("\"\"\""));
                i = end.map_or(bytes.len(), |at| body + at) + 2;
            }
            b'"' => {
                i += 1;
                while let Some(&c) = bytes.get(i) {
                    match c {
                        b'\\' if !matches!(bytes.get(i + 1), Some(b'\n' | b'\r')) => i += 1,
                        b'"' | b'\n' | b'\r' => break,
                        _ => {}
                    }
                    i += 1;
                }
            }
            b'(' | b'[' | b'{' => {
                if b == b'{' && !after_else {
                    open_keywords = open_keywords.saturating_sub(1);
                }
                depth += 1;
                if depth + open_keywords > MAX_NESTING {
                    return Err(too_deep(i, i + 1));
                }
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        after_list = false;
        after_else = false;
        last = b;
        i += 1;
    }
    Ok(starts)
}

/// Whether `byte` can continue a name (or a keyword) in the grammar.
fn is_name_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-'
}

/// Whether `rest` starts with an item keyword as a whole word.
fn starts_item(rest: &[u8]) -> bool {
    [
        "use", "type", "agent", "workflow", "skill", "protocol", "provider",
    ]
    .iter()
    .any(|keyword| {
        rest.starts_with(keyword.as_bytes())
            && !rest.get(keyword.len()).copied().is_some_and(is_name_byte)
    })
}

/// Turns a pest error at `offset` (the start of the text pest was given) into a diagnostic.
/// Parses one skipped item again with pest's error detail on, so the error can list
/// the punctuation that was expected as well as the rules. Detail costs time, so only
/// this error path pays for it.
pub(crate) fn probe_item(text: &str, start: usize) -> Option<Diagnostic> {
    let rest = text.get(start..)?;
    parse_with(Rule::item_probe, rest, true)
        .err()
        .map(|error| convert_error(&error, text, start))
}

pub(crate) fn convert_error(
    error: &pest::error::Error<Rule>,
    text: &str,
    offset: usize,
) -> Diagnostic {
    let position = match error.location {
        InputLocation::Pos(pos) => pos,
        InputLocation::Span((start, _)) => start,
    } + offset;
    match &error.variant {
        ErrorVariant::ParsingError { positives, .. } => {
            if let Some(unclosed) = unclosed_text(text, position) {
                return unclosed;
            }
            let span = token_span(text, position);
            let mut names: Vec<String> = positives
                .iter()
                .map(|r| rule_name(*r).to_string())
                .collect();
            if let Some(attempts) = error.parse_attempts() {
                names.extend(
                    attempts
                        .expected_tokens()
                        .into_iter()
                        .map(|token| token.to_string())
                        .filter(|token| is_punctuation(token))
                        .map(|token| format!("`{token}`")),
                );
            }
            let expected = expected_list(&names);
            diagnostics::syntax_error(span, &expected, &describe_found(text, position))
        }
        ErrorVariant::CustomError { message } if message.contains("call limit") => {
            diagnostics::call_limit(token_span(text, position))
        }
        ErrorVariant::CustomError { .. } => {
            // Any other limit pest reports: recursion too deep.
            diagnostics::nested_too_deeply(token_span(text, position), MAX_NESTING)
        }
    }
}

/// The span of the token starting at `position`: a word, or one character.
fn token_span(text: &str, position: usize) -> Span {
    let rest = text.get(position..).unwrap_or("");
    let word = rest
        .char_indices()
        .find(|&(_, c)| !(c.is_alphanumeric() || c == '_' || c == '-'))
        .map_or(rest.len(), |(i, _)| i);
    let len = if word > 0 {
        word
    } else {
        rest.chars().next().map_or(0, char::len_utf8)
    };
    Span::new(position, position + len)
}

/// A string or `"""` block opened at (or just before) `position` and never closed: said
/// as such, rather than as a quote the grammar did not expect there.
fn unclosed_text(text: &str, position: usize) -> Option<Diagnostic> {
    let rest = text.get(position..)?;
    if !rest.starts_with('"') {
        return None;
    }
    // `"""abc` fails at its third quote, after `""` read as an empty string.
    let block_start = if rest.starts_with("\"\"\"") {
        Some(position)
    } else {
        position
            .checked_sub(2)
            .filter(|&start| text.get(start..position + 1) == Some("\"\"\""))
    };
    if let Some(start) = block_start {
        let closed = text
            .get(start + 3..)
            .is_some_and(|after| after.contains("\"\"\""));
        return (!closed).then(|| diagnostics::unclosed_text(Span::new(start, start + 3), true));
    }
    let line = rest.get(1..)?.split(['\n', '\r']).next().unwrap_or("");
    let mut escaped = false;
    let closed = line.chars().any(|c| {
        let quote = c == '"' && !escaped;
        escaped = c == '\\' && !escaped;
        quote
    });
    (!closed).then(|| diagnostics::unclosed_text(Span::new(position, position + 1), false))
}

fn describe_found(text: &str, position: usize) -> String {
    let rest = text.get(position..).unwrap_or("");
    match rest.chars().next() {
        None => "end of file".to_string(),
        Some('\n' | '\r') => "end of line".to_string(),
        Some(_) => {
            let span = token_span(text, position);
            let token = text.get(span.start..span.end).unwrap_or("");
            if token.chars().any(char::is_control) {
                format!("`{}`", token.escape_debug())
            } else {
                format!("`{token}`")
            }
        }
    }
}

/// Punctuation is worth listing as expected; letters come from keyword rules, and
/// whitespace or `#` from the implicit rules would only be noise.
fn is_punctuation(token: &str) -> bool {
    // A lone `-` only continues a name (`pai-council`); listing it reads like a minus.
    !token.is_empty() && token != "-" && token.chars().all(|c| "()[]{},:.=<>!+-".contains(c))
}

fn expected_list(names: &[String]) -> String {
    let mut names: Vec<&str> = names.iter().map(String::as_str).collect();
    // A bracket already said in words ("a list") is not repeated as punctuation.
    for (token, words) in [
        ("`[`", "a list"),
        ("`{`", "a block `{ ... }`"),
        ("`(`", "a parameter list"),
    ] {
        if names.contains(&words) {
            names.retain(|n| *n != token);
        }
    }
    names.sort_unstable();
    names.dedup();
    match names.as_slice() {
        [] => "something else".to_string(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// The friendly name of each rule, as "expected ..." shows it. Exhaustive on purpose:
/// a new rule must be given a name.
fn rule_name(rule: Rule) -> &'static str {
    match rule {
        Rule::EOI => "end of file",
        Rule::WHITESPACE => "whitespace",
        Rule::comment | Rule::comment_text => "a comment",
        Rule::item | Rule::item_keyword => "an item",
        Rule::modifier => "`depth` or `follows`",
        Rule::skill_entry => "a skill entry",
        Rule::protocol_rule => "a protocol rule",
        Rule::value => "a value",
        Rule::statement => "`let` or `return`",
        Rule::prefix => "`not`",
        Rule::infix => "an operator",
        Rule::primary => "an expression",
        Rule::text => "a string",
        Rule::tokens_word => "`tokens`",
        Rule::name_char => "a name",
        Rule::file | Rule::bad_item | Rule::item_probe => "an item",
        Rule::directive => "a `# pai:allow(...)` directive",
        Rule::directive_code => "a diagnostic code",
        Rule::use_item => "`use`",
        Rule::type_item => "a type",
        Rule::field_decl => "a field",
        Rule::agent_item => "an agent",
        Rule::workflow_item => "a workflow",
        Rule::depth_mod => "`depth`",
        Rule::follows_mod => "`follows`",
        Rule::skill_item => "a skill",
        Rule::use_when | Rule::misplaced_when => "`use when`",
        Rule::skill_workflow => "`workflow`",
        Rule::protocol_item => "a protocol",
        Rule::max_rule => "`max`",
        Rule::delegate_rule => "`delegate when`",
        Rule::provider_item => "a provider",
        Rule::setting => "a setting",
        Rule::value_list => "a list",
        Rule::env_call => "`env(\"NAME\")`",
        Rule::params => "a parameter list",
        Rule::param => "a parameter",
        Rule::param_max => "`max`",
        Rule::returns => "`->`",
        Rule::type_expr | Rule::list_type => "a type",
        Rule::let_stmt => "`let`",
        Rule::return_stmt => "`return`",
        Rule::after_clause => "`after`",
        Rule::block => "a block `{ ... }`",
        Rule::expr | Rule::paren => "an expression",
        Rule::op_not => "`not`",
        Rule::op_or => "`or`",
        Rule::op_and => "`and`",
        Rule::op_eq => "`==`",
        Rule::op_ne => "`!=`",
        Rule::op_le => "`<=`",
        Rule::op_ge => "`>=`",
        Rule::op_lt => "`<`",
        Rule::op_gt => "`>`",
        Rule::op_add => "`+`",
        Rule::compare_op => "a comparison",
        Rule::for_expr => "`for`",
        Rule::for_max => "`max`",
        Rule::if_expr => "`if`",
        Rule::access => "a name",
        Rule::call_args => "`(`",
        Rule::arg => "an argument",
        Rule::list_expr => "a list",
        Rule::bool_lit => "`true` or `false`",
        Rule::quantity | Rule::number => "a number",
        Rule::unit => "a unit",
        Rule::string | Rule::string_inner => "a string",
        Rule::block_string | Rule::block_inner => "a `\"\"\"` block",
        Rule::name => "a name",
        Rule::kw_use => "`use`",
        Rule::kw_type => "`type`",
        Rule::kw_agent => "`agent`",
        Rule::kw_workflow => "`workflow`",
        Rule::kw_skill => "`skill`",
        Rule::kw_protocol => "`protocol`",
        Rule::kw_provider => "`provider`",
        Rule::kw_when => "`when`",
        Rule::kw_depth => "`depth`",
        Rule::kw_follows => "`follows`",
        Rule::kw_max => "`max`",
        Rule::kw_delegate => "`delegate`",
        Rule::kw_env => "`env`",
        Rule::kw_list => "`list`",
        Rule::kw_tokens => "`tokens`",
        Rule::kw_let => "`let`",
        Rule::kw_return => "`return`",
        Rule::kw_after => "`after`",
        Rule::kw_for => "`for`",
        Rule::kw_in => "`in`",
        Rule::kw_if => "`if`",
        Rule::kw_else => "`else`",
        Rule::kw_not => "`not`",
        Rule::kw_and => "`and`",
        Rule::kw_or => "`or`",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_counts_brackets_outside_strings_and_comments() {
        let deep = "[".repeat(MAX_NESTING + 1);
        let error = prescan(&deep, usize::MAX).unwrap_err();
        assert_eq!(error.span.start, MAX_NESTING);
        let quoted = format!("\"{deep}\" # {deep}\n\"\"\"{deep}\"\"\"");
        assert!(prescan(&quoted, usize::MAX).is_ok());
    }

    /// Regression: pest ends a comment or a string at `\r` as at `\n`, so brackets
    /// after a `\r` are parsed and must be counted.
    #[test]
    fn nesting_counts_brackets_after_a_carriage_return() {
        let deep = "(".repeat(MAX_NESTING + 1);
        for text in [format!("# comment\r{deep}"), format!("\"text\r{deep}")] {
            assert!(prescan(&text, usize::MAX).is_err(), "{text:?}");
        }
    }

    /// `list<...>` recurses in the grammar without brackets, so pest would overflow the
    /// stack on a long enough type if the scan did not count it.
    #[test]
    fn nesting_counts_list_types_through_whitespace_and_comments() {
        let deep = "list # a comment\n <".repeat(MAX_NESTING + 1);
        let error = prescan(&deep, usize::MAX).unwrap_err();
        assert_eq!(deep.get(error.span.start..error.span.end), Some("<"));
        let closed = "list<text> ".repeat(MAX_NESTING + 1);
        assert!(prescan(&closed, usize::MAX).is_ok());
        let compared = "a < b ".repeat(MAX_NESTING + 1);
        assert!(prescan(&compared, usize::MAX).is_ok());
        let other_words = "blist <lists <".repeat(MAX_NESTING + 1);
        assert!(prescan(&other_words, usize::MAX).is_ok());
    }

    /// An `if` or `for` counts until its block opens, so only conditions and iterables
    /// that nest other `if`s and `for`s add up.
    #[test]
    fn nesting_counts_if_and_for_until_their_block() {
        let nested = "if ".repeat(MAX_NESTING + 1);
        assert!(prescan(&nested, usize::MAX).is_err());
        let sequential = "let a = if b { c } else if d { e } else { f }\n".repeat(MAX_NESTING * 2);
        assert!(prescan(&sequential, usize::MAX).is_ok());
        let loops = "let a = for x in xs max 3 { if x { y } else { z } }\n".repeat(MAX_NESTING * 2);
        assert!(prescan(&loops, usize::MAX).is_ok());
    }

    #[test]
    fn expected_lists_read_as_prose() {
        let names = |rules: &[Rule]| -> Vec<String> {
            rules.iter().map(|r| rule_name(*r).to_string()).collect()
        };
        assert_eq!(expected_list(&names(&[Rule::name])), "a name");
        assert_eq!(
            expected_list(&names(&[Rule::kw_let, Rule::kw_return, Rule::kw_let])),
            "`let` or `return`"
        );
    }
}
