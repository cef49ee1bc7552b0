//! Lowering from pest pairs to the AST. One function per construct.

use std::sync::OnceLock;

use pest::iterators::Pair;
use pest::pratt_parser::{Assoc, Op, PrattParser};

use super::ast::*;
use super::parser::{probe_item, Rule, MAX_NESTING};
use super::text;
use crate::diagnostics::{self, Diagnostic};
use crate::source::Span;

/// Words that are never names (docs/GRAMMAR.md). The grammar's `name` matches them, so
/// that parsing does not test every name against each; lowering refuses them here.
const RESERVED: &[&str] = &[
    "let", "return", "for", "in", "if", "else", "after", "true", "false", "and", "or", "not",
];

/// Lowers the pairs of one file, collecting every diagnostic instead of stopping.
pub(crate) struct Lowerer<'t> {
    /// The whole file.
    text: &'t str,
    /// Where in `text` the text pest parsed starts: pest's positions are relative to
    /// it, the AST's spans to `text`.
    base: usize,
    pub diagnostics: Vec<Diagnostic>,
    depth: usize,
    /// Whether the item being lowered used a reserved word as a name; such an item is
    /// reported and left out, as one that does not parse is.
    reserved_name: bool,
    /// Whether an item that does not parse is parsed again to say what was expected.
    probes: bool,
    /// Whether an item that does not parse was skipped without a probe.
    pub skipped_item: bool,
}

/// Pairs that carry no structure: keywords (kept non-silent so errors can name them)
/// and directives (collected separately).
fn is_noise(rule: Rule) -> bool {
    matches!(
        rule,
        Rule::directive
            | Rule::kw_use
            | Rule::kw_type
            | Rule::kw_agent
            | Rule::kw_workflow
            | Rule::kw_skill
            | Rule::kw_protocol
            | Rule::kw_provider
            | Rule::kw_when
            | Rule::kw_depth
            | Rule::kw_follows
            | Rule::kw_max
            | Rule::kw_delegate
            | Rule::kw_env
            | Rule::kw_list
            | Rule::kw_tokens
            | Rule::kw_let
            | Rule::kw_return
            | Rule::kw_after
            | Rule::kw_for
            | Rule::kw_in
            | Rule::kw_if
            | Rule::kw_else
    )
}

fn parts<'i>(pair: Pair<'i, Rule>) -> impl Iterator<Item = Pair<'i, Rule>> {
    pair.into_inner().filter(|p| !is_noise(p.as_rule()))
}

fn pratt() -> &'static PrattParser<Rule> {
    static PRATT: OnceLock<PrattParser<Rule>> = OnceLock::new();
    PRATT.get_or_init(|| {
        PrattParser::new()
            .op(Op::infix(Rule::op_or, Assoc::Left))
            .op(Op::infix(Rule::op_and, Assoc::Left))
            .op(Op::prefix(Rule::op_not))
            .op(Op::infix(Rule::op_eq, Assoc::Left)
                | Op::infix(Rule::op_ne, Assoc::Left)
                | Op::infix(Rule::op_lt, Assoc::Left)
                | Op::infix(Rule::op_le, Assoc::Left)
                | Op::infix(Rule::op_gt, Assoc::Left)
                | Op::infix(Rule::op_ge, Assoc::Left))
            .op(Op::infix(Rule::op_add, Assoc::Left))
    })
}

impl<'t> Lowerer<'t> {
    pub fn new(text: &'t str) -> Self {
        Lowerer {
            text,
            base: 0,
            diagnostics: Vec::new(),
            depth: 0,
            reserved_name: false,
            probes: true,
            skipped_item: false,
        }
    }

    /// A lowerer for the piece of `text` that starts at `base`. It only notes an item
    /// that does not parse (in `skipped_item`) instead of parsing it again: the probe
    /// takes pest's process-wide settings, which the parse of the pieces holds.
    pub fn for_piece(text: &'t str, base: usize) -> Self {
        Lowerer {
            base,
            probes: false,
            ..Lowerer::new(text)
        }
    }

