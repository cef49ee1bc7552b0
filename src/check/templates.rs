//! Prompt templates: parsed with handlebars' own parser, every path resolved against
//! the agent's parameters and their types, every diagnostic mapped back to the exact
//! variable in the `.pai` source.

use handlebars::template::{BlockParam, HelperTemplate, Parameter, Template, TemplateElement};
use handlebars::{Path as HbPath, TemplateErrorReason};

use super::budget;
use super::condense::Condensed;
use super::cost::{Cost, Loop, Root};
use super::types::{ResultFields, Type, RESULT_FIELDS};
use crate::diagnostics::{self, Diagnostic};
use crate::syntax::ast::Text;

/// Helpers a template may call: handlebars' builtins that `pai` registers.
const HELPERS: &[&str] = &[
    "if", "unless", "each", "with", "lookup", "eq", "ne", "gt", "gte", "lt", "lte", "and", "or",
    "not", "len",
];

/// The deepest `{{#block}}` nesting a template may have.
pub const MAX_BLOCK_DEPTH: usize = 64;

/// The most `{{` expressions one template may hold.
pub const MAX_EXPRESSIONS: usize = 2_000;

/// The deepest `(subexpression)` nesting one tag may have.
pub const MAX_SUBEXPRESSION_DEPTH: usize = 32;

/// What the checker learns from an agent's templates.
#[derive(Debug)]
pub struct TemplateUse {
    /// What rendering it costs, by what it renders (`cost.rs`).
    pub cost: Cost,
    /// Whether handlebars could parse the template at all.
    pub parsed: bool,
    /// The fields of `result` values the template can read.
    pub result_fields: ResultFields,
}

/// Looks up the fields of a record type.
pub type FieldsOf<'a> = dyn Fn(&str) -> Option<Vec<(String, Type)>> + 'a;

/// A template as handlebars parsed it, before it is checked against an agent's
/// parameters (parsing needs nothing but the text).
pub struct Parsed {
    /// What handlebars read, and how its positions map back to the template.
    read: Condensed,
    outcome: Outcome,
}

enum Outcome {
    Template(Template),
    /// Refused before handlebars ran: where in the template, and why.
    Refused(usize, usize, String),
    Invalid(handlebars::TemplateError),
}

/// Parses one template: a condensed copy of it when handlebars reads that alike
/// (`condense.rs`), the template whole when the copy does not parse, so that errors
/// are found where handlebars finds them in the original.
pub fn parse(text: &Text) -> Parsed {
    // handlebars' parser takes time quadratic in the number of expressions (it
    // recomputes line and column from the start for each): bounded here, before it
    // runs. Its recursion is bounded by `compile_bounded`.
    let expressions = text.value.matches("{{").count();
    if expressions > MAX_EXPRESSIONS {
        let at = text
            .value
            .match_indices("{{")
            .nth(MAX_EXPRESSIONS)
            .map_or(0, |(i, _)| i);
        return Parsed {
            read: Condensed::identity(&text.value),
            outcome: Outcome::Refused(
                at,
                at + 2,
                format!("it has {expressions} `{{{{` expressions, more than the {MAX_EXPRESSIONS} a prompt may have"),
            ),
        };
    }
    let parsed = parse_as(text, Condensed::new(&text.value));
    match parsed.outcome {
        Outcome::Invalid(_) if parsed.read.is_condensed() => {
            parse_as(text, Condensed::identity(&text.value))
        }
        _ => parsed,
    }
}

/// [`parse`], with handlebars reading `read` (the template or its condensed copy).
fn parse_as(text: &Text, read: Condensed) -> Parsed {
    let outcome = compile_bounded(&text.value, &read.text);
    Parsed { read, outcome }
}

/// Stack the calling thread is trusted to have free for handlebars' parser.
const INLINE_STACK: usize = 1024 * 1024;

/// The most stack a template may ask for; one that could need more is refused unparsed.
const MAX_STACK: usize = 256 * 1024 * 1024;

/// How much more stack a level takes in a debug build than in a release one, with room.
const STACK_SCALE: usize = if cfg!(debug_assertions) { 16 } else { 1 };

/// Compiles `source` (the template `template` or its condensed copy) with handlebars.
///
/// handlebars' parser recurses once per nested `(subexpression)`, `[array]`, `{object}`
/// and block, and since pest 2.8 nothing guards its stack. How deep a template can
/// nest is bounded by how many of those it holds, so a template that could need more
/// stack than [`INLINE_STACK`] is compiled on a thread of its own with the stack it
/// could need; and one whose subexpressions nest past [`MAX_SUBEXPRESSION_DEPTH`] is
/// dropped on that thread, so that nothing deep reaches the checker's walk.
fn compile_bounded(template: &str, source: &str) -> Outcome {
    let compile = || match crate::syntax::without_limits(|| Template::compile(source)) {
        Ok(compiled) if template_depth(&compiled.elements) > MAX_SUBEXPRESSION_DEPTH => {
            let at = deepest_parenthesis(template);
            Outcome::Refused(
                at,
                at + 1,
                format!("its subexpressions nest more than {MAX_SUBEXPRESSION_DEPTH} deep"),
            )
        }
        Ok(compiled) => Outcome::Template(compiled),
        Err(error) => Outcome::Invalid(error),
    };
    let needed = stack_needed(source);
    if needed <= INLINE_STACK {
        return compile();
    }
    if needed > MAX_STACK {
        let at = template.find('(').unwrap_or(0);
        return Outcome::Refused(
            at,
            at + 1,
            "it holds too many brackets to be parsed safely".to_string(),
        );
    }
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .stack_size(needed)
            .spawn_scoped(scope, compile)
            .ok()
            .and_then(|thread| thread.join().ok())
    })
    .unwrap_or_else(|| {
        Outcome::Refused(
            0,
            1,
            "it nests too deeply to be parsed with the memory at hand".to_string(),
        )
    })
}

