//! What a real model is told about a structured answer (`check::shape`), put together
//! for a request.

pub use crate::check::shape::json_schema;

use super::{Request, Shape};

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
    crate::check::shape::instructions(&request.shape, request.max_items)
}