    /// Where `pair` is in the whole file.
    fn span_of(&self, pair: &Pair<'_, Rule>) -> Span {
        let span = pair.as_span();
        Span::new(self.base + span.start(), self.base + span.end())
    }

    /// Where `pair` starts in the whole file.
    fn start_of(&self, pair: &Pair<'_, Rule>) -> usize {
        self.base + pair.as_span().start()
    }

    pub fn file(&mut self, pair: Pair<'_, Rule>) -> File {
        let mut file = File::default();
        // Directives can sit in any comment, so finding them walks every pair; text
        // without the word cannot hold one and skips the walk.
        let pairs = pair
            .as_str()
            .contains("pai:allow")
            .then(|| pair.clone().into_inner().flatten());
        for inner in pairs.into_iter().flatten() {
            if inner.as_rule() == Rule::directive {
                file.allows.push(Allow {
                    codes: inner
                        .clone()
                        .into_inner()
                        .filter(|p| p.as_rule() == Rule::directive_code)
                        .map(|p| {
                            let mut code = self.ident(p);
                            if let Some(bare) = code.name.strip_prefix("pai::") {
                                code.name = bare.to_string();
                                code.span = Span::new(code.span.start + 5, code.span.end);
                            }
                            code
                        })
                        .collect(),
                    span: self.span_of(&inner),
                });
            }
        }
        for item in parts(pair) {
            self.reserved_name = false;
            let lowered = match item.as_rule() {
                Rule::use_item => Some(Item::Use(self.use_item(item))),
                Rule::type_item => Some(Item::Type(self.type_item(item))),
                Rule::agent_item => Some(Item::Agent(self.agent(item))),
                Rule::workflow_item => self.workflow(item).map(Item::Workflow),
                Rule::skill_item => Some(Item::Skill(self.skill(item))),
                Rule::protocol_item => Some(Item::Protocol(self.protocol(item))),
                Rule::provider_item => Some(Item::Provider(self.provider(item))),
                Rule::bad_item => {
                    self.bad_item(&item);
                    None
                }
                _ => None,
            };
            if !self.reserved_name {
                file.items.extend(lowered);
            }
        }
        file
    }

    /// Re-parses a skipped item alone to learn what was expected where it broke.
    fn bad_item(&mut self, pair: &Pair<'_, Rule>) {
        if !self.probes {
            self.skipped_item = true;
            return;
        }
        let start = self.start_of(pair);
        // A probe that parses cannot happen for a deterministic grammar; report the
        // item plainly all the same.
        let diagnostic = probe_item(self.text, start).unwrap_or_else(|| {
            diagnostics::syntax_error(self.span_of(pair), "an item", "this text")
        });
        self.diagnostics.push(diagnostic);
    }

    fn ident(&mut self, pair: Pair<'_, Rule>) -> Ident {
        let ident = Ident {
            name: pair.as_str().to_string(),
            span: self.span_of(&pair),
        };
        if pair.as_rule() == Rule::name && RESERVED.contains(&ident.name.as_str()) {
            self.reserved_name = true;
            self.diagnostics
                .push(diagnostics::reserved_name(ident.span, &ident.name));
        }
        ident
    }

    fn use_item(&mut self, pair: Pair<'_, Rule>) -> Use {
        let span = self.span_of(&pair);
        let target = match parts(pair).next() {
            Some(p) if p.as_rule() == Rule::string => UseTarget::File(self.string(p)),
            Some(p) if p.as_rule() == Rule::misplaced_when => UseTarget::MisplacedWhen(span),
            Some(p) => UseTarget::Skill(self.ident(p)),
            None => UseTarget::MisplacedWhen(span),
        };
        if let UseTarget::MisplacedWhen(span) = target {
            self.diagnostics
                .push(diagnostics::use_when_outside_skill(span));
        }
        Use { target, span }
    }

    fn type_item(&mut self, pair: Pair<'_, Rule>) -> TypeDecl {
        let span = self.span_of(&pair);
        let mut inner = parts(pair);
        let name = self.name_or_default(inner.next());
        let fields = inner
            .map(|field| {
                let mut f = parts(field);
                let name = self.name_or_default(f.next());
                let ty = self.type_expr_or_default(f.next());
                FieldDecl { name, ty }
            })
            .collect();
        TypeDecl { name, fields, span }
    }

