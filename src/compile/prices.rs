//! What models cost, for the worst case of a plan: a small built-in table (US dollars
//! per million tokens, list prices when this table was written) that a project extends
//! or overrides with `.pai/prices.yaml` or `--prices FILE`:
//!
//! ```yaml
//! # model name: dollars per million input and output tokens
//! my-finetune: { input: 1.0, output: 4.0 }
//! sonnet: { input: 3.0, output: 15.0 }
//! ```
//!
//! A model matches the entry with its exact name, else the longest entry whose name it
//! contains (`claude-sonnet-4-5` matches `sonnet`).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

/// US dollars per million tokens.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub input: f64,
    pub output: f64,
}

impl Price {
    /// The cost of `input` and `output` tokens.
    pub fn cost(self, input: u64, output: u64) -> f64 {
        (input as f64 * self.input + output as f64 * self.output) / 1_000_000.0
    }
}

/// The price table.
#[derive(Clone, Debug)]
pub struct Prices {
    table: BTreeMap<String, Price>,
}

const BUILTIN: &[(&str, f64, f64)] = &[
    ("opus", 15.0, 75.0),
    ("sonnet", 3.0, 15.0),
    ("haiku", 1.0, 5.0),
    ("gpt-4o", 2.5, 10.0),
    ("gpt-4o-mini", 0.15, 0.6),
    ("gpt-4.1", 2.0, 8.0),
    ("gpt-4.1-mini", 0.4, 1.6),
    ("o3", 2.0, 8.0),
    ("gpt-5", 1.25, 10.0),
    ("gpt-5-mini", 0.25, 2.0),
    ("gemini-2.5-pro", 1.25, 10.0),
    ("gemini-2.5-flash", 0.3, 2.5),
];

impl Default for Prices {
    fn default() -> Prices {
        Prices {
            table: BUILTIN
                .iter()
                .map(|(name, input, output)| {
                    (
                        name.to_string(),
                        Price {
                            input: *input,
                            output: *output,
                        },
                    )
                })
                .collect(),
        }
    }
}

impl Prices {
    /// Adds (or replaces) the entries of a YAML file.
    pub fn extend_from(&mut self, path: &Path) -> Result<(), String> {
        let text = crate::source::read_text(path)?;
        let entries: BTreeMap<String, Price> = serde_yaml::from_str(&text)
            .map_err(|e| format!("`{}` is not a price table: {e}", path.display()))?;
        for (name, price) in entries {
            if !(price.input.is_finite()
                && price.output.is_finite()
                && price.input >= 0.0
                && price.output >= 0.0)
            {
                return Err(format!(
                    "`{}`: the price of `{name}` must be a number of dollars, 0 or more",
                    path.display()
                ));
            }
            self.table.insert(name, price);
        }
        Ok(())
    }

    /// The price of `model`, if known.
    pub fn of(&self, model: &str) -> Option<Price> {
        if let Some(price) = self.table.get(model) {
            return Some(*price);
        }
        self.table
            .iter()
            .filter(|(name, _)| model.contains(name.as_str()))
            .max_by_key(|(name, _)| name.len())
            .map(|(_, price)| *price)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_match_exactly_or_by_longest_family_name() {
        let prices = Prices::default();
        assert_eq!(prices.of("sonnet").map(|p| p.input), Some(3.0));
        assert_eq!(prices.of("claude-sonnet-4-5").map(|p| p.output), Some(15.0));
        assert_eq!(prices.of("gpt-4o-mini-2024").map(|p| p.input), Some(0.15));
        assert_eq!(prices.of("llama3"), None);
    }

    #[test]
    fn cost_is_per_million_tokens() {
        let price = Price {
            input: 3.0,
            output: 15.0,
        };
        assert!((price.cost(1_000_000, 100_000) - 4.5).abs() < 1e-9);
    }
}