/// The most stack handlebars' parser could need for `source`: a base, plus for every
/// character that can open a level what the deepest level was measured to take, with
/// room to spare (a subexpression took 2 to 4 KB in a release build; an array, an object
/// or a block well under 1 KB).
fn stack_needed(source: &str) -> usize {
    let (mut parentheses, mut others, mut previous) = (0usize, 0usize, 0u8);
    for byte in source.bytes() {
        match byte {
            b'(' => parentheses += 1,
            b'[' => others += 1,
            // A lone `{` may open an object; a run of them a tag, and so a block
            // (`{{#`, `{{ #`, `{{~ ^`...): each counts once.
            b'{' if previous != b'{' => others += 1,
            _ => {}
        }
        previous = byte;
    }
    (128 * 1024 * STACK_SCALE)
        .saturating_add(parentheses.saturating_mul(8 * 1024 * STACK_SCALE))
        .saturating_add(others.saturating_mul(2 * 1024 * STACK_SCALE))
}

/// How deep subexpressions nest in `elements`, blocks' bodies included.
fn template_depth(elements: &[TemplateElement]) -> usize {
    elements.iter().map(element_depth).max().unwrap_or(0)
}

fn element_depth(element: &TemplateElement) -> usize {
    match element {
        TemplateElement::Expression(helper)
        | TemplateElement::HtmlExpression(helper)
        | TemplateElement::HelperBlock(helper) => {
            let bodies = [&helper.template, &helper.inverse]
                .into_iter()
                .flatten()
                .map(|body| template_depth(&body.elements));
            parameters_depth(&helper.name, &helper.params, helper.hash.values())
                .max(bodies.max().unwrap_or(0))
        }
        TemplateElement::DecoratorExpression(decorator)
        | TemplateElement::DecoratorBlock(decorator)
        | TemplateElement::PartialExpression(decorator)
        | TemplateElement::PartialBlock(decorator) => {
            let body = decorator
                .template
                .as_ref()
                .map_or(0, |body| template_depth(&body.elements));
            parameters_depth(&decorator.name, &decorator.params, decorator.hash.values()).max(body)
        }
        // Text, comments, and anything a later handlebars adds without nesting.
        _ => 0,
    }
}

fn parameters_depth<'p>(
    name: &'p Parameter,
    params: &'p [Parameter],
    hash: impl Iterator<Item = &'p Parameter>,
) -> usize {
    std::iter::once(name)
        .chain(params)
        .chain(hash)
        .map(|param| match param {
            Parameter::Subexpression(sub) => 1 + element_depth(&sub.element),
            _ => 0,
        })
        .max()
        .unwrap_or(0)
}