    fn agent(&mut self, pair: Pair<'_, Rule>) -> Agent {
        let span = self.span_of(&pair);
        let mut agent = Agent {
            name: Ident {
                name: String::new(),
                span,
            },
            params: Vec::new(),
            returns: None,
            settings: Vec::new(),
            span,
        };
        for part in parts(pair) {
            match part.as_rule() {
                Rule::name => agent.name = self.ident(part),
                Rule::params => agent.params = self.params(part),
                Rule::returns => {
                    agent.returns = Some(self.type_expr_or_default(parts(part).next()))
                }
                Rule::setting => agent.settings.extend(self.setting(part)),
                _ => {}
            }
        }
        agent
    }

    fn workflow(&mut self, pair: Pair<'_, Rule>) -> Option<Workflow> {
        let span = self.span_of(&pair);
        let mut workflow = Workflow {
            name: Ident {
                name: String::new(),
                span,
            },
            params: Vec::new(),
            returns: None,
            depth: Vec::new(),
            follows: Vec::new(),
            lets: Vec::new(),
            returns_stmts: Vec::new(),
            span,
        };
        for part in parts(pair) {
            match part.as_rule() {
                Rule::name => workflow.name = self.ident(part),
                Rule::params => workflow.params = self.params(part),
                Rule::returns => {
                    workflow.returns = Some(self.type_expr_or_default(parts(part).next()))
                }
                Rule::depth_mod => {
                    if let Some(q) = parts(part).next() {
                        workflow.depth.push(self.quantity(q));
                    }
                }
                Rule::follows_mod => {
                    if let Some(n) = parts(part).next() {
                        workflow.follows.push(self.ident(n));
                    }
                }
                Rule::let_stmt => workflow.lets.push(self.let_stmt(part)?),
                Rule::return_stmt => {
                    let span = self.span_of(&part);
                    let mut inner = parts(part);
                    let value = self.expr(inner.next()?)?;
                    let after = inner.next().map(|a| self.after(a)).unwrap_or_default();
                    workflow.returns_stmts.push(Return { value, after, span });
                }
                _ => {}
            }
        }
        Some(workflow)
    }

    fn skill(&mut self, pair: Pair<'_, Rule>) -> Skill {
        let span = self.span_of(&pair);
        let mut skill = Skill {
            name: Ident {
                name: String::new(),
                span,
            },
            triggers: Vec::new(),
            use_when: Vec::new(),
            workflows: Vec::new(),
            settings: Vec::new(),
            span,
        };
        for part in parts(pair) {
            match part.as_rule() {
                Rule::name => skill.name = self.ident(part),
                Rule::use_when => {
                    skill.use_when.push(self.span_of(&part));
                    for s in parts(part) {
                        skill.triggers.push(self.string(s));
                    }
                }
                Rule::skill_workflow => {
                    if let Some(n) = parts(part).next() {
                        skill.workflows.push(self.ident(n));
                    }
                }
                Rule::setting => skill.settings.extend(self.setting(part)),
                _ => {}
            }
        }
        skill
    }

    fn protocol(&mut self, pair: Pair<'_, Rule>) -> Protocol {
        let span = self.span_of(&pair);
        let mut protocol = Protocol {
            name: Ident {
                name: String::new(),
                span,
            },
            rules: Vec::new(),
            settings: Vec::new(),
            span,
        };
        for part in parts(pair) {
            let rule_span = self.span_of(&part);
            match part.as_rule() {
                Rule::name => protocol.name = self.ident(part),
                Rule::max_rule => {
                    let mut inner = parts(part);
                    let what = self.name_or_default(inner.next());
                    if let Some(q) = inner.next() {
                        let limit = self.quantity(q);
                        protocol.rules.push(ProtocolRule::Max {
                            what,
                            limit,
                            span: rule_span,
                        });
                    }
                }
                Rule::delegate_rule => {
                    let mut inner = parts(part);
                    let what = self.name_or_default(inner.next());
                    let op = inner
                        .next()
                        .map_or(CompareOp::Ge, |op| compare_op(op.as_str()));
                    if let Some(q) = inner.next() {
                        let limit = self.quantity(q);
                        protocol.rules.push(ProtocolRule::Delegate {
                            what,
                            op,
                            limit,
                            span: rule_span,
                        });
                    }
                }
                Rule::setting => protocol.settings.extend(self.setting(part)),
                _ => {}
            }
        }
        protocol
    }

