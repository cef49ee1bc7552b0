//! The abstract syntax tree. Every node carries the [`Span`] it was parsed from.

use crate::source::Span;

/// A name as written, with where it was written.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

/// A parsed `.pai` file.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct File {
    pub items: Vec<Item>,
    /// `# pai:allow(CODE)` directives, in source order.
    pub allows: Vec<Allow>,
}

/// `# pai:allow(W001, W002)`: silences the listed warnings on the next line.
#[derive(Clone, Debug, PartialEq)]
pub struct Allow {
    pub codes: Vec<Ident>,
    pub span: Span,
}

/// A top-level item.
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    Use(Use),
    Type(TypeDecl),
    Agent(Agent),
    Workflow(Workflow),
    Skill(Skill),
    Protocol(Protocol),
    Provider(Provider),
}

/// `use pai-council` or `use "../agents/coding.pai"`.
#[derive(Clone, Debug, PartialEq)]
pub struct Use {
    pub target: UseTarget,
    pub span: Span,
}

/// What a top-level `use` names.
#[derive(Clone, Debug, PartialEq)]
pub enum UseTarget {
    /// A skill from the search path or the standard library.
    Skill(Ident),
    /// A file, relative to the file that uses it.
    File(Text),
    /// `use when ...` outside a skill: kept so the checker can say where it belongs.
    MisplacedWhen(Span),
}

/// `type Finding { claim: text, votes: number }`
#[derive(Clone, Debug, PartialEq)]
pub struct TypeDecl {
    pub name: Ident,
    pub fields: Vec<FieldDecl>,
    pub span: Span,
}

/// One field of a record type.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldDecl {
    pub name: Ident,
    pub ty: TypeExpr,
}

/// A type as written: `text`, `list<result>`, `list<text max 200>`, `Finding`.
#[derive(Clone, Debug, PartialEq)]
pub enum TypeExpr {
    Named(Ident),
    /// The element type, and the bound of each element in tokens, if written.
    List(Box<TypeExpr>, Option<Quantity>, Span),
}

impl TypeExpr {
    /// Where the type was written.
    pub fn span(&self) -> Span {
        match self {
            TypeExpr::Named(ident) => ident.span,
            TypeExpr::List(_, _, span) => *span,
        }
    }

    /// For `list<T max N>`: N, the tokens each element may have.
    pub fn element_max(&self) -> Option<u64> {
        match self {
            TypeExpr::List(_, Some(max), _) => max.as_count(),
            _ => None,
        }
    }

    /// For `list<text max N>`: N, the tokens each text may have (a model is told it, and
    /// the run holds its answers to it).
    pub fn text_element_max(&self) -> Option<u64> {
        match self {
            TypeExpr::List(element, _, _) if element.is_text() => self.element_max(),
            _ => None,
        }
    }

    /// Whether it is `text`.
    fn is_text(&self) -> bool {
        matches!(self, TypeExpr::Named(name) if name.name == "text")
    }
}

/// A parameter of an agent or workflow: `file: path`, `request: text max 2k`, `root: path = "."`.
#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    pub name: Ident,
    pub ty: TypeExpr,
    /// The declared size bound of a text parameter, in tokens.
    pub max: Option<Quantity>,
    /// Boxed: most parameters have none.
    pub default: Option<Box<Expr>>,
    pub span: Span,
}

/// `agent coder(task: text) -> result { model "sonnet" ... }`
#[derive(Clone, Debug, PartialEq)]
pub struct Agent {
    pub name: Ident,
    pub params: Vec<Param>,
    pub returns: Option<TypeExpr>,
    pub settings: Vec<Setting>,
    pub span: Span,
}

impl Agent {
    /// The first setting called `key`.
    pub fn setting(&self, key: &str) -> Option<&Setting> {
        self.settings.iter().find(|s| s.key.name == key)
    }

    /// The tokens each text of its answer may have, when it returns `list<text max N>`.
    pub fn answer_element_max(&self) -> Option<u64> {
        self.returns.as_ref().and_then(TypeExpr::text_element_max)
    }
}

/// `key value` inside an agent, skill, protocol or provider.
#[derive(Clone, Debug, PartialEq)]
pub struct Setting {
    pub key: Ident,
    pub value: Value,
    pub span: Span,
}