/// Where the parentheses of `template` first nest past [`MAX_SUBEXPRESSION_DEPTH`],
/// counted plainly (quotes and all), to point a refusal at; its first `(` otherwise.
fn deepest_parenthesis(template: &str) -> usize {
    let mut depth = 0usize;
    for (at, byte) in template.bytes().enumerate() {
        match byte {
            b'(' => {
                depth += 1;
                if depth > MAX_SUBEXPRESSION_DEPTH {
                    return at;
                }
            }
            b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    template.find('(').unwrap_or(0)
}

/// Checks the template `parsed` (from `text`) of agent `agent`, adding diagnostics to
/// `out`.
pub fn check_parsed(
    agent: &str,
    text: &Text,
    parsed: &Parsed,
    params: &[(String, Type)],
    fields: &FieldsOf<'_>,
    out: &mut Vec<Diagnostic>,
) -> TemplateUse {
    let mut checker = Checker {
        agent,
        text,
        params,
        fields,
        out,
        read: &parsed.read,
        result: TemplateUse {
            cost: Cost::default(),
            parsed: true,
            result_fields: ResultFields::default(),
        },
        bodies: Vec::new(),
        frames: vec![Frame {
            this: None,
            this_root: None,
            this_part: false,
            block_params: Vec::new(),
            iterating: None,
            key_tokens: 0,
        }],
        cursor: 0,
        block_depth: 0,
        too_deep_reported: false,
    };
    match &parsed.outcome {
        Outcome::Template(template) => checker.template(template),
        Outcome::Refused(start, end, reason) => {
            checker.result.parsed = false;
            checker.result.result_fields.read_all();
            checker.out.push(diagnostics::invalid_template(
                text.source_span(*start, *end),
                reason,
            ));
        }
        Outcome::Invalid(error) => {
            let offset = error
                .pos()
                .and_then(|(line, col)| parsed.read.offset_of(line, col))
                .unwrap_or(0);
            let reason = match error.reason() {
                TemplateErrorReason::MismatchingClosedHelper(open, close) => {
                    format!("`{{{{#{open}}}}}` is closed by `{{{{/{close}}}}}`")
                }
                TemplateErrorReason::InvalidSyntax(_) => {
                    "it does not parse here; is a `{{#block}}` left open or a `{{` unclosed?"
                        .to_string()
                }
                // The parameter is quoted whole; a hostile one can be megabytes long.
                TemplateErrorReason::InvalidParam(param) => {
                    let shown: String = param.chars().take(40).collect();
                    let cut = if shown.len() < param.len() { "…" } else { "" };
                    format!("`{shown}{cut}` is not a valid parameter")
                }
                other => other.to_string().to_lowercase(),
            };
            checker.result.parsed = false;
            checker.result.result_fields.read_all();
            checker.out.push(diagnostics::invalid_template(
                text.source_span(offset, offset + 1),
                &reason,
            ));
        }
    }
    checker.result
}

struct Frame {
    /// The type of `this`; `None` at the top, where `this` is the agent's parameters.
    this: Option<Type>,
    /// What `this` renders from.
    this_root: Option<Root>,
    /// Whether `this` is only a part of that (`{{#with (lookup xs 0)}}`, `{{#with r.items}}`).
    this_part: bool,
    /// Block parameters: name, type, and what they render.
    block_params: Vec<(String, Type, Option<Target>)>,
    /// Inside `#each`, where `@index` and friends exist: over a list, or over the
    /// fields of an object (where `@key` exists too).
    iterating: Option<Iterating>,
    /// Over an object's fields: the tokens of its longest field name.
    key_tokens: u64,
}

/// What an `#each` iterates.
#[derive(Clone, Copy, PartialEq)]
enum Iterating {
    List,
    Object,
}

struct Checker<'a> {
    agent: &'a str,
    text: &'a Text,
    params: &'a [(String, Type)],
    fields: &'a FieldsOf<'a>,
    out: &'a mut Vec<Diagnostic>,
    /// What handlebars read, and how its positions map back to the template.
    read: &'a Condensed,
    result: TemplateUse,
    /// The costs of the `#each` bodies being walked, innermost last (the template's own
    /// is `result.cost`).
    bodies: Vec<Cost>,
    frames: Vec<Frame>,
    /// Where to start looking for the next path's text in the template.
    cursor: usize,
    block_depth: usize,
    too_deep_reported: bool,
}

/// What a path in a template reaches, for its cost.
#[derive(Clone, Debug)]
enum Target {
    /// A parameter or an element, through its first field when the path names one.
    Value(Root, Option<String>),
    /// A part of a parameter or an element that a helper picks (`lookup xs 0`): at
    /// most the whole, and a loop over it has a length of its own.
    Part(Root),
    /// `@index`, `@key` and friends: this many tokens.
    Scalar(u64),
}

impl Checker<'_> {
    /// The cost being recorded: the innermost `#each` body's, or the template's.
    fn cost(&mut self) -> &mut Cost {
        match self.bodies.last_mut() {
            Some(body) => body,
            None => &mut self.result.cost,
        }
    }

    /// How many `#each` blocks enclose the walk.
    fn each_depth(&self) -> usize {
        self.bodies.len()
    }

    fn template(&mut self, template: &Template) {
        for (i, element) in template.elements.iter().enumerate() {
            if let Some(mapping) = template.mapping.get(i) {
                if let Some(offset) = self.read.offset_of(mapping.0, mapping.1) {
                    self.cursor = offset;
                }
            }
            self.element(element);
        }
    }

    fn element(&mut self, element: &TemplateElement) {
        match element {
            TemplateElement::RawString(raw) => {
                // Condensing shortened the prose handlebars read: count the original's.
                let bytes = raw.len() + self.read.removed_at(self.cursor);
                let cost = self.cost();
                cost.literal_bytes = cost.literal_bytes.saturating_add(bytes as u64);
            }
            TemplateElement::Comment(_) => {}
            TemplateElement::Expression(helper) | TemplateElement::HtmlExpression(helper) => {
                self.expression(helper);
            }
            TemplateElement::HelperBlock(helper) => self.block(helper),
            TemplateElement::DecoratorExpression(_)
            | TemplateElement::DecoratorBlock(_)
            | TemplateElement::PartialExpression(_)
            | TemplateElement::PartialBlock(_)
            | _ => {
                let span = self.text.source_span(self.cursor, self.cursor + 2);
                self.out.push(diagnostics::invalid_template(
                    span,
                    "partials and decorators are not available in prompts",
                ));
            }
        }
    }

    /// Counts what a rendered path renders.
    fn record(&mut self, target: Option<Target>) {
        match target {
            Some(Target::Value(root, field)) => self.cost().render(root, field.as_deref()),
            Some(Target::Part(root)) => self.cost().render(root, None),
            Some(Target::Scalar(tokens)) => {
                let cost = self.cost();
                cost.scalar_tokens = cost.scalar_tokens.saturating_add(tokens);
            }
            None => {}
        }
    }

    /// `{{x}}`, `{{x.y}}` or `{{helper a b}}`. Returns, for `lookup`, the part of its
    /// subject it gives.
    fn expression(&mut self, helper: &HelperTemplate) -> Option<Target> {
        let is_call = !helper.params.is_empty() || !helper.hash.is_empty();
        match &helper.name {
            Parameter::Name(name) if is_call => {
                self.helper_name(name);
                let subject = self.params(name, helper);
                // What the helper gives is rendered too: a number or a bool, or for
                // `lookup` a part of its subject, which is counted whole already.
                if name != "lookup" {
                    self.record(Some(Target::Scalar(budget::SCALAR_TOKENS)));
                    return None;
                }
                return match subject {
                    Some(Target::Value(root, _) | Target::Part(root)) => Some(Target::Part(root)),
                    _ => None,
                };
            }
            // A value rendered whole shows every field it has.
            Parameter::Name(name) => {
                let (ty, target) = self.path_text(name);
                self.read_whole_if_result(ty.as_ref(), target.as_ref());
                self.record(target);
            }
            Parameter::Path(path) => {
                let (ty, target) = self.path(path);
                self.read_whole_if_result(ty.as_ref(), target.as_ref());
                self.record(target);
            }
            Parameter::Subexpression(sub) => self.element(&sub.element),
            _ => {}
        }
        None
    }

    /// The arguments of a helper call: a helper sees every field of a `result` it is
    /// given, except `len` of a list, which counts the elements only. Each is counted
    /// as rendered whole, which bounds whatever the helper renders of it. Returns what
    /// the first reaches, when it is a path.
    fn params(&mut self, helper_name: &str, helper: &HelperTemplate) -> Option<Target> {
        let mut first = None;
        for (i, param) in helper.params.iter().enumerate() {
            let (ty, target) = self.param(param);
            if i == 0 && matches!(param, Parameter::Name(_) | Parameter::Path(_)) {
                first = target.clone();
            }
            if helper_name == "lookup" && i == 0 {
                self.lookup_subject(param, ty.as_ref());
            }
            if !(helper_name == "len" && ty.as_ref().is_some_and(Type::is_list)) {
                self.read_whole_if_result(ty.as_ref(), target.as_ref());
            }
            self.record(target);
        }
        let mut hash: Vec<_> = helper.hash.iter().collect();
        hash.sort_by(|a, b| a.0.cmp(b.0));
        for (_, param) in hash {
            let (ty, target) = self.param(param);
            self.read_whole_if_result(ty.as_ref(), target.as_ref());
            self.record(target);
        }
        first
    }

    /// `lookup` reads a list's element or an object's field: on a scalar, a strict render
    /// fails (``{{lookup d 0}}`` with `d: text`).
    fn lookup_subject(&mut self, param: &Parameter, ty: Option<&Type>) {
        let Some(ty) = ty else { return };
        if ty.is_list() || matches!(ty, Type::Record(_) | Type::Result | Type::Unknown) {
            return;
        }
        let raw = match param {
            Parameter::Name(name) => name.clone(),
            Parameter::Path(path) => path_raw(path).to_string(),
            _ => return,
        };
        let span = self.find(&raw);
        self.out.push(diagnostics::template_out_of_scope(
            span,
            self.agent,
            &raw,
            &format!("which is `{ty}`: `lookup` reads an element of a list or a field of a record"),
            format!("render it whole with `{{{{{raw}}}}}`"),
        ));
    }

    /// Counts every field of `result` as read when a value of type `ty` is used whole,
    /// the full `output` among them when it holds a `result` (a record a model answered
    /// has no `output`).
    fn read_whole_if_result(&mut self, ty: Option<&Type>, target: Option<&Target>) {
        if ty.is_some_and(Type::may_hold_result) {
            self.result.result_fields.read_all();
            let holds_result = ty.is_some_and(|ty| self.holds_result(ty, 0));
            if let (true, Some(Target::Value(root, _) | Target::Part(root))) =
                (holds_result, target)
            {
                self.cost().render(root.clone(), Some("output"));
            }
        }
    }

    /// Whether a value of type `ty` can hold a `result`, through lists and record fields.
    fn holds_result(&self, ty: &Type, depth: usize) -> bool {
        match ty {
            Type::Result | Type::Unknown => true,
            Type::List(element) => self.holds_result(element, depth),
            // Records nest only as deep as their declarations; a cycle is cut here.
            Type::Record(_) if depth > 16 => true,
            Type::Record(name) => (self.fields)(name).is_none_or(|fields| {
                fields
                    .iter()
                    .any(|(_, field)| self.holds_result(field, depth + 1))
            }),
            _ => false,
        }
    }

    fn param(&mut self, param: &Parameter) -> (Option<Type>, Option<Target>) {
        match param {
            Parameter::Name(name) => self.path_text(name),
            Parameter::Path(path) => self.path(path),
            Parameter::Subexpression(sub) => (None, Some(self.subexpression(&sub.element))),
            _ => (None, None),
        }
    }

    /// Checks a `(helper ...)` and returns what it gives: for `lookup`, a part of its
    /// subject; otherwise a number or a bool.
    fn subexpression(&mut self, element: &TemplateElement) -> Target {
        let part = match element {
            TemplateElement::Expression(helper) | TemplateElement::HtmlExpression(helper) => {
                self.expression(helper)
            }
            other => {
                self.element(other);
                None
            }
        };
        part.unwrap_or(Target::Scalar(budget::SCALAR_TOKENS))
    }

    fn helper_name(&mut self, name: &str) {
        if !HELPERS.contains(&name) {
            let span = self.find(name);
            self.out.push(diagnostics::unknown_helper(span, name));
        }
    }

    /// `{{#each xs}}...{{else}}...{{/each}}`, `{{#if x}}`, `{{#with x}}`.
    fn block(&mut self, helper: &HelperTemplate) {
        if self.block_depth >= MAX_BLOCK_DEPTH {
            if !self.too_deep_reported {
                self.too_deep_reported = true;
                let span = self.text.source_span(self.cursor, self.cursor + 2);
                self.out.push(diagnostics::invalid_template(
                    span,
                    &format!("its blocks nest more than {MAX_BLOCK_DEPTH} deep"),
                ));
            }
            return;
        }
        self.block_depth += 1;
        self.block_inner(helper);
        self.block_depth -= 1;
    }

    fn block_inner(&mut self, helper: &HelperTemplate) {
        let name = match &helper.name {
            Parameter::Name(name) => name.as_str(),
            Parameter::Path(path) => path_raw(path),
            _ => "",
        };
        self.helper_name(name);
        let (subject, subject_target) = match helper.params.first() {
            Some(p) => self.param(p),
            None => (None, None),
        };
        // `#if`, `#unless` and `#with` read no field themselves (a run keeps at least one
        // field in every `result`, so it stays truthy), nor does `#each` over a list;
        // `#each` over a `result` iterates all its fields.
        let reads_subject_whole = match name {
            "if" | "unless" | "with" => false,
            "each" => !subject.as_ref().is_some_and(Type::is_list),
            _ => true,
        };
        if reads_subject_whole {
            self.read_whole_if_result(subject.as_ref(), subject_target.as_ref());
        }
        // What the subject is, for the cost of the body; an unknown helper's subject
        // is counted as rendered.
        let subject_root = match &subject_target {
            Some(Target::Value(root, field)) => Some((root.clone(), field.is_some())),
            Some(Target::Part(root)) => Some((root.clone(), true)),
            _ => None,
        };
        match name {
            "each" | "with" | "if" | "unless" => match &subject_target {
                // A block over a result's full output hands the body the output.
                Some(Target::Value(root, Some(field))) if field == "output" => {
                    self.cost().render(root.clone(), Some("output"))
                }
                // Mentioned, not rendered: a reference keeps the parameter used.
                Some(Target::Value(root, _) | Target::Part(root)) => {
                    self.cost().renders.entry(root.clone()).or_default();
                }
                _ => {}
            },
            _ => self.record(subject_target),
        }
        for param in helper.params.iter().skip(1) {
            let (ty, target) = self.param(param);
            self.read_whole_if_result(ty.as_ref(), target.as_ref());
            self.record(target);
        }
        let mut frame = Frame {
            this: None,
            this_root: None,
            this_part: false,
            block_params: Vec::new(),
            iterating: None,
            key_tokens: 0,
        };
        let mut each = None;
        let pushes = match name {
            "each" => {
                let element = match &subject {
                    Some(Type::List(element)) => Some((**element).clone()),
                    // Over a record's fields, `this` is each field's value in turn: of
                    // their type when they share one.
                    Some(Type::Record(record)) => {
                        let types: Vec<Type> = (self.fields)(record)
                            .map(|fields| fields.into_iter().map(|(_, ty)| ty).collect())
                            .unwrap_or_default();
                        let scalar = |ty: &Type| {
                            matches!(
                                ty,
                                Type::Text
                                    | Type::Number
                                    | Type::Bool
                                    | Type::Path
                                    | Type::Duration
                            )
                        };
                        match types.split_first() {
                            Some((first, rest)) if rest.iter().all(|ty| ty == first) => {
                                Some(first.clone())
                            }
                            // Scalars of several types render as text, and hold no result.
                            _ if types.iter().all(scalar) => Some(Type::Text),
                            _ => Some(Type::Unknown),
                        }
                    }
                    Some(Type::Result) => Some(Type::Unknown),
                    _ => Some(Type::Unknown),
                };
                if let (Some(ty), Some(Parameter::Path(path))) = (&subject, helper.params.first()) {
                    if !ty.is_list()
                        && !matches!(ty, Type::Record(_) | Type::Result | Type::Unknown)
                    {
                        let raw = path_raw(path).to_string();
                        let span = self.find(&raw);
                        self.out.push(diagnostics::template_out_of_scope(
                            span,
                            self.agent,
                            &raw,
                            &format!("which is `{ty}`, not a list"),
                            "`#each` iterates a list parameter".to_string(),
                        ));
                    }
                }
                let object_fields = match &subject {
                    Some(Type::Result) => Some(RESULT_FIELDS.len() as u64),
                    Some(Type::Record(record)) => {
                        Some((self.fields)(record).map_or(budget::ASSUMED_LIST, |f| f.len() as u64))
                    }
                    _ => None,
                };
                let written = helper
                    .params
                    .first()
                    .and_then(param_name)
                    .unwrap_or_default();
                let level = self.each_depth() + 1;
                each = Some(Loop {
                    over: subject_root.as_ref().map(|(root, _)| root.clone()),
                    through_field: subject_root.as_ref().is_some_and(|(_, field)| *field),
                    object_fields,
                    written,
                    body: Cost::default(),
                });
                frame.this = element.clone();
                frame.this_root = Some(Root::Element(level));
                frame.key_tokens = self.longest_key_of(subject.as_ref());
                frame.iterating = Some(match &subject {
                    Some(ty) if ty.is_list() => Iterating::List,
                    _ => Iterating::Object,
                });
                if let Some(block_param) = &helper.block_param {
                    let element = element.unwrap_or(Type::Unknown);
                    let target = Some(Target::Value(Root::Element(level), None));
                    match block_param {
                        BlockParam::Single(p) => frame
                            .block_params
                            .extend(param_name(p).map(|n| (n, element, target))),
                        BlockParam::Pair((a, b)) => {
                            frame
                                .block_params
                                .extend(param_name(a).map(|n| (n, element, target)));
                            // The second is the index over a list, the key over fields.
                            let (ty, tokens) = if object_fields.is_some() {
                                (Type::Text, self.longest_key_of(subject.as_ref()))
                            } else {
                                (Type::Number, budget::SCALAR_TOKENS)
                            };
                            let index = Some(Target::Scalar(tokens));
                            frame
                                .block_params
                                .extend(param_name(b).map(|n| (n, ty, index)));
                        }
                        _ => {}
                    }
                }
                true
            }
            "with" => {
                frame.this = Some(subject.unwrap_or(Type::Unknown));
                frame.this_root = subject_root.as_ref().map(|(root, _)| root.clone());
                frame.this_part = subject_root.as_ref().is_some_and(|(_, part)| *part);
                if let Some(BlockParam::Single(p)) = &helper.block_param {
                    let ty = frame.this.clone().unwrap_or(Type::Unknown);
                    let target = subject_root.map(|(root, part)| {
                        if part {
                            Target::Part(root)
                        } else {
                            Target::Value(root, None)
                        }
                    });
                    frame
                        .block_params
                        .extend(param_name(p).map(|n| (n, ty, target)));
                }
                true
            }
            _ => false,
        };
        if pushes {
            self.frames.push(frame);
        }
        if each.is_some() {
            self.bodies.push(Cost::default());
        }
        if let Some(template) = &helper.template {
            self.template(template);
        }
        if let Some(mut each) = each {
            each.body = self.bodies.pop().unwrap_or_default();
            self.cost().loops.push(each);
        }
        if pushes {
            self.frames.pop();
        }
        if let Some(inverse) = &helper.inverse {
            self.template(inverse);
        }
    }

    fn path(&mut self, path: &HbPath) -> (Option<Type>, Option<Target>) {
        match path {
            HbPath::Local((level, name, raw)) => {
                let iterating = self
                    .frames
                    .len()
                    .checked_sub(1 + level)
                    .and_then(|i| self.frames.get(i))
                    .and_then(|frame| frame.iterating);
                let known = matches!(name.as_str(), "index" | "first" | "last" | "key");
                if name == "key" && iterating == Some(Iterating::List) {
                    // handlebars sets `@key` only over an object's fields; over a list
                    // a strict render fails on it.
                    let raw = raw.clone();
                    let span = self.find(&raw);
                    self.out.push(diagnostics::template_out_of_scope(
                        span,
                        self.agent,
                        &raw,
                        "which exists only when `#each` iterates the fields of a record, not a list",
                        "over a list, number the elements with `@index`".to_string(),
                    ));
                    return (None, None);
                }
                if !(iterating.is_some() && known) {
                    let raw = raw.clone();
                    let span = self.find(&raw);
                    let reason = if known {
                        "which exists only inside `#each`"
                    } else {
                        "which is not a template variable"
                    };
                    self.out.push(diagnostics::template_out_of_scope(
                        span,
                        self.agent,
                        &raw,
                        reason,
                        "inside `{{#each xs}}` the variables are `@index`, `@first`, `@last` and `@key`".to_string(),
                    ));
                    return (None, None);
                }
                let (ty, tokens) = match name.as_str() {
                    "index" => (Type::Number, budget::SCALAR_TOKENS),
                    "key" => (Type::Text, self.longest_key(*level)),
                    _ => (Type::Bool, budget::SCALAR_TOKENS),
                };
                (Some(ty), Some(Target::Scalar(tokens)))
            }
            HbPath::Relative((_, raw)) => self.path_text(raw),
        }
    }

    /// Tokens of the longest `@key` the `#each` `level` frames up can give: a field
    /// name of the record or `result` it iterates.
    fn longest_key(&self, level: usize) -> u64 {
        self.frames
            .len()
            .checked_sub(1 + level)
            .and_then(|i| self.frames.get(i))
            .map_or(budget::SCALAR_TOKENS, |frame| frame.key_tokens)
    }

    /// Tokens of the longest field name of a record or `result` of type `ty`.
    fn longest_key_of(&self, ty: Option<&Type>) -> u64 {
        let longest = match ty {
            Some(Type::Record(record)) => (self.fields)(record)
                .map(|fields| fields.iter().map(|(n, _)| n.len()).max().unwrap_or(0)),
            Some(Type::Result) => RESULT_FIELDS.iter().map(|f| f.len()).max(),
            _ => None,
        };
        longest.map_or(budget::SCALAR_TOKENS, budget::tokens_of_bytes)
    }

    /// Resolves a path as written: `x`, `x.y`, `this`, `this.y`, `../x`, `@root.x`.
    fn path_text(&mut self, raw: &str) -> (Option<Type>, Option<Target>) {
        let span = self.find(raw);
        let mut rest = raw.trim();
        let mut frame = self.frames.len().saturating_sub(1);
        let mut from_root = false;
        if let Some(after) = rest.strip_prefix("@root") {
            frame = 0;
            rest = after.trim_start_matches(['.', '/']);
            from_root = true;
        }
        let mut ups = 0;
        while let Some(after) = rest.strip_prefix("../") {
            ups += 1;
            rest = after;
        }
        // handlebars falls back to the innermost block for a `../` past the top, so a
        // path that reads as a parameter would render the element instead.
        match frame.checked_sub(ups) {
            Some(up) => frame = up,
            None => {
                self.out.push(diagnostics::template_out_of_scope(
                    span,
                    self.agent,
                    raw,
                    "which climbs past the top of the template",
                    "each `../` leaves one `{{#each}}` or `{{#with}}`; name a parameter from anywhere with `@root.x`".to_string(),
                ));
                return (None, None);
            }
        }
        if rest == "this" || rest == "." {
            rest = "";
        } else if let Some(after) = rest
            .strip_prefix("this.")
            .or_else(|| rest.strip_prefix("this/"))
            .or_else(|| rest.strip_prefix("./"))
        {
            rest = after;
        }
        let segments: Vec<&str> = rest
            .split(['.', '/'])
            .filter(|s| !s.is_empty())
            .map(|s| s.trim_start_matches('[').trim_end_matches(']'))
            .collect();
        let target = |root: Option<Root>, field: Option<&&str>| {
            root.map(|root| Target::Value(root, field.map(|f| (*f).to_string())))
        };

        // handlebars looks a path's first name up in the parameters of every block
        // around it, innermost first, whatever `../` or `this.` come before it.
        if !from_root {
            if let Some(first) = segments.first() {
                let block_param = (self.frames.iter().rev())
                    .find_map(|f| f.block_params.iter().find(|(n, _, _)| n == first))
                    .map(|(_, ty, target)| (ty.clone(), target.clone()));
                if let Some((ty, found)) = block_param {
                    let ty = self.fields_path(raw, span, ty, segments.get(1..).unwrap_or(&[]));
                    let found = match found {
                        Some(Target::Value(root, None)) => target(Some(root), segments.get(1)),
                        other => other,
                    };
                    return (ty, found);
                }
            }
        }
        let (this, this_root, this_part) = match self.frames.get(frame) {
            Some(f) => (f.this.clone(), f.this_root.clone(), f.this_part),
            None => (None, None, false),
        };
        match this {
            None => {
                let Some(first) = segments.first() else {
                    self.out.push(diagnostics::template_out_of_scope(
                        span,
                        self.agent,
                        raw,
                        "which is the whole parameter set",
                        "name one parameter, such as `{{task}}`".to_string(),
                    ));
                    return (None, None);
                };
                let Some((_, ty)) = self.params.iter().find(|(n, _)| n == first) else {
                    let names: Vec<&str> = self.params.iter().map(|(n, _)| n.as_str()).collect();
                    let help =
                        diagnostics::suggest(first, names.iter().copied()).unwrap_or_else(|| {
                            if names.is_empty() {
                                format!("add a parameter `{first}` to the agent")
                            } else {
                                format!(
                                    "only the agent's parameters are in scope: {}",
                                    diagnostics::backticked(&names)
                                )
                            }
                        });
                    self.out.push(diagnostics::template_out_of_scope(
                        span,
                        self.agent,
                        raw,
                        "which is not a parameter of the agent",
                        help,
                    ));
                    return (None, None);
                };
                let ty = ty.clone();
                let found = target(Some(Root::Param((*first).to_string())), segments.get(1));
                let ty = self.fields_path(raw, span, ty, segments.get(1..).unwrap_or(&[]));
                (ty, found)
            }
            Some(this) => {
                let ty = self.fields_path(raw, span, this, &segments);
                match this_root {
                    Some(root) if this_part => (ty, Some(Target::Part(root))),
                    root => (ty, target(root, segments.first())),
                }
            }
        }
    }

    /// Follows `segments` as fields of `ty`.
    fn fields_path(
        &mut self,
        raw: &str,
        span: crate::source::Span,
        mut ty: Type,
        segments: &[&str],
    ) -> Option<Type> {
        for segment in segments {
            let next = match &ty {
                Type::Unknown => return Some(Type::Unknown),
                Type::Result => {
                    self.result.result_fields.read(segment);
                    Type::result_field(segment)
                }
                Type::Record(name) => (self.fields)(name).and_then(|fields| {
                    fields
                        .into_iter()
                        .find(|(n, _)| n == segment)
                        .map(|(_, t)| t)
                }),
                _ => None,
            };
            let Some(next) = next else {
                let available: Vec<String> = match &ty {
                    Type::Result => RESULT_FIELDS.iter().map(|s| s.to_string()).collect(),
                    Type::Record(name) => (self.fields)(name)
                        .map(|f| f.into_iter().map(|(n, _)| n).collect())
                        .unwrap_or_default(),
                    _ => Vec::new(),
                };
                let help = if available.is_empty() {
                    format!("a `{ty}` has no fields")
                } else {
                    diagnostics::suggest(segment, available.iter().map(String::as_str))
                        .unwrap_or_else(|| {
                            format!(
                                "the fields of `{ty}` are {}",
                                diagnostics::backticked(&available)
                            )
                        })
                };
                self.out.push(diagnostics::template_out_of_scope(
                    span,
                    self.agent,
                    raw,
                    &format!("but `{ty}` has no field `{segment}`"),
                    help,
                ));
                return None;
            };
            ty = next;
        }
        Some(ty)
    }

    /// The source span of the next occurrence of `needle` at or after the cursor.
    fn find(&mut self, needle: &str) -> crate::source::Span {
        let value = &self.text.value;
        let start = self.cursor.min(value.len());
        match value.get(start..).and_then(|rest| rest.find(needle)) {
            Some(at) if !needle.is_empty() => {
                let from = start + at;
                self.cursor = from + needle.len();
                self.text.source_span(from, from + needle.len())
            }
            _ => self.text.source_span(start, start + 1),
        }
    }
}