    fn provider(&mut self, pair: Pair<'_, Rule>) -> Provider {
        let span = self.span_of(&pair);
        let mut inner = parts(pair);
        let name = self.name_or_default(inner.next());
        let settings = inner.filter_map(|s| self.setting(s)).collect();
        Provider {
            name,
            settings,
            span,
        }
    }

    fn setting(&mut self, pair: Pair<'_, Rule>) -> Option<Setting> {
        let span = self.span_of(&pair);
        let mut inner = parts(pair);
        let key = self.ident(inner.next()?);
        let value = self.value(inner.next()?)?;
        Some(Setting { key, value, span })
    }

    fn value(&mut self, pair: Pair<'_, Rule>) -> Option<Value> {
        let span = self.span_of(&pair);
        Some(match pair.as_rule() {
            Rule::quantity => Value::Quantity(self.quantity(pair)),
            Rule::string | Rule::block_string => Value::Text(self.text_lit(pair)),
            Rule::value_list => {
                Value::List(parts(pair).filter_map(|v| self.value(v)).collect(), span)
            }
            Rule::env_call => Value::Env(self.string(parts(pair).next()?), span),
            _ => Value::Name(self.ident(pair)),
        })
    }

    fn params(&mut self, pair: Pair<'_, Rule>) -> Vec<Param> {
        parts(pair)
            .filter_map(|param| {
                let span = self.span_of(&param);
                let mut inner = parts(param);
                let name = self.ident(inner.next()?);
                let ty = self.type_expr_or_default(inner.next());
                let mut max = None;
                let mut default = None;
                for rest in inner {
                    match rest.as_rule() {
                        Rule::param_max => max = parts(rest).next().map(|q| self.quantity(q)),
                        _ => default = self.expr(rest).map(Box::new),
                    }
                }
                Some(Param {
                    name,
                    ty,
                    max,
                    default,
                    span,
                })
            })
            .collect()
    }

    fn type_expr_or_default(&mut self, pair: Option<Pair<'_, Rule>>) -> TypeExpr {
        match pair {
            Some(pair) => self.type_expr(pair),
            None => TypeExpr::Named(Ident {
                name: "result".to_string(),
                span: Span::default(),
            }),
        }
    }

    fn type_expr(&mut self, pair: Pair<'_, Rule>) -> TypeExpr {
        let span = self.span_of(&pair);
        let inner = match pair.as_rule() {
            Rule::type_expr => parts(pair).next(),
            _ => Some(pair),
        };
        match inner {
            Some(p) if p.as_rule() == Rule::list_type => {
                let mut inner = parts(p);
                let element = self.type_expr_or_default(inner.next());
                let max = inner
                    .next()
                    .and_then(|m| parts(m).next())
                    .map(|q| self.quantity(q));
                TypeExpr::List(Box::new(element), max, span)
            }
            Some(p) => TypeExpr::Named(self.ident(p)),
            None => TypeExpr::Named(Ident {
                name: String::new(),
                span,
            }),
        }
    }

    fn name_or_default(&mut self, pair: Option<Pair<'_, Rule>>) -> Ident {
        pair.map(|p| self.ident(p)).unwrap_or(Ident {
            name: String::new(),
            span: Span::default(),
        })
    }

    fn let_stmt(&mut self, pair: Pair<'_, Rule>) -> Option<Let> {
        let span = self.span_of(&pair);
        let mut inner = parts(pair);
        let name = self.ident(inner.next()?);
        let value = self.expr(inner.next()?)?;
        let after = inner.next().map(|a| self.after(a)).unwrap_or_default();
        Some(Let {
            name,
            value,
            after,
            span,
        })
    }