/// The value of a setting.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Quantity(Quantity),
    Text(Text),
    List(Vec<Value>, Span),
    /// `env("NAME")`: read from the environment at run time, never stored.
    Env(Text, Span),
    Name(Ident),
}

impl Value {
    /// The text of a `"..."` value.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(text) => Some(&text.value),
            _ => None,
        }
    }

    /// The texts and names of a list (`tools [Read, "Edit"]`), in order; nothing for a
    /// value that is no list.
    pub fn words(&self) -> Vec<String> {
        match self {
            Value::List(items, _) => items
                .iter()
                .filter_map(|item| match item {
                    Value::Text(text) => Some(text.value.clone()),
                    Value::Name(name) => Some(name.name.clone()),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Where the value was written.
    pub fn span(&self) -> Span {
        match self {
            Value::Quantity(q) => q.span,
            Value::Text(t) => t.span,
            Value::List(_, span) | Value::Env(_, span) => *span,
            Value::Name(ident) => ident.span,
        }
    }
}

/// A number with an optional unit: `2`, `200k`, `80 tokens`, `10m`, `250ms`.
#[derive(Clone, Debug, PartialEq)]
pub struct Quantity {
    pub amount: f64,
    pub unit: Unit,
    pub span: Span,
}

/// The unit written after a number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    None,
    /// `tokens`, with or without `k`/`M` before it (already multiplied in).
    Tokens,
    Kilo,
    Mega,
    Millis,
    Seconds,
    Minutes,
    Hours,
}

impl Quantity {
    /// The value as a count of tokens (or items): `N`, `Nk`, `NM`, `N tokens`.
    pub fn as_count(&self) -> Option<u64> {
        let factor = match self.unit {
            Unit::None | Unit::Tokens => 1.0,
            Unit::Kilo => 1_000.0,
            Unit::Mega => 1_000_000.0,
            _ => return None,
        };
        let value = self.amount * factor;
        (value.fract() == 0.0 && value >= 0.0 && value < u64::MAX as f64).then_some(value as u64)
    }

    /// The value as a number, its `k` or `M` multiplied in (`1.5k` is 1500); a duration
    /// is its number as written.
    pub fn as_number(&self) -> f64 {
        match self.unit {
            Unit::Kilo => self.amount * 1_000.0,
            Unit::Mega => self.amount * 1_000_000.0,
            _ => self.amount,
        }
    }

    /// The value as a duration: `ms`, `s`, `m`, `h`.
    pub fn as_duration(&self) -> Option<std::time::Duration> {
        let seconds = match self.unit {
            Unit::Millis => self.amount / 1_000.0,
            Unit::Seconds => self.amount,
            Unit::Minutes => self.amount * 60.0,
            Unit::Hours => self.amount * 3_600.0,
            _ => return None,
        };
        std::time::Duration::try_from_secs_f64(seconds).ok()
    }

    /// Whether the unit makes this a duration.
    pub fn is_duration(&self) -> bool {
        matches!(
            self.unit,
            Unit::Millis | Unit::Seconds | Unit::Minutes | Unit::Hours
        )
    }
}

/// A text literal after escapes and indentation stripping, with a map back to the source.
#[derive(Clone, Debug, PartialEq)]
pub struct Text {
    pub value: String,
    pub span: Span,
    /// `(offset in value, offset in source)` at each point where the two stop moving
    /// together (an escape, a stripped indentation). Sorted by value offset.
    pub map: Vec<(usize, usize)>,
}

impl Text {
    /// The source offset of byte `offset` of the value.
    pub fn source_offset(&self, offset: usize) -> usize {
        let index = self.map.partition_point(|&(value, _)| value <= offset);
        match index.checked_sub(1).and_then(|i| self.map.get(i)) {
            Some(&(value, source)) => source + (offset - value),
            None => self.span.start,
        }
    }

    /// The source span of `range` of the value.
    pub fn source_span(&self, start: usize, end: usize) -> Span {
        let from = self.source_offset(start);
        let to = if end > start {
            self.source_offset(end - 1) + 1
        } else {
            from
        };
        Span::new(from, to.min(self.span.end))
    }
}

/// `skill pai-orchestrate { description "..." use when "..." workflow execute }`
#[derive(Clone, Debug, PartialEq)]
pub struct Skill {
    pub name: Ident,
    pub triggers: Vec<Text>,
    /// The span of each `use when` line.
    pub use_when: Vec<Span>,
    /// The skill's workflows; the first is the default.
    pub workflows: Vec<Ident>,
    pub settings: Vec<Setting>,
    pub span: Span,
}

/// `protocol tree-orchestration { max depth 5 ... }`
#[derive(Clone, Debug, PartialEq)]
pub struct Protocol {
    pub name: Ident,
    pub rules: Vec<ProtocolRule>,
    pub settings: Vec<Setting>,
    pub span: Span,
}

/// A checkable rule of a protocol.
#[derive(Clone, Debug, PartialEq)]
pub enum ProtocolRule {
    /// `max depth 5`, `max fanout 16`
    Max {
        what: Ident,
        limit: Quantity,
        span: Span,
    },
    /// `delegate when reads >= 2`
    Delegate {
        what: Ident,
        op: CompareOp,
        limit: Quantity,
        span: Span,
    },
}

/// `provider local { kind "openai" url "..." }`
#[derive(Clone, Debug, PartialEq)]
pub struct Provider {
    pub name: Ident,
    pub settings: Vec<Setting>,
    pub span: Span,
}

/// `workflow name(params) -> T depth N follows P { lets; return }`
#[derive(Clone, Debug, PartialEq)]
pub struct Workflow {
    pub name: Ident,
    pub params: Vec<Param>,
    pub returns: Option<TypeExpr>,
    /// Every `depth N` written; more than one is an error the checker reports.
    pub depth: Vec<Quantity>,
    /// Every `follows P` written; more than one is an error the checker reports.
    pub follows: Vec<Ident>,
    pub lets: Vec<Let>,
    /// Every `return` written; anything but one is an error the checker reports.
    pub returns_stmts: Vec<Return>,
    pub span: Span,
}

/// `let name = expr after a, b`
#[derive(Clone, Debug, PartialEq)]
pub struct Let {
    pub name: Ident,
    pub value: Expr,
    pub after: Vec<Ident>,
    pub span: Span,
}

/// `return expr after a`
#[derive(Clone, Debug, PartialEq)]
pub struct Return {
    pub value: Expr,
    pub after: Vec<Ident>,
    pub span: Span,
}

/// `{ let ...; expr }`: the body of a `for` or an `if` branch.
#[derive(Clone, Debug, PartialEq)]
pub struct Block {
    pub lets: Vec<Let>,
    pub value: Box<Expr>,
    pub span: Span,
}

/// An expression and where it was written.
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

/// The kinds of expression.
#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    Text(Text),
    Quantity(Quantity),
    Bool(bool),
    List(Vec<Expr>),
    /// A binding, parameter or loop variable.
    Ref(Ident),
    /// `value.field`
    Field(Box<Expr>, Ident),
    // Calls, `for` and `if` are boxed: most expressions are names, fields and texts,
    // and the largest variant inline would set every expression's size (144 bytes
    // instead of 88).
    Call(Box<Call>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    For(Box<For>),
    If(Box<If>),
}

/// `callee(args)` or `skill.workflow(args)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    pub callee: Ident,
    pub method: Option<Ident>,
    pub args: Vec<Arg>,
    /// The span of the argument list, parentheses included.
    pub args_span: Span,
}

/// `name: value`, or a positional value for builtins.
#[derive(Clone, Debug, PartialEq)]
pub struct Arg {
    pub name: Option<Ident>,
    pub value: Expr,
    pub span: Span,
}

/// `for var in iter max N { body }`
#[derive(Clone, Debug, PartialEq)]
pub struct For {
    pub var: Ident,
    pub iter: Box<Expr>,
    pub max: Option<Quantity>,
    pub body: Block,
}

/// `if cond { then } else { otherwise }`
#[derive(Clone, Debug, PartialEq)]
pub struct If {
    pub cond: Box<Expr>,
    pub then: Block,
    pub otherwise: Block,
}

/// Binary operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Add,
    And,
    Or,
    Compare(CompareOp),
}

/// Comparison operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl std::fmt::Display for CompareOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CompareOp::Eq => "==",
            CompareOp::Ne => "!=",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
        })
    }
}
