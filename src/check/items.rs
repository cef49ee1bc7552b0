//! Item-level checks: settings, signatures, record types, prompt templates, skills,
//! protocols and providers.

use foldhash::{HashMap, HashMapExt};

use super::budget::tokens_of_bytes;
use super::cost::Cost;
use super::modules::ModuleId;
use super::scope::{Binding, ItemKind, ItemRef};
use super::shape::Shape;
use super::templates;
use super::types::{ResultFields, Type};
use super::{Checker, Findings};
use crate::diagnostics;
use crate::source::Span;
use crate::syntax::ast::{self, Item, Param, ProtocolRule, Setting, TypeExpr, Value};

/// What a setting's value must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Tokens,
    Duration,
    Count,
    Number,
    Text,
    Name,
    /// A list of names or texts: `tools [Read, Edit]`.
    List,
    /// `env("NAME")`
    Env,
}

impl Kind {
    fn describe(self) -> &'static str {
        match self {
            Kind::Tokens => "a token count such as `200k` or `80 tokens`",
            Kind::Duration => "a duration above zero and at most a week, such as `30s` or `10m`",
            Kind::Count => "a whole number from 0 to 1,000",
            Kind::Number => "a number",
            Kind::Text => "a text in quotes",
            Kind::Name => "a name",
            Kind::List => "a list such as `[Read, Edit]`",
            Kind::Env => "`env(\"VARIABLE\")`",
        }
    }
}

const AGENT_SETTINGS: &[(&str, Kind)] = &[
    ("model", Kind::Text),
    ("provider", Kind::Name),
    ("tools", Kind::List),
    ("context", Kind::Tokens),
    ("summary", Kind::Tokens),
    ("timeout", Kind::Duration),
    ("retries", Kind::Count),
    ("prompt", Kind::Text),
    ("system", Kind::Text),
    ("temperature", Kind::Number),
];
const SKILL_SETTINGS: &[(&str, Kind)] = &[("description", Kind::Text)];
const PROTOCOL_SETTINGS: &[(&str, Kind)] =
    &[("summary", Kind::Tokens), ("description", Kind::Text)];
const PROVIDER_SETTINGS: &[(&str, Kind)] = &[
    ("kind", Kind::Text),
    ("url", Kind::Text),
    ("model", Kind::Text),
    ("key", Kind::Env),
    ("command", Kind::List),
    ("preset", Kind::Text),
    ("env", Kind::List),
    ("input", Kind::Text),
    ("max-tokens", Kind::Tokens),
    ("max-turns", Kind::Count),
    ("fixture", Kind::Text),
    ("latency", Kind::Duration),
    ("timeout", Kind::Duration),
];
/// The limits a protocol's `max` can set, and the triggers of `delegate when`.
pub const PROTOCOL_LIMITS: &[&str] = &["depth", "fanout"];
pub const DELEGATE_TRIGGERS: &[&str] = &["reads", "steps"];
/// The kinds of provider `kind "..."` may name (DESIGN §4).
pub const PROVIDER_KINDS: &[&str] = &["sim", "replay", "command", "openai", "anthropic"];
/// The agent CLIs `preset` may name.
pub const PROVIDER_PRESETS: &[&str] = &["claude", "codex", "ollama", "llm", "gemini"];
/// Providers every program has without declaring them (a declaration shadows one).
pub const BUILTIN_PROVIDERS: &[&str] = &[
    "sim",
    "replay",
    "claude",
    "codex",
    "ollama",
    "llm",
    "gemini",
    "openai",
    "anthropic",
];

/// What the checker knows about an agent once its item is checked.
#[derive(Debug, Clone)]
pub struct AgentInfo {
    pub name: String,
    pub span: Span,
    pub returns: Type,
    pub summary: Option<u64>,
    pub context: Option<u64>,
    /// Whether a `context` is written at all: one that is not a token count has its
    /// own error, and no W010 that says none is declared.
    pub context_written: bool,
    /// What rendering its templates costs, by what they render.
    pub cost: Cost,
    /// For an agent that returns a list: the most elements its answer can hold.
    pub answer_len: Option<u64>,
    /// The fields of `result` values the templates can read.
    pub result_fields: ResultFields,
    /// The shape its answer must have.
    pub shape: Shape,
    /// The tokens of the JSON Schema a provider appends to its prompt for a structured
    /// answer, at most (`shape::instructions_bound`); 0 for a `result`.
    pub schema_tokens: u64,
}