    fn after(&mut self, pair: Pair<'_, Rule>) -> Vec<Ident> {
        parts(pair).map(|p| self.ident(p)).collect()
    }

    fn block(&mut self, pair: Pair<'_, Rule>) -> Option<Block> {
        let span = self.span_of(&pair);
        let mut lets = Vec::new();
        let mut value = None;
        for part in parts(pair) {
            match part.as_rule() {
                Rule::let_stmt => lets.extend(self.let_stmt(part)),
                _ => value = self.expr(part),
            }
        }
        Some(Block {
            lets,
            value: Box::new(value?),
            span,
        })
    }

    /// Lowers an expression; `None` when it was too deep (already reported).
    fn expr(&mut self, pair: Pair<'_, Rule>) -> Option<Expr> {
        self.depth += 1;
        let result = if self.depth > MAX_NESTING {
            self.diagnostics.push(diagnostics::nested_too_deeply(
                Span::new(self.start_of(&pair), self.start_of(&pair) + 1),
                MAX_NESTING,
            ));
            None
        } else {
            self.expr_inner(pair)
        };
        self.depth -= 1;
        result
    }

    fn expr_inner(&mut self, pair: Pair<'_, Rule>) -> Option<Expr> {
        if pair.as_rule() != Rule::expr {
            return self.primary(pair);
        }
        // The Pratt closures cannot borrow `self` mutably more than once, so the
        // operands are lowered first and the tree is built from their results.
        let pieces: Vec<Pair<'_, Rule>> = pair
            .into_inner()
            .filter(|p| p.as_rule() != Rule::directive)
            .collect();
        // Operator chains nest the tree as deeply as they are long; refuse the ones
        // that would nest past the limit instead of overflowing the stack later.
        let operators = pieces.iter().filter(|p| is_operator(p.as_rule())).count();
        if operators > MAX_NESTING {
            let at = pieces.first().map_or(0, |p| self.start_of(p));
            self.diagnostics.push(diagnostics::nested_too_deeply(
                Span::new(at, at + 1),
                MAX_NESTING,
            ));
            return None;
        }
        // Most expressions are one operand: the Pratt parser would only hand it back.
        if let [only] = pieces.as_slice() {
            if !is_operator(only.as_rule()) {
                return self.primary(only.clone());
            }
        }
        let mut operands = Vec::new();
        for piece in &pieces {
            if !is_operator(piece.as_rule()) {
                operands.push(self.primary(piece.clone()));
            }
        }
        let mut operands = operands.into_iter();
        pratt()
            .map_primary(|_| operands.next().flatten())
            .map_prefix(|op, operand| {
                let operand = operand?;
                let span = self.span_of(&op).to(operand.span);
                Some(Expr {
                    kind: ExprKind::Not(Box::new(operand)),
                    span,
                })
            })
            .map_infix(|left, op, right| {
                let (left, right) = (left?, right?);
                let op = match op.as_rule() {
                    Rule::op_add => BinOp::Add,
                    Rule::op_and => BinOp::And,
                    Rule::op_or => BinOp::Or,
                    _ => BinOp::Compare(compare_op(op.as_str())),
                };
                let span = left.span.to(right.span);
                Some(Expr {
                    kind: ExprKind::Binary(op, Box::new(left), Box::new(right)),
                    span,
                })
            })
            .parse(pieces.into_iter())
    }

