//! What a prompt template costs: how the size of its rendering follows from the sizes
//! of the values it is handed.
//!
//! The template walk (`templates.rs`) records a [`Cost`]: literal bytes, scalars and
//! references rendered once, and for every `{{#each}}` the cost of its body, which is
//! rendered once per element. [`price`] turns it into a [`Chain`] for one call, given
//! the worst-case size of each argument: a body is multiplied by the length of what
//! it iterates, so `{{#each items}}{{../task}}{{/each}}` counts `task` once per item.
//!
//! A reference to the element of an `#each` counts the whole list it comes from (the
//! elements, rendered once each, add up to it) times the loops around it that do not
//! walk that list, rather than `length × largest element`: a fold over children of
//! mixed summary budgets is counted at what they add up to.

use std::collections::BTreeMap;

use super::budget::{self, Bound, Chain};

/// Tokens assumed for the length of a list whose length nothing bounds (a list inside
/// a record that is not a model's answer).
pub const ASSUMED_LENGTH: u64 = budget::ASSUMED_LIST;

/// What a reference renders from.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Root {
    /// A parameter of the agent.
    Param(String),
    /// The element of the `#each` at this nesting level (1 is the outermost).
    Element(usize),
}

/// How often one root is rendered within one body: whole, or by its fields.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Renders {
    /// Rendered whole (or handed to a helper whole).
    pub whole: u64,
    /// Rendered by field: the first field of the path, and how often. Distinct fields
    /// are distinct parts of the value, so together they are at most the whole.
    pub fields: BTreeMap<String, u64>,
    /// Reads of a `result`'s full `output`, which its summary budget does not bound.
    pub outputs: u64,
}

impl Renders {
    /// How many times the whole value is rendered, at most.
    pub fn weight(&self) -> u64 {
        self.whole
            .saturating_add(self.fields.values().copied().max().unwrap_or(0))
    }
}

/// One `{{#each}}` block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loop {
    /// What it iterates, when that is a parameter or an element (not a helper's value).
    pub over: Option<Root>,
    /// Whether it iterates a field of `over` (`{{#each r.items}}`) rather than `over`.
    pub through_field: bool,
    /// When it iterates the fields of a record or `result`: how many there are.
    pub object_fields: Option<u64>,
    /// Written for messages: `items`, `this.items`.
    pub written: String,
    /// Rendered once per element.
    pub body: Cost,
}

/// The cost of a template, or of one `#each` body per element.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cost {
    /// Bytes of literal text.
    pub literal_bytes: u64,
    /// Tokens of scalars rendered (`@index`, `@key`, what `len` or `eq` gives).
    pub scalar_tokens: u64,
    /// What is rendered, by root.
    pub renders: BTreeMap<Root, Renders>,
    pub loops: Vec<Loop>,
}

impl Cost {
    /// Counts a reference to `root`, through `field` when it reads one.
    pub fn render(&mut self, root: Root, field: Option<&str>) {
        let renders = self.renders.entry(root).or_default();
        match field {
            Some("output") => renders.outputs = renders.outputs.saturating_add(1),
            Some(field) => {
                let count = renders.fields.entry(field.to_string()).or_default();
                *count = count.saturating_add(1);
            }
            None => renders.whole = renders.whole.saturating_add(1),
        }
    }

    /// Adds `other` (a second template of the same agent) to this one.
    pub fn absorb(&mut self, other: Cost) {
        self.literal_bytes = self.literal_bytes.saturating_add(other.literal_bytes);
        self.scalar_tokens = self.scalar_tokens.saturating_add(other.scalar_tokens);
        for (root, renders) in other.renders {
            let mine = self.renders.entry(root).or_default();
            mine.whole = mine.whole.saturating_add(renders.whole);
            mine.outputs = mine.outputs.saturating_add(renders.outputs);
            for (field, count) in renders.fields {
                let n = mine.fields.entry(field).or_default();
                *n = n.saturating_add(count);
            }
        }
        self.loops.extend(other.loops);
    }

    /// The parameters the template mentions anywhere, for the unused-parameter lint.
    pub fn mentions(&self, name: &str) -> bool {
        self.renders.contains_key(&Root::Param(name.to_string()))
            || self.loops.iter().any(|l| {
                l.over.as_ref() == Some(&Root::Param(name.to_string())) || l.body.mentions(name)
            })
    }
}