impl Checker<'_> {
    /// The most elements a list answer of `element`s fits in `summary` tokens: each
    /// takes at least its smallest JSON, a comma, and the fence of every text in it
    /// (which the answer's budget pays for).
    pub(super) fn answer_length(&self, module: ModuleId, element: &Type, summary: u64) -> u64 {
        let smallest = self.smallest_json(module, element, 0).saturating_add(1);
        summary.saturating_mul(4).div_ceil(smallest)
    }

    fn smallest_json(&self, module: ModuleId, ty: &Type, depth: usize) -> u64 {
        let text = 2 + super::budget::STRUCTURED_FENCE_BYTES as u64;
        match ty {
            Type::Text | Type::Path | Type::Duration | Type::Result => text,
            Type::Number => 1,
            Type::Bool => 4,
            Type::Record(name) if depth < 16 => {
                let fields = self.record_fields(module, name).unwrap_or_default();
                // `{`, `}`, and per field `"name":` and its value, with commas between.
                fields.iter().fold(1u64, |sum, (field, field_ty)| {
                    sum.saturating_add(field.len() as u64 + 4)
                        .saturating_add(self.smallest_json(module, field_ty, depth + 1))
                })
            }
            _ => 1,
        }
    }

    /// The threads worth checking the program's agents on: one per core when their
    /// templates are big, one otherwise.
    pub(super) fn item_threads(&self) -> usize {
        let template_bytes = (self.program.modules.iter())
            .flat_map(|module| &module.ast.items)
            .filter_map(|item| match item {
                Item::Agent(agent) => Some(&agent.settings),
                _ => None,
            })
            .flatten()
            .map(
                |setting| match (setting.key.name.as_str(), &setting.value) {
                    ("prompt" | "system", Value::Text(text)) => text.value.len(),
                    _ => 0,
                },
            )
            .sum();
        crate::parallel::threads_for(template_bytes)
    }

    /// Checks every item. Agents are checked first, shared out between `threads`
    /// threads (parsing and walking their templates is most of the work); what each
    /// item found is applied in the order of the items, so the output is the same for
    /// any number of threads.
    pub(super) fn check_items(&mut self, threads: usize) {
        let program = self.program;
        let jobs: Vec<(ModuleId, &ast::Agent)> = (program.modules.iter().enumerate())
            .flat_map(|(id, module)| {
                module.ast.items.iter().filter_map(move |item| match item {
                    Item::Agent(agent) => Some((ModuleId(id), agent)),
                    _ => None,
                })
            })
            .collect();
        let checker = &*self;
        let checked = crate::parallel::map_each(&jobs, threads, |&(module, agent)| {
            let mut check = ItemCheck::new(checker);
            let info = check.agent(module, agent);
            (info, check.findings)
        });
        let mut checked = checked.into_iter();
        for (id, module_data) in program.modules.iter().enumerate() {
            let module = ModuleId(id);
            for (index, ast_item) in module_data.ast.items.iter().enumerate() {
                let item = ItemRef { module, index };
                if let Item::Agent(_) = ast_item {
                    if let Some((info, findings)) = checked.next() {
                        self.apply(findings);
                        self.agents.insert(item, info);
                    }
                    continue;
                }
                let mut check = ItemCheck::new(self);
                match ast_item {
                    Item::Use(_) | Item::Agent(_) => {}
                    Item::Type(decl) => check.type_decl(module, decl),
                    Item::Workflow(workflow) => check.workflow_signature(module, workflow),
                    Item::Skill(skill) => check.skill(module, skill),
                    Item::Protocol(protocol) => check.protocol(module, protocol),
                    Item::Provider(provider) => check.provider(module, provider),
                }
                let findings = check.findings;
                self.apply(findings);
            }
        }
    }
}

/// Checks items against a checker it only reads, keeping what it finds apart, so that
/// items can be checked on several threads ([`Checker::check_items`]).
struct ItemCheck<'c, 'p> {
    checker: &'c Checker<'p>,
    findings: Findings,
}

impl<'c, 'p> ItemCheck<'c, 'p> {
    fn new(checker: &'c Checker<'p>) -> Self {
        ItemCheck {
            checker,
            findings: Findings::default(),
        }
    }