    fn primary(&mut self, pair: Pair<'_, Rule>) -> Option<Expr> {
        let span = self.span_of(&pair);
        let kind = match pair.as_rule() {
            Rule::expr => return self.expr(pair),
            Rule::paren => return self.expr(parts(pair).next()?),
            Rule::bool_lit => ExprKind::Bool(pair.as_str() == "true"),
            Rule::quantity => ExprKind::Quantity(self.quantity(pair)),
            Rule::string | Rule::block_string => ExprKind::Text(self.text_lit(pair)),
            Rule::list_expr => {
                let mut items = Vec::new();
                for item in parts(pair) {
                    items.push(self.expr(item)?);
                }
                ExprKind::List(items)
            }
            Rule::for_expr => {
                let mut inner = parts(pair);
                let var = self.ident(inner.next()?);
                let iter = Box::new(self.expr(inner.next()?)?);
                let mut max = None;
                let mut body = None;
                for rest in inner {
                    match rest.as_rule() {
                        Rule::for_max => max = parts(rest).next().map(|q| self.quantity(q)),
                        _ => body = self.block(rest),
                    }
                }
                ExprKind::For(Box::new(For {
                    var,
                    iter,
                    max,
                    body: body?,
                }))
            }
            Rule::if_expr => return self.if_chain(pair),
            Rule::access => return self.access(pair),
            _ => return None,
        };
        Some(Expr { kind, span })
    }

    /// `if a { } else if b { } ... else { }`: one flat pair whose `else if` arms nest
    /// from the right, each `if` spanning to the end of the chain.
    fn if_chain(&mut self, pair: Pair<'_, Rule>) -> Option<Expr> {
        let end = self.span_of(&pair).end;
        let mut arms = Vec::new();
        let mut last = None;
        let mut inner = pair.into_inner().filter(|p| p.as_rule() != Rule::directive);
        while let Some(part) = inner.next() {
            match part.as_rule() {
                Rule::kw_if => {
                    let start = self.start_of(&part);
                    arms.push((start, inner.next()?, inner.next()?));
                }
                Rule::block => last = Some(part),
                _ => {}
            }
        }
        // Each `else if` nests one level deeper, as the old recursive rule did.
        let too_deep = (MAX_NESTING + 1).saturating_sub(self.depth);
        if let Some(&(at, _, _)) = arms.get(too_deep) {
            self.diagnostics.push(diagnostics::nested_too_deeply(
                Span::new(at, at + 2),
                MAX_NESTING,
            ));
            return None;
        }
        // Arm k ends up k levels deeper in the tree, and is lowered at that depth, so
        // that what it nests itself still counts against the cap.
        let depth = self.depth;
        let mut lowered = Vec::with_capacity(arms.len());
        for (k, (start, cond, then)) in arms.into_iter().enumerate() {
            self.depth = depth + k;
            lowered.push((start, self.expr(cond), self.block(then)));
        }
        self.depth = depth + lowered.len().saturating_sub(1);
        let otherwise = self.block(last?);
        self.depth = depth;
        let mut otherwise = otherwise?;
        let mut arms = lowered.into_iter().rev().peekable();
        loop {
            let (start, cond, then) = arms.next()?;
            let chain = Expr {
                kind: ExprKind::If(Box::new(If {
                    cond: Box::new(cond?),
                    then: then?,
                    otherwise,
                })),
                span: Span::new(start, end),
            };
            if arms.peek().is_none() {
                return Some(chain);
            }
            otherwise = Block {
                lets: Vec::new(),
                span: chain.span,
                value: Box::new(chain),
            };
        }
    }

    /// `a`, `a.b.c`, `a(args)`, `a.b(args)`.
    fn access(&mut self, pair: Pair<'_, Rule>) -> Option<Expr> {
        let span = self.span_of(&pair);
        let mut names = Vec::new();
        let mut call_args = None;
        for part in parts(pair) {
            match part.as_rule() {
                Rule::name => names.push(self.ident(part)),
                _ => call_args = Some(part),
            }
        }
        if names.len() > MAX_NESTING {
            let at = names.get(MAX_NESTING).map_or(span, |n| n.span);
            self.diagnostics
                .push(diagnostics::nested_too_deeply(at, MAX_NESTING));
            return None;
        }
        let mut names = names.into_iter();
        let first = names.next()?;
        let Some(args_pair) = call_args else {
            let mut expr = Expr {
                span: first.span,
                kind: ExprKind::Ref(first),
            };
            for field in names {
                let span = expr.span.to(field.span);
                expr = Expr {
                    kind: ExprKind::Field(Box::new(expr), field),
                    span,
                };
            }
            return Some(expr);
        };
        let args_span = self.span_of(&args_pair);
        let mut args = Vec::new();
        for arg in parts(args_pair) {
            let arg_span = self.span_of(&arg);
            let mut inner: Vec<Pair<'_, Rule>> = parts(arg).collect();
            let value = self.expr(inner.pop()?)?;
            let name = inner.pop().map(|n| self.ident(n));
            args.push(Arg {
                name,
                value,
                span: arg_span,
            });
        }
        let rest: Vec<Ident> = names.collect();
        let mut rest = rest.into_iter();
        let method = rest.next();
        if let Some(extra) = rest.next() {
            self.diagnostics.push(diagnostics::syntax_error(
                Span::new(extra.span.start.saturating_sub(1), extra.span.end),
                "`(` after `skill.workflow`",
                &format!("`.{}`", extra.name),
            ));
        }
        Some(Expr {
            kind: ExprKind::Call(Box::new(Call {
                callee: first,
                method,
                args,
                args_span,
            })),
            span,
        })
    }