/// The worst-case size of an argument, as a template sees it.
#[derive(Clone, Debug, Default)]
pub struct Size {
    /// The whole value.
    pub whole: Bound,
    /// For a list: its length, when one is known.
    pub len: Option<u64>,
    /// For a list whose length is not known: a bound on it all the same, when its
    /// parts have one (a `for` joined with a model's list).
    pub len_bound: Option<u64>,
    /// For a list of lists: the length of its elements, when one is known.
    pub elem_len: Option<u64>,
    /// For a list: its largest element.
    pub elem: Bound,
    /// How many agent results it carries (each may have an `output` read).
    pub results: u64,
    /// Whether it is (or holds) a model's answer, whose lists its summary budget
    /// bounds: a list inside it has at most 2 × its tokens elements.
    pub answer: bool,
    /// Whether it is a list made by the workflow (a literal, a `for`, a parameter),
    /// whose bound is the sum of its elements' and not of its rendering.
    pub list: bool,
}

impl Size {
    /// A bound on its length, and what was assumed to get one.
    fn length(&self, written: &str) -> (u64, Option<String>) {
        if let Some(len) = self.len.or(self.len_bound) {
            return (len, None);
        }
        if self.answer {
            return (budget::most_elements_in(self.whole.total()), None);
        }
        (
            ASSUMED_LENGTH,
            Some(format!(
                "the length of `{written}` ({ASSUMED_LENGTH} elements assumed)"
            )),
        )
    }
}

/// The rendered size of a template for one call, by part.
#[derive(Debug, Default)]
pub struct Priced {
    pub chain: Chain,
    /// What had to be assumed (W008), beyond what the arguments themselves assume.
    pub assumed: Vec<String>,
    /// The arguments whose full `output` the template reads.
    pub reads_output: Vec<String>,
}

/// One enclosing `#each` while pricing.
struct Level {
    /// The parameter whose value it walks, at the base of a chain of nested loops.
    base: Option<String>,
    /// The levels (1-based) of the loops that walk the base down to this one.
    chain: Vec<usize>,
    /// Its length bound.
    len: u64,
    /// The size of one element, for loops nested in it that walk the element.
    elem: Size,
}

/// Prices `cost` for one call, with `size_of` giving each argument's worst case.
pub fn price(cost: &Cost, size_of: &dyn Fn(&str) -> Option<Size>) -> Priced {
    let mut pricer = Pricer {
        size_of,
        parts: Vec::new(),
        literal_bytes: 0,
        scalar_tokens: 0,
        priced: Priced::default(),
    };
    pricer.body(cost, &mut Vec::new());
    let Pricer {
        parts,
        literal_bytes,
        scalar_tokens,
        mut priced,
        ..
    } = pricer;
    for (label, bound) in parts {
        priced.chain.push(bound, label);
    }
    let literal_tokens = u64::try_from(literal_bytes.div_ceil(4)).unwrap_or(u64::MAX);
    priced.chain.push(
        Bound::of(literal_tokens.saturating_add(scalar_tokens)),
        "template",
    );
    priced
}

struct Pricer<'s> {
    size_of: &'s dyn Fn(&str) -> Option<Size>,
    /// Labelled parts, in the order first met.
    parts: Vec<(String, Bound)>,
    /// Wide, so that bytes past 2^64 still count as tokens past 2^64 / 4.
    literal_bytes: u128,
    scalar_tokens: u64,
    priced: Priced,
}