    fn emit(&mut self, module: ModuleId, diagnostic: diagnostics::Diagnostic) {
        self.findings.emit(module, diagnostic);
    }

    /// Looks `name` up in the scope of `module`, marking it (and its `use`) used.
    fn lookup(&mut self, module: ModuleId, name: &str) -> Option<Binding> {
        self.findings.lookup(self.checker, module, name)
    }

    /// Resolves a written type in `module`, reporting unknown names when `report`.
    fn resolve_type(&mut self, module: ModuleId, ty: &TypeExpr, report: bool) -> Type {
        match ty {
            TypeExpr::List(element, _, _) => {
                Type::List(Box::new(self.resolve_type(module, element, report)))
            }
            TypeExpr::Named(ident) => {
                if let Some(builtin) = Type::builtin(&ident.name) {
                    return builtin;
                }
                match self.lookup(module, &ident.name) {
                    Some(binding) if binding.kind == ItemKind::Type => {
                        Type::Record(ident.name.clone())
                    }
                    _ => {
                        if report {
                            let mut candidates: Vec<String> = [
                                "text", "path", "number", "bool", "duration", "result", "list",
                            ]
                            .iter()
                            .map(|s| s.to_string())
                            .collect();
                            candidates.extend(self.checker.type_names(module));
                            let suggestion = diagnostics::suggest(
                                &ident.name,
                                candidates.iter().map(String::as_str),
                            );
                            self.emit(
                                module,
                                diagnostics::unknown_type(ident.span, &ident.name, suggestion),
                            );
                        }
                        Type::Unknown
                    }
                }
            }
        }
    }

    fn type_decl(&mut self, module: ModuleId, decl: &ast::TypeDecl) {
        let mut seen: HashMap<&str, Span> = HashMap::new();
        for field in &decl.fields {
            if let Some(first) = seen.insert(&field.name.name, field.name.span) {
                self.emit(
                    module,
                    diagnostics::duplicate(field.name.span, "field", &field.name.name, first),
                );
            }
            self.resolve_type(module, &field.ty, true);
        }
    }

    /// Checks a parameter list and returns each parameter's type.
    fn params(&mut self, module: ModuleId, params: &[Param]) -> Vec<(String, Type)> {
        let mut seen: HashMap<&str, Span> = HashMap::new();
        let mut out = Vec::new();
        for param in params {
            if let Some(first) = seen.insert(&param.name.name, param.name.span) {
                self.emit(
                    module,
                    diagnostics::duplicate(param.name.span, "parameter", &param.name.name, first),
                );
            }
            let ty = self.resolve_type(module, &param.ty, true);
            if let ast::TypeExpr::List(_, Some(max), _) = &param.ty {
                if max.is_duration() || max.as_count().is_none_or(|n| n == 0) {
                    self.emit(
                        module,
                        diagnostics::invalid_quantity(
                            max.span,
                            "`max` of a list's elements",
                            "a positive token count, such as `list<text max 200>`",
                        ),
                    );
                }
            }
            if let Some(max) = &param.max {
                if max.is_duration() || max.as_count().is_none_or(|n| n == 0) {
                    self.emit(
                        module,
                        diagnostics::invalid_quantity(
                            max.span,
                            "`max` of a parameter",
                            "a positive token count (for text) or length (for a list)",
                        ),
                    );
                }
            }
            if let Some(default) = &param.default {
                let found = literal_type(default);
                match found {
                    None => self.emit(
                        module,
                        diagnostics::invalid_quantity(
                            default.span,
                            "a parameter default",
                            "a constant literal: text, number, duration, bool or a list of them",
                        ),
                    ),
                    Some(found) => {
                        let text_for_path = found == Type::Text && ty == Type::Path;
                        if !text_for_path && !found.fits(&ty) {
                            self.emit(
                                module,
                                diagnostics::type_mismatch(
                                    default.span,
                                    &format!("parameter `{}`", param.name.name),
                                    &ty.to_string(),
                                    &found.to_string(),
                                ),
                            );
                        } else {
                            for diagnostic in default_over_bounds(param, default) {
                                self.emit(module, diagnostic);
                            }
                        }
                    }
                }
            }
            out.push((param.name.name.clone(), ty));
        }
        out
    }