    fn quantity(&mut self, pair: Pair<'_, Rule>) -> Quantity {
        let span = self.span_of(&pair);
        let mut amount = 0.0;
        let mut unit = Unit::None;
        let tokens = pair.as_str().trim_end().ends_with("tokens");
        for part in pair.into_inner() {
            match part.as_rule() {
                Rule::number => amount = part.as_str().replace('_', "").parse().unwrap_or(0.0),
                Rule::unit => {
                    unit = match part.as_str() {
                        "ms" => Unit::Millis,
                        "k" => Unit::Kilo,
                        "M" => Unit::Mega,
                        "s" => Unit::Seconds,
                        "m" => Unit::Minutes,
                        _ => Unit::Hours,
                    }
                }
                _ => {}
            }
        }
        if tokens {
            match unit {
                Unit::None => unit = Unit::Tokens,
                Unit::Kilo => {
                    amount *= 1_000.0;
                    unit = Unit::Tokens;
                }
                Unit::Mega => {
                    amount *= 1_000_000.0;
                    unit = Unit::Tokens;
                }
                _ => self.diagnostics.push(diagnostics::invalid_quantity(
                    span,
                    "`tokens`",
                    "a count such as `80 tokens` or `2k tokens`",
                )),
            }
        }
        Quantity { amount, unit, span }
    }

    fn text_lit(&mut self, pair: Pair<'_, Rule>) -> Text {
        match pair.as_rule() {
            Rule::block_string => {
                let span = self.span_of(&pair);
                let inner = pair.into_inner().next();
                let (raw, start) = inner
                    .map(|p| (p.as_str(), self.start_of(&p)))
                    .unwrap_or(("", span.start + 3));
                text::block(raw, start, span)
            }
            _ => self.string(pair),
        }
    }

    fn string(&mut self, pair: Pair<'_, Rule>) -> Text {
        let span = self.span_of(&pair);
        let inner = pair.into_inner().next();
        let (raw, start) = inner
            .map(|p| (p.as_str(), self.start_of(&p)))
            .unwrap_or(("", span.start + 1));
        // A bad escape is reported and the text kept as written, so that one typo
        // neither hides the item that holds it nor makes its template look empty.
        text::escaped(raw, start, span).unwrap_or_else(|diagnostic| {
            self.diagnostics.push(*diagnostic);
            Text {
                value: raw.to_string(),
                span,
                map: vec![(0, start)],
            }
        })
    }
}

fn is_operator(rule: Rule) -> bool {
    matches!(
        rule,
        Rule::op_not
            | Rule::op_or
            | Rule::op_and
            | Rule::op_eq
            | Rule::op_ne
            | Rule::op_lt
            | Rule::op_le
            | Rule::op_gt
            | Rule::op_ge
            | Rule::op_add
    )
}

fn compare_op(op: &str) -> CompareOp {
    match op {
        "==" => CompareOp::Eq,
        "!=" => CompareOp::Ne,
        "<" => CompareOp::Lt,
        "<=" => CompareOp::Le,
        ">" => CompareOp::Gt,
        _ => CompareOp::Ge,
    }
}
