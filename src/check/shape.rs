//! The shape of a structured answer, and what a real model is told about it: the JSON
//! Schema of its shape, sent as `response_format` where the API takes one and written
//! into the prompt everywhere, since agent CLIs have no such field.
//!
//! It lives with the checker because the checker counts that text against the agent's
//! `context` (DESIGN §2), and the run sends the same text: one source for both.

use serde_json::{json, Value};

use super::modules::{ModuleId, Program};
use super::scope::{resolve_type_in, ItemKind, Scope};
use super::types::Type;
use crate::syntax::ast::{Item, TypeExpr};

/// The shape a structured answer must have.
#[derive(Clone, Debug, PartialEq)]
pub enum Shape {
    Text,
    Path,
    Number,
    Bool,
    Duration,
    /// A list, and for `list<text max N>` the N tokens each of its texts may have.
    List {
        element: Box<Shape>,
        text_max: Option<u64>,
    },
    Record(Vec<(String, Shape)>),
    /// A `result`: free text whose first line is the summary.
    Result,
}

impl Shape {
    /// A list of `element` with no bound on each.
    pub fn list(element: Shape) -> Shape {
        Shape::List {
            element: Box::new(element),
            text_max: None,
        }
    }
}

/// Record types nested deeper than this answer as text: a record that holds itself
/// would otherwise have no end.
const MAX_NESTING: usize = 16;

/// The shape a provider must answer in for a value of type `ty`, written in `module` as
/// `declared` (whose `list<text max N>` bounds its texts).
pub(crate) fn shape_of(
    program: &Program,
    scopes: &[Scope],
    module: ModuleId,
    ty: &Type,
    declared: Option<&TypeExpr>,
) -> Shape {
    shape_in(program, scopes, module, ty, declared, 0)
}

fn shape_in(
    program: &Program,
    scopes: &[Scope],
    module: ModuleId,
    ty: &Type,
    declared: Option<&TypeExpr>,
    depth: usize,
) -> Shape {
    if depth > MAX_NESTING {
        return Shape::Text;
    }
    match ty {
        Type::Result | Type::Unknown | Type::EmptyList => Shape::Result,
        Type::Text => Shape::Text,
        Type::Path => Shape::Path,
        Type::Number => Shape::Number,
        Type::Bool => Shape::Bool,
        Type::Duration => Shape::Duration,
        Type::List(element) => {
            let declared_element = match declared {
                Some(TypeExpr::List(element, _, _)) => Some(&**element),
                _ => None,
            };
            let element = match shape_in(
                program,
                scopes,
                module,
                element,
                declared_element,
                depth + 1,
            ) {
                Shape::Result => Shape::Text,
                shape => shape,
            };
            let text_max = declared.and_then(TypeExpr::text_element_max);
            Shape::List {
                element: Box::new(element),
                text_max,
            }
        }
        Type::Record(name) => {
            let binding = scopes.get(module.0).and_then(|s| s.names.get(name));
            let Some(binding) = binding.filter(|b| b.kind == ItemKind::Type) else {
                return Shape::Text;
            };
            let items = &program.module(binding.item.module).ast.items;
            let Some(Item::Type(decl)) = items.get(binding.item.index) else {
                return Shape::Text;
            };
            let declared_in = binding.item.module;
            Shape::Record(
                decl.fields
                    .iter()
                    .map(|field| {
                        let ty = resolve_type_in(scopes, declared_in, &field.ty);
                        let shape = shape_in(
                            program,
                            scopes,
                            declared_in,
                            &ty,
                            Some(&field.ty),
                            depth + 1,
                        );
                        (field.name.name.clone(), shape)
                    })
                    .collect(),
            )
        }
    }
}

/// The JSON Schema of `shape`.
pub fn json_schema(shape: &Shape) -> Value {
    match shape {
        Shape::Text | Shape::Path | Shape::Duration | Shape::Result => json!({ "type": "string" }),
        Shape::Number => json!({ "type": "number" }),
        Shape::Bool => json!({ "type": "boolean" }),
        Shape::List { element, text_max } => {
            let mut items = json_schema(element);
            // About four characters a token: the run holds each text to the tokens.
            if let (Some(max), Some(object), Shape::Text) =
                (text_max, items.as_object_mut(), &**element)
            {
                object.insert("maxLength".to_string(), json!(max.saturating_mul(4)));
            }
            json!({ "type": "array", "items": items })
        }
        Shape::Record(fields) => {
            let properties: serde_json::Map<String, Value> = fields
                .iter()
                .map(|(name, field)| (name.clone(), json_schema(field)))
                .collect();
            let required: Vec<&str> = fields.iter().map(|(name, _)| name.as_str()).collect();
            json!({
                "type": "object",
                "properties": properties,
                "required": required,
                "additionalProperties": false,
            })
        }
    }
}

/// What follows the prompt for an answer of `shape`: nothing for a `result`, else the
/// JSON Schema it must match, with the most elements a list may have (`max_items`, the
/// `for` it feeds).
pub fn instructions(shape: &Shape, max_items: Option<usize>) -> String {
    if *shape == Shape::Result {
        return String::new();
    }
    let mut schema = json_schema(shape);
    if let (Some(max), Some(object)) = (max_items, schema.as_object_mut()) {
        object.insert("maxItems".to_string(), json!(max));
    }
    format!(
        "\n\nAnswer with JSON only, no prose and no code fence, matching this JSON Schema:\n{schema}"
    )
}

/// The most bytes [`instructions`] can add for an answer of `shape`, whatever `for` its
/// list feeds: what the checker counts, before the run knows the `max_items`.
pub fn instructions_bound(shape: &Shape) -> usize {
    let max_items = matches!(shape, Shape::List { .. }).then_some(usize::MAX);
    instructions(shape, max_items).len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_lists_become_object_and_array_schemas() {
        let shape = Shape::list(Shape::Record(vec![
            ("name".to_string(), Shape::Text),
            ("weight".to_string(), Shape::Number),
        ]));
        assert_eq!(
            json_schema(&shape),
            json!({
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": { "name": { "type": "string" }, "weight": { "type": "number" } },
                    "required": ["name", "weight"],
                    "additionalProperties": false,
                }
            })
        );
    }

    #[test]
    fn the_bound_holds_for_every_for_max() {
        let shape = Shape::List {
            element: Box::new(Shape::Text),
            text_max: Some(u64::MAX),
        };
        let bound = instructions_bound(&shape);
        for max_items in [None, Some(0), Some(7), Some(1_000), Some(usize::MAX)] {
            assert!(instructions(&shape, max_items).len() <= bound);
        }
        assert_eq!(instructions_bound(&Shape::Result), 0);
        assert!(instructions_bound(&Shape::Number) > 0);
    }

    #[test]
    fn a_bounded_text_anywhere_is_given_its_most_characters() {
        let steps = Shape::List {
            element: Box::new(Shape::Text),
            text_max: Some(5),
        };
        let shape = Shape::Record(vec![("steps".to_string(), steps)]);
        assert_eq!(
            json_schema(&shape)["properties"]["steps"],
            json!({ "type": "array", "items": { "type": "string", "maxLength": 20 } })
        );
    }
}