    fn agent(&mut self, module: ModuleId, agent: &ast::Agent) -> AgentInfo {
        let params = self.params(module, &agent.params);
        let returns = agent
            .returns
            .as_ref()
            .map_or(Type::Result, |ty| self.resolve_type(module, ty, true));
        let values = self.settings(module, "an agent", &agent.settings, AGENT_SETTINGS);

        if let Some(Value::Name(provider)) = values.get("provider").map(|s| &s.value) {
            let declared = matches!(
                self.lookup(module, &provider.name),
                Some(b) if b.kind == ItemKind::Provider
            );
            if !declared && !BUILTIN_PROVIDERS.contains(&provider.name.as_str()) {
                let mut names = self.checker.visible_names(module);
                names.extend(BUILTIN_PROVIDERS.iter().map(|s| s.to_string()));
                let suggestion =
                    diagnostics::suggest(&provider.name, names.iter().map(String::as_str));
                self.emit(
                    module,
                    diagnostics::unknown_name(
                        provider.span,
                        "provider",
                        &provider.name,
                        suggestion,
                        None,
                    ),
                );
            }
        }

        let mut cost = Cost::default();
        let mut parsed = true;
        let mut result_fields = ResultFields::default();
        let mut found = Vec::new();
        for key in ["system", "prompt"] {
            if let Some(Value::Text(text)) = values.get(key).map(|s| &s.value) {
                let checker = self.checker;
                let fields = |name: &str| checker.record_fields(module, name);
                let template = templates::parse(text);
                let used = templates::check_parsed(
                    &agent.name.name,
                    text,
                    &template,
                    &params,
                    &fields,
                    &mut found,
                );
                parsed &= used.parsed;
                result_fields = result_fields.union(used.result_fields);
                cost.absorb(used.cost);
            }
        }
        for diagnostic in found {
            self.emit(module, diagnostic);
        }
        // A template that does not parse says nothing about which parameters it uses.
        if values.contains_key("prompt") && parsed {
            for param in &agent.params {
                if !cost.mentions(&param.name.name) {
                    self.emit(
                        module,
                        diagnostics::unused_parameter(
                            param.name.span,
                            &agent.name.name,
                            &param.name.name,
                            true,
                        ),
                    );
                }
            }
        }
        let tokens = |key: &str| match values.get(key).map(|s| &s.value) {
            Some(Value::Quantity(q)) => q.as_count(),
            _ => None,
        };
        // A structured answer must fit the `summary` whole: one that cannot, even at its
        // smallest, is refused on every run.
        if !matches!(returns, Type::Result | Type::Unknown) {
            let summary = tokens("summary").unwrap_or(super::budget::DEFAULT_SUMMARY);
            let smallest =
                tokens_of_bytes(self.checker.smallest_json(module, &returns, 0) as usize);
            if smallest > summary {
                let span = agent
                    .setting("summary")
                    .map_or(agent.name.span, |s| s.value.span());
                self.emit(
                    module,
                    diagnostics::summary_below_answer(
                        span,
                        &agent.name.name,
                        &returns.to_string(),
                        smallest,
                    ),
                );
            }
        }
        let answer_len = match &returns {
            Type::List(element) => {
                let summary = tokens("summary").unwrap_or(super::budget::DEFAULT_SUMMARY);
                Some(self.checker.answer_length(module, element, summary))
            }
            _ => None,
        };
        let shape = super::shape::shape_of(
            self.checker.program,
            &self.checker.scopes,
            module,
            &returns,
            agent.returns.as_ref(),
        );
        let schema_bytes = super::shape::instructions_bound(&shape);
        AgentInfo {
            name: agent.name.name.clone(),
            span: agent.name.span,
            returns,
            summary: tokens("summary"),
            context: tokens("context"),
            context_written: agent.setting("context").is_some(),
            cost,
            answer_len,
            result_fields,
            shape,
            schema_tokens: tokens_of_bytes(schema_bytes),
        }
    }