fn path_raw(path: &HbPath) -> &str {
    match path {
        HbPath::Relative((_, raw)) | HbPath::Local((_, _, raw)) => raw,
    }
}

fn param_name(param: &Parameter) -> Option<String> {
    match param {
        Parameter::Name(name) => Some(name.clone()),
        Parameter::Path(path) => Some(path_raw(path).to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::source::Span;

    /// Pieces templates are made of: prose, whitespace of every kind, tags of every
    /// kind, and the cases condensing must leave alone.
    const PIECES: &[&str] = &[
        "Map the codebase",
        " for ",
        "x",
        "\n",
        "    ",
        "\t",
        "\u{a0}",
        "\u{2003}word\u{2003}",
        "{ json }",
        "}",
        "{",
        "\\",
        "\\{{task}}",
        "{{task}}",
        "{{~task~}}",
        "{{ task }}",
        "{{nope}}",
        "{{children}}",
        "{{#each children}}",
        "{{~#each children~}}",
        "{{/each}}",
        "{{this.summary}}",
        "{{this.nope}}",
        "{{@index}}",
        "{{#if task}}",
        "{{else}}",
        "{{/if}}",
        "{{{task}}}",
        "{{! a comment }}",
        "{{!-- a }} comment --}}",
        "{{lookup children \"}}\"}}",
        "{{len children}}",
        "{{frobnicate task}}",
        "{{#with task}}{{this}}{{/with}}",
        "{{",
        "}}",
        "{{[",
        "]}}",
        "[",
        "]",
        "{{[task]}}",
        "{{[a}} some words {{]}}",
        "{{> partial}}",
        "{{#> layout}}",
        "{{/layout}}",
    ];

    type Checked = (String, Cost, bool, ResultFields);

    fn run(template: &str, condensed: bool) -> Checked {
        let text = Text {
            value: template.to_string(),
            span: Span::new(100, 100 + template.len()),
            map: vec![(0, 100)],
        };
        let params = [
            ("task".to_string(), Type::Text),
            ("children".to_string(), Type::List(Box::new(Type::Result))),
        ];
        let mut out = Vec::new();
        let parsed = if condensed {
            parse(&text)
        } else {
            parse_as(&text, Condensed::identity(template))
        };
        let used = check_parsed("a", &text, &parsed, &params, &|_| None, &mut out);
        (
            format!("{out:?}"),
            used.cost,
            used.parsed,
            used.result_fields,
        )
    }

    proptest! {
        /// Condensing is invisible: the same diagnostics at the same spans, the same
        /// literal bytes, parameter uses and result fields read as parsing the template
        /// whole (a run renders the whole template).
        #[test]
        fn condensed_and_whole_templates_check_alike(
            pieces in proptest::collection::vec(0..PIECES.len(), 0..24)
        ) {
            let template: String = pieces.iter().filter_map(|&i| PIECES.get(i).copied()).collect();
            prop_assert_eq!(run(&template, true), run(&template, false), "{:?}", template);
        }
    }

    #[test]
    fn bracketed_keys_holding_braces_check_alike() {
        for template in [
            "Use {{[a}} some words {{]}} then",
            "Use {{[a}} some ] prose {{]}} then",
            "Use {{#> layout}} long prose here {{/layout}} then",
        ] {
            assert_eq!(run(template, true), run(template, false), "{template}");
        }
    }

    #[test]
    fn blocks_nested_past_the_limit_check_alike() {
        let depth = MAX_BLOCK_DEPTH + 6;
        let template = format!(
            "{}deep prose here{}",
            "{{#if task}} some words ".repeat(depth),
            " more words {{/if}}".repeat(depth)
        );
        assert_eq!(run(&template, true), run(&template, false));
    }

    #[test]
    fn a_realistic_prompt_is_condensed_and_checks_alike() {
        let template = "Summarise the work done from these reports:\n{{#each children}}\n- [{{this.status}}] {{this.summary}} for {{../task}}\n{{/each}}\nand {{nope}}\n";
        assert!(Condensed::new(template).is_condensed());
        let whole = run(template, false);
        assert_eq!(run(template, true), whole);
        assert!(whole.0.contains("nope"), "{}", whole.0);
    }

    /// handlebars' parser and this checker recurse once per `(`: deep nesting is
    /// refused before either runs, even on a thread with a small stack.
    #[test]
    fn deeply_nested_subexpressions_are_refused_without_overflowing() {
        let depth = 1_000;
        let template = format!(
            "Do {{{{task {}y{}}}}}",
            "(len ".repeat(depth),
            ")".repeat(depth)
        );
        let checked = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || run(&template, true))
            .and_then(|thread| thread.join().map_err(|_| std::io::Error::other("panicked")));
        let (diagnostics, _, parsed, _) = checked.unwrap();
        assert!(!parsed);
        assert!(
            diagnostics.contains(&format!(
                "subexpressions nest more than {MAX_SUBEXPRESSION_DEPTH} deep"
            )),
            "{diagnostics}"
        );
    }

    /// Regression (review): arrays, objects and subexpressions after a `[...]` key that
    /// holds `}}` nest in handlebars' parser too; none of them may overflow the stack.
    #[test]
    fn deep_literals_and_hidden_subexpressions_do_not_overflow() {
        let depth = 100_000;
        let templates = [
            // Blocks opened with whitespace before `#`: as many as a prompt may hold.
            "{{ #if task}}".repeat(MAX_EXPRESSIONS - 1),
            format!("{{{{task {}{}}}}}", "[".repeat(depth), "]".repeat(depth)),
            format!(
                "{{{{task {}1{}}}}}",
                "{\"a\":".repeat(depth),
                "}".repeat(depth)
            ),
            format!(
                "{{{{task [}}}}] {}task{}}}}}",
                "(len ".repeat(depth),
                ")".repeat(depth)
            ),
            format!(
                "{{{{task [a'b] '] }}}}' {}task{}}}}}",
                "(len ".repeat(depth),
                ")".repeat(depth)
            ),
        ];
        for template in templates {
            let shown: String = template.chars().take(30).collect();
            let checked = std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || run(&template, true))
                .and_then(|thread| thread.join().map_err(|_| std::io::Error::other("panicked")));
            let (diagnostics, _, parsed, _) = checked.unwrap();
            assert!(!parsed, "{shown}: {diagnostics}");
            assert!(diagnostics.contains("E012"), "{shown}: {diagnostics}");
        }
    }

    #[test]
    fn parentheses_in_strings_and_comments_do_not_nest() {
        let parens = "(".repeat(MAX_SUBEXPRESSION_DEPTH + 1);
        let template = format!("{{{{lookup children \"{parens}\"}}}} {{{{! {parens} }}}} {parens}");
        let (diagnostics, _, parsed, _) = run(&template, false);
        assert!(parsed, "{diagnostics}");
        let nested = format!(
            "{{{{len {}children{}}}}}",
            "(len ".repeat(MAX_SUBEXPRESSION_DEPTH),
            ")".repeat(MAX_SUBEXPRESSION_DEPTH)
        );
        let (diagnostics, _, parsed, _) = run(&nested, false);
        assert!(parsed, "{diagnostics}");
    }

    /// The fields of `result` values a template can read, as the checker records them
    /// for a run to hand the prompt only those (with `status`, always).
    #[test]
    fn result_fields_are_those_a_template_can_read() {
        let fields = |template: &str| {
            let text = Text {
                value: template.to_string(),
                span: Span::new(0, template.len()),
                map: vec![(0, 0)],
            };
            let params = [
                ("task".to_string(), Type::Text),
                ("review".to_string(), Type::Result),
                ("children".to_string(), Type::List(Box::new(Type::Result))),
            ];
            let mut out = Vec::new();
            let used = check_parsed("a", &text, &parse(&text), &params, &|_| None, &mut out);
            assert!(out.is_empty(), "{template}: {out:?}");
            RESULT_FIELDS
                .iter()
                .filter(|f| used.result_fields.contains(f))
                .copied()
                .collect::<Vec<_>>()
                .join(",")
        };
        let all = RESULT_FIELDS.join(",");
        // Named fields, however the result is reached.
        assert_eq!(fields("{{task}}"), "");
        assert_eq!(
            fields("{{#each children}}[{{this.status}}] {{this.summary}}{{/each}}"),
            "status,summary"
        );
        assert_eq!(
            fields("{{#each children as |c|}}{{c.output}}{{/each}}"),
            "output"
        );
        assert_eq!(fields("{{#with review}}{{summary}}{{/with}}"), "summary");
        assert_eq!(fields("{{review.outputs}}"), "outputs");
        assert_eq!(fields("{{#if review}}{{review.summary}}{{/if}}"), "summary");
        assert_eq!(fields("{{len children}} parts"), "");
        assert_eq!(
            fields("{{#if (eq review.status \"failed\")}}x{{/if}}"),
            "status"
        );
        // A result used whole shows every field.
        assert_eq!(fields("{{review}}"), all);
        assert_eq!(fields("{{children}}"), all);
        assert_eq!(fields("{{#each children}}{{this}}{{/each}}"), all);
        assert_eq!(fields("{{#each review}}{{@key}}{{/each}}"), all);
        assert_eq!(fields("{{lookup children 0}}"), all);
        assert_eq!(fields("{{len review}}"), all);
        // Paths that climb out of a block, block parameters, a whole result as a block's
        // subject through a helper, a result's fields iterated inside a list's.
        assert_eq!(fields("{{#each children}}{{@root.task}}{{/each}}"), "");
        assert_eq!(
            fields("{{#each children}}{{../review.summary}}{{/each}}"),
            "summary"
        );
        assert_eq!(
            fields("{{#with review as |r|}}{{r.status}}{{/with}}"),
            "status"
        );
        assert_eq!(
            fields("{{#with (lookup children 0)}}{{summary}}{{/with}}"),
            all
        );
        assert_eq!(
            fields("{{#each children}}{{#each this}}{{this}}{{/each}}{{/each}}"),
            all
        );
    }
}