impl Pricer<'_> {
    fn add(&mut self, label: &str, bound: Bound) {
        if bound.total() == 0 && bound.assumed.is_empty() {
            return;
        }
        match self.parts.iter_mut().find(|(l, _)| l == label) {
            Some((_, existing)) => *existing = std::mem::take(existing).plus(bound),
            None => self.parts.push((label.to_string(), bound)),
        }
    }

    /// The product of the lengths of the enclosing loops, except those in `skip`.
    fn repeats(levels: &[Level], skip: &[usize]) -> u64 {
        levels
            .iter()
            .enumerate()
            .filter(|(i, _)| !skip.contains(&(i + 1)))
            .fold(1u64, |product, (_, level)| {
                product.saturating_mul(level.len)
            })
    }

    fn body(&mut self, cost: &Cost, levels: &mut Vec<Level>) {
        let all = Self::repeats(levels, &[]);
        self.literal_bytes = self
            .literal_bytes
            .saturating_add(u128::from(cost.literal_bytes) * u128::from(all));
        self.scalar_tokens = self
            .scalar_tokens
            .saturating_add(cost.scalar_tokens.saturating_mul(all));
        for (root, renders) in &cost.renders {
            let (base, chain) = match root {
                Root::Param(name) => (Some(name.clone()), Vec::new()),
                Root::Element(level) => match at(levels, *level) {
                    Some(at) => (at.base.clone(), at.chain.clone()),
                    None => (None, Vec::new()),
                },
            };
            let Some(base) = base else { continue };
            let Some(size) = (self.size_of)(&base) else {
                continue;
            };
            // Each time the loops that do not walk the base repeat, the references
            // render at most the base whole, `weight` times.
            let times = Self::repeats(levels, &chain);
            let weight = renders.weight().saturating_mul(times);
            let mut whole = size.whole.clone().times(weight);
            // A list rendered whole shows its separators, which its bound leaves out:
            // once per rendering of it, or of an element that is a list.
            let rendered = match root {
                Root::Param(_) => Some((separators(&size), times)),
                Root::Element(level) => {
                    at(levels, *level).map(|at| (separators(&at.elem), Self::repeats(levels, &[])))
                }
            };
            if let Some((separators, times)) = rendered.filter(|_| renders.whole > 0) {
                whole = whole.plus(separators.times(renders.whole.saturating_mul(times)));
            }
            // Lists anywhere inside a model's answer render up to half as long again as
            // their JSON, however they are reached (`{{s.nums}}`, a row of rows).
            if size.answer && !size.list && !renders.fields.is_empty() {
                let half = Bound::of(size.whole.total().div_ceil(2));
                whole = whole.plus(half.times(weight));
            }
            self.add(&base, whole);
            if renders.outputs > 0 && size.results > 0 {
                let outputs = budget::ASSUMED_TEXT
                    .saturating_add(budget::FENCE_TOKENS)
                    .saturating_mul(size.results)
                    .saturating_mul(renders.outputs.saturating_mul(times));
                self.add(&format!("{base}.output"), Bound::of(outputs));
                if !self.priced.reads_output.contains(&base) {
                    self.priced.reads_output.push(base.clone());
                }
            }
        }
        for each in &cost.loops {
            let level = self.level(each, levels);
            levels.push(level);
            self.body(&each.body, levels);
            levels.pop();
        }
    }

    /// What the loop `each`, nested in `levels`, walks.
    fn level(&mut self, each: &Loop, levels: &[Level]) -> Level {
        let here = levels.len() + 1;
        let (base, mut chain, size) = match &each.over {
            Some(Root::Param(name)) => (Some(name.clone()), Vec::new(), (self.size_of)(name)),
            Some(Root::Element(level)) => match at(levels, *level) {
                Some(at) => (at.base.clone(), at.chain.clone(), Some(at.elem.clone())),
                None => (None, Vec::new(), None),
            },
            None => (None, Vec::new(), None),
        };
        chain.push(here);
        let size = size.unwrap_or_default();
        let (len, assumed) = if let Some(fields) = each.object_fields {
            (fields, None)
        } else if each.through_field {
            // A list inside a record: its length is bounded only by the record's.
            let inner = Size {
                len: None,
                len_bound: None,
                ..size.clone()
            };
            inner.length(&each.written)
        } else if base.is_none() {
            // A helper's value: nothing bounds its length.
            Size::default().length(&each.written)
        } else {
            size.length(&each.written)
        };
        if let Some(assumed) = assumed {
            self.priced.assumed.push(assumed);
        }
        let elem_whole = if each.object_fields.is_some() || each.through_field {
            size.whole.clone()
        } else {
            size.elem.clone()
        };
        let elem = Size {
            elem: elem_whole.element(),
            whole: elem_whole,
            len: size.elem_len,
            len_bound: None,
            elem_len: None,
            results: size.results,
            answer: size.answer,
            list: size.list && size.elem_len.is_some(),
        };
        Level {
            base,
            chain,
            len,
            elem,
        }
    }
}

/// The loop at `level` (1 is the outermost) among `levels`.
fn at(levels: &[Level], level: usize) -> Option<&Level> {
    level.checked_sub(1).and_then(|i| levels.get(i))
}

/// What a list rendered whole adds to its elements: `[`, `]` and `, ` between them,
/// at every depth. A list the workflow made counts 4 bytes per element and per inner
/// list (its leaves are its bound's counts). A model's answer is bounded by its JSON,
/// which is longer than its rendering but for one byte per element (`1,` renders
/// `1, `): at most half a token per token of the answer.
fn separators(size: &Size) -> Bound {
    if !size.list {
        return Bound::default();
    }
    if size.answer && size.len.is_none() {
        return Bound::of(size.whole.total().div_ceil(2));
    }
    let len = size.len.unwrap_or(ASSUMED_LENGTH);
    let leaves = size
        .whole
        .terms
        .iter()
        .fold(0u64, |sum, term| sum.saturating_add(term.count))
        .max(len);
    let inner_lists = len.saturating_mul(size.elem_len.map_or(0, |n| n.saturating_add(1)));
    let bytes = leaves
        .saturating_add(inner_lists)
        .saturating_mul(4)
        .saturating_add(2);
    Bound::of(budget::tokens_of_bytes_u64(bytes))
}