    fn workflow_signature(&mut self, module: ModuleId, workflow: &ast::Workflow) {
        self.params(module, &workflow.params);
        if let Some(ty) = &workflow.returns {
            self.resolve_type(module, ty, true);
        }
        if let Some((first, rest)) = workflow.depth.split_first() {
            for again in rest {
                self.emit(
                    module,
                    diagnostics::repeated_modifier(again.span, "depth", first.span),
                );
            }
            let max = crate::compile::expand::MAX_DEPTH as u64;
            if first.is_duration() || first.as_count().is_none_or(|n| n == 0 || n > max) {
                self.emit(
                    module,
                    diagnostics::invalid_quantity(
                        first.span,
                        "`depth`",
                        &format!("a whole number of levels, from 1 to {max}"),
                    ),
                );
            }
        }
        if let Some((first, rest)) = workflow.follows.split_first() {
            for again in rest {
                self.emit(
                    module,
                    diagnostics::repeated_modifier(again.span, "follows", first.span),
                );
            }
            match self.lookup(module, &first.name) {
                Some(binding) if binding.kind == ItemKind::Protocol => {}
                _ => {
                    let names = self.checker.visible_names(module);
                    let suggestion =
                        diagnostics::suggest(&first.name, names.iter().map(String::as_str));
                    self.emit(
                        module,
                        diagnostics::unknown_name(
                            first.span,
                            "protocol",
                            &first.name,
                            suggestion,
                            None,
                        ),
                    );
                }
            }
        }
        match workflow.returns_stmts.as_slice() {
            [_] => {}
            [] => self.emit(
                module,
                diagnostics::return_count(workflow.name.span, &workflow.name.name, 0),
            ),
            [_, extra @ ..] => {
                for stmt in extra {
                    self.emit(
                        module,
                        diagnostics::return_count(
                            stmt.span,
                            &workflow.name.name,
                            workflow.returns_stmts.len(),
                        ),
                    );
                }
            }
        }
    }

    fn skill(&mut self, module: ModuleId, skill: &ast::Skill) {
        self.settings(module, "a skill", &skill.settings, SKILL_SETTINGS);
        for workflow in &skill.workflows {
            match self.lookup(module, &workflow.name) {
                Some(binding) if binding.kind == ItemKind::Workflow => {}
                _ => {
                    let names = self.checker.visible_names(module);
                    let suggestion =
                        diagnostics::suggest(&workflow.name, names.iter().map(String::as_str));
                    self.emit(
                        module,
                        diagnostics::unknown_name(
                            workflow.span,
                            "workflow",
                            &workflow.name,
                            suggestion,
                            None,
                        ),
                    );
                }
            }
        }
        if skill.workflows.is_empty() {
            self.emit(
                module,
                diagnostics::invalid_call(
                    skill.name.span,
                    format!("skill `{}` lists no workflow", skill.name.name),
                    "add `workflow NAME` to the skill; the first is its default".to_string(),
                ),
            );
        }
    }

    fn protocol(&mut self, module: ModuleId, protocol: &ast::Protocol) {
        self.settings(module, "a protocol", &protocol.settings, PROTOCOL_SETTINGS);
        let mut seen: HashMap<String, Span> = HashMap::new();
        for rule in &protocol.rules {
            let (what, limit, known, key) = match rule {
                ProtocolRule::Max { what, limit, .. } => {
                    (what, limit, PROTOCOL_LIMITS, format!("max {}", what.name))
                }
                ProtocolRule::Delegate { what, limit, .. } => (
                    what,
                    limit,
                    DELEGATE_TRIGGERS,
                    format!("delegate when {}", what.name),
                ),
            };
            if !known.contains(&what.name.as_str()) {
                let owner = match rule {
                    ProtocolRule::Max { .. } => "`max` in a protocol",
                    ProtocolRule::Delegate { .. } => "`delegate when` in a protocol",
                };
                self.emit(
                    module,
                    diagnostics::unknown_setting(what.span, owner, &what.name, known),
                );
            }
            if limit.is_duration() || limit.as_count().is_none_or(|n| n == 0) {
                self.emit(
                    module,
                    diagnostics::invalid_quantity(
                        limit.span,
                        &format!("`{key}`"),
                        "a whole number, 1 or more",
                    ),
                );
            }
            if let Some(first) = seen.insert(key.clone(), what.span) {
                self.emit(
                    module,
                    diagnostics::repeated_setting(what.span, &key, first),
                );
            }
        }
    }

