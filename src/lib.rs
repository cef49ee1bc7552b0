//! `pai`: a compiler and runtime for a small declarative language that describes how AI
//! agents work together. This crate is the library behind the `pai` binary.
//!
//! The pipeline: [`syntax`] parses a `.pai` file into an AST, [`check`] proves names,
//! types, templates, recursion bounds and context budgets, and [`diagnostics`] holds
//! every message the tool can print. [`report`] renders them for humans and tools.

pub mod check;
pub mod cli;
pub mod compile;
pub mod diagnostics;
pub mod interop;
mod parallel;
pub mod process;
pub mod report;
pub mod route;
pub mod run;
pub mod source;
pub mod stdlib;
pub mod syntax;
