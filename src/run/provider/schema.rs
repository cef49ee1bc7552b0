//! What a real model is told about a structured answer: the JSON Schema of its shape,
//! sent as `response_format` where the API takes one and written into the prompt
//! everywhere, since agent CLIs have no such field.

use serde_json::{json, Value};

use super::{Request, Shape};

/// The JSON Schema of `shape`.
pub fn json_schema(shape: &Shape) -> Value {
    match shape {
        Shape::Text | Shape::Path | Shape::Duration | Shape::Result => json!({ "type": "string" }),
        Shape::Number => json!({ "type": "number" }),
        Shape::Bool => json!({ "type": "boolean" }),
        Shape::List(element) => json!({ "type": "array", "items": json_schema(element) }),
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

/// The prompt a real model receives: the rendered prompt, then for a structured answer
/// the JSON it must answer with.
pub fn prompt_with_instructions(request: &Request) -> String {
    if request.shape == Shape::Result {
        return request.prompt.clone();
    }
    format!("{}{}", request.prompt, instructions(request))
}

/// What [`prompt_with_instructions`] adds after the prompt: nothing for a `result`.
pub fn instructions(request: &Request) -> String {
    if request.shape == Shape::Result {
        return String::new();
    }
    let mut schema = json_schema(&request.shape);
    if let (Some(max), Some(object)) = (request.max_items, schema.as_object_mut()) {
        object.insert("maxItems".to_string(), json!(max));
    }
    // About four characters a token: the run holds each text to the tokens.
    if let (Some(max), Some(items)) = (
        request.max_element_tokens,
        schema
            .get_mut("items")
            .and_then(|items| items.as_object_mut()),
    ) {
        items.insert("maxLength".to_string(), json!(max.saturating_mul(4)));
    }
    format!(
        "\n\nAnswer with JSON only, no prose and no code fence, matching this JSON Schema:\n{schema}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_lists_become_object_and_array_schemas() {
        let shape = Shape::List(Box::new(Shape::Record(vec![
            ("name".to_string(), Shape::Text),
            ("weight".to_string(), Shape::Number),
        ])));
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
}