    fn provider(&mut self, module: ModuleId, provider: &ast::Provider) {
        let values = self.settings(module, "a provider", &provider.settings, PROVIDER_SETTINGS);
        let text = |key: &str| match values.get(key).map(|s| &s.value) {
            Some(Value::Text(text)) => Some(text),
            _ => None,
        };
        let one_of = |names: &[&str]| {
            format!(
                "one of {}",
                names
                    .iter()
                    .map(|k| format!("`\"{k}\"`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let mut problems = Vec::new();
        for (key, allowed) in [
            ("kind", PROVIDER_KINDS),
            ("preset", PROVIDER_PRESETS),
            ("input", &["stdin", "argument"][..]),
        ] {
            if let Some(value) = text(key) {
                if !allowed.contains(&value.value.as_str()) {
                    problems.push(diagnostics::invalid_setting_value(
                        value.span,
                        key,
                        &one_of(allowed),
                    ));
                }
            }
        }
        // A `url` the HTTP client cannot use failed every call, three times, with a
        // library's "relative URL without a base".
        if let Some(url) = text("url") {
            let scheme_ok = ["http://", "https://"]
                .iter()
                .any(|scheme| url.value.to_ascii_lowercase().starts_with(scheme));
            let host = url.value.split_once("://").map_or("", |(_, rest)| rest);
            if !scheme_ok || host.is_empty() || host.starts_with('/') {
                problems.push(diagnostics::invalid_setting_value(
                    url.span,
                    "url",
                    "an `http://` or `https://` address, such as `\"http://127.0.0.1:8080/v1\"`",
                ));
            }
        }
        let kind = text("kind").map(|k| k.value.as_str());
        let command_like =
            kind == Some("command") || (kind.is_none() && values.contains_key("preset"));
        if command_like && !values.contains_key("command") && !values.contains_key("preset") {
            problems.push(diagnostics::missing_setting(
                provider.name.span,
                "a `command` provider",
                "command",
                "name the program and its arguments, `command [\"my-cli\", \"--quiet\"]`, or pick a known CLI with `preset \"claude\"`",
            ));
        }
        if kind.is_none() && !command_like {
            problems.push(diagnostics::missing_setting(
                provider.name.span,
                "a provider",
                "kind",
                &format!("say how it answers: `kind` {}", one_of(PROVIDER_KINDS)),
            ));
        }
        for problem in problems {
            self.emit(module, problem);
        }
    }

    /// Checks settings against `known`; returns the first of each key.
    fn settings<'s>(
        &mut self,
        module: ModuleId,
        owner: &str,
        settings: &'s [Setting],
        known: &[(&str, Kind)],
    ) -> HashMap<&'s str, &'s Setting> {
        let mut values: HashMap<&str, &Setting> = HashMap::new();
        for setting in settings {
            let key = setting.key.name.as_str();
            let Some(&(_, kind)) = known.iter().find(|(k, _)| *k == key) else {
                let names: Vec<&str> = known.iter().map(|(k, _)| *k).collect();
                self.emit(
                    module,
                    diagnostics::unknown_setting(setting.key.span, owner, key, &names),
                );
                continue;
            };
            if let Some(first) = values.get(key) {
                self.emit(
                    module,
                    diagnostics::repeated_setting(setting.key.span, key, first.key.span),
                );
                continue;
            }
            if !value_fits(&setting.value, kind) {
                self.emit(
                    module,
                    diagnostics::invalid_setting_value(setting.value.span(), key, kind.describe()),
                );
                continue;
            }
            values.insert(key, setting);
        }
        values
    }
}

/// The most a count setting (`retries`, `max-turns`) may be.
const MAX_COUNT: u64 = 1_000;

/// The longest a duration setting (`timeout`, `latency`) may be: a week.
const MAX_DURATION: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

fn value_fits(value: &Value, kind: Kind) -> bool {
    match (value, kind) {
        (Value::Quantity(q), Kind::Tokens) => q.as_count().is_some(),
        // `retries 5000000000` ran with 2, and a timeout past what a timer holds with
        // ten minutes, without a word: the run's values are the checked ones.
        (Value::Quantity(q), Kind::Count) => q.as_count().is_some_and(|n| n <= MAX_COUNT),
        (Value::Quantity(q), Kind::Duration) => {
            q.is_duration()
                && q.as_duration()
                    .is_some_and(|d| !d.is_zero() && d <= MAX_DURATION)
        }
        (Value::Quantity(q), Kind::Number) => !q.is_duration(),
        (Value::Text(_), Kind::Text) => true,
        (Value::Name(_), Kind::Name) => true,
        (Value::List(items, _), Kind::List) => items
            .iter()
            .all(|item| matches!(item, Value::Name(_) | Value::Text(_))),
        (Value::Env(..), Kind::Env) => true,
        _ => false,
    }
}

/// What in `default` is over a bound `param` declares: text over its `max` tokens, a
/// list over its `max` elements, an element over `list<T max N>`. A default is what
/// the budget proof assumes the parameter holds, so it must keep to the bounds that
/// `--arg` is held to.
fn default_over_bounds(param: &Param, default: &ast::Expr) -> Vec<diagnostics::Diagnostic> {
    use ast::ExprKind;
    let mut found = Vec::new();
    let name = &param.name.name;
    // A path's `max` is not a size its text is held to (`--arg` holds only text to it).
    let holds_paths = match &param.ty {
        ast::TypeExpr::Named(ty) => ty.name == "path",
        ast::TypeExpr::List(element, _, _) => {
            matches!(&**element, ast::TypeExpr::Named(ty) if ty.name == "path")
        }
    };
    if holds_paths {
        return found;
    }
    let max = param.max.as_ref().and_then(ast::Quantity::as_count);
    let text_tokens = |expr: &ast::Expr| literal_rendered_bytes(expr).map(tokens_of_bytes);
    match &default.kind {
        ExprKind::Quantity(q) if q.is_duration() && q.as_duration().is_none() => {
            found.push(diagnostics::invalid_quantity(
                default.span,
                "a parameter default",
                "a duration a timer can hold, such as `10m`",
            ));
        }
        ExprKind::Text(_) => {
            if let (Some(max), Some(tokens)) = (max, text_tokens(default)) {
                if tokens > max {
                    found.push(diagnostics::over_bound(
                        default.span,
                        &format!("the default of `{name}`"),
                        tokens,
                        "tokens",
                        max,
                    ));
                }
            }
        }
        ExprKind::List(items) => {
            if let Some(max) = max.filter(|&max| items.len() as u64 > max) {
                found.push(diagnostics::over_bound(
                    default.span,
                    &format!("the default of `{name}`"),
                    items.len() as u64,
                    "elements",
                    max,
                ));
            }
            if let Some(element_max) = param.ty.element_max() {
                for item in items {
                    if let Some(tokens) = text_tokens(item).filter(|&t| t > element_max) {
                        found.push(diagnostics::over_bound(
                            item.span,
                            &format!("an element of the default of `{name}`"),
                            tokens,
                            "tokens",
                            element_max,
                        ));
                    }
                }
            }
        }
        _ => {}
    }
    found
}

/// The bytes a literal text, or a literal list of them at any depth, renders as in a
/// prompt: a list as handlebars writes one, `[a, b]`. `None` for anything else. An
/// element of `list<T max N>` is held to N as it renders, which is what the budget
/// counts it at.
pub fn literal_rendered_bytes(expr: &ast::Expr) -> Option<usize> {
    match &expr.kind {
        ast::ExprKind::Text(text) => Some(text.value.len()),
        ast::ExprKind::List(items) => {
            let bytes = (items.iter()).try_fold(0usize, |sum, item| {
                Some(sum.saturating_add(literal_rendered_bytes(item)?))
            })?;
            Some(super::budget::rendered_list_bytes(items.len(), bytes))
        }
        _ => None,
    }
}

/// The type of a constant literal, or `None` if the expression is not one.
pub fn literal_type(expr: &ast::Expr) -> Option<Type> {
    use ast::ExprKind;
    Some(match &expr.kind {
        ExprKind::Text(_) => Type::Text,
        ExprKind::Quantity(q) if q.is_duration() => Type::Duration,
        ExprKind::Quantity(_) => Type::Number,
        ExprKind::Bool(_) => Type::Bool,
        ExprKind::List(items) => {
            let mut element = None;
            for item in items {
                let ty = literal_type(item)?;
                match &element {
                    None => element = Some(ty),
                    Some(first) if ty.fits(first) => {}
                    Some(_) => return None,
                }
            }
            element.map_or(Type::EmptyList, |t| Type::List(Box::new(t)))
        }
        _ => return None,
    })
}
