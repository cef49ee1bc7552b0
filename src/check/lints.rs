//! Lints over whole files: unused agents, types and `use`s, skills without triggers,
//! triggers shared by two skills.

use foldhash::{HashMap, HashMapExt};

use super::modules::ModuleId;
use super::scope::ItemRef;
use super::Checker;
use crate::diagnostics;
use crate::source::{FileId, Span};
use crate::syntax::ast::{Item, TypeExpr};

impl Checker<'_> {
    pub(super) fn lint(&mut self) {
        let program = self.program;
        let mut triggers: HashMap<String, (String, FileId, Span)> = HashMap::new();
        for (id, module) in program.modules.iter().enumerate() {
            let module_id = ModuleId(id);
            // Files without workflows or skills are libraries: their agents and types
            // are there to be used by others.
            let is_program = module
                .ast
                .items
                .iter()
                .any(|item| matches!(item, Item::Workflow(_) | Item::Skill(_)));
            let mut type_uses: Vec<String> = Vec::new();
            for item in &module.ast.items {
                let mut note = |ty: &TypeExpr| collect_type_names(ty, &mut type_uses);
                match item {
                    Item::Agent(a) => {
                        a.params.iter().for_each(|p| note(&p.ty));
                        a.returns.iter().for_each(&mut note);
                    }
                    Item::Workflow(w) => {
                        w.params.iter().for_each(|p| note(&p.ty));
                        w.returns.iter().for_each(&mut note);
                    }
                    Item::Type(t) => t.fields.iter().for_each(|f| note(&f.ty)),
                    _ => {}
                }
            }
            for (index, item) in module.ast.items.iter().enumerate() {
                let this = ItemRef {
                    module: module_id,
                    index,
                };
                match item {
                    Item::Agent(agent) if is_program && !self.used_items.contains(&this) => {
                        self.emit(
                            module_id,
                            diagnostics::unused_item(agent.name.span, "agent", &agent.name.name),
                        );
                    }
                    Item::Type(decl) if is_program && !type_uses.contains(&decl.name.name) => {
                        self.emit(
                            module_id,
                            diagnostics::unused_item(decl.name.span, "type", &decl.name.name),
                        );
                    }
                    Item::Skill(skill) => {
                        if skill.triggers.is_empty() {
                            self.emit(
                                module_id,
                                diagnostics::skill_without_triggers(
                                    skill.name.span,
                                    &skill.name.name,
                                ),
                            );
                        }
                        for trigger in &skill.triggers {
                            let key = normalize(&trigger.value);
                            match triggers.get(&key) {
                                Some((other, file, span)) if *other != skill.name.name => {
                                    let diagnostic = diagnostics::overlapping_trigger(
                                        trigger.span,
                                        &trigger.value,
                                        &skill.name.name,
                                        other,
                                        *file,
                                        *span,
                                    );
                                    self.emit(module_id, diagnostic);
                                }
                                Some(_) => {}
                                None => {
                                    triggers.insert(
                                        key,
                                        (skill.name.name.clone(), module.file, trigger.span),
                                    );
                                }
                            }
                        }
                    }
                    _ => {}
                }
            }
            for (index, import) in module.imports.iter().enumerate() {
                let broken = import.module.is_some_and(|m| program.module(m).broken);
                if import.module.is_some()
                    && !broken
                    && !self.used_imports.contains(&(module_id, index))
                {
                    self.emit(
                        module_id,
                        diagnostics::unused_use(import.span, &import.target),
                    );
                }
            }
        }
    }
}

fn collect_type_names(ty: &TypeExpr, out: &mut Vec<String>) {
    match ty {
        TypeExpr::Named(ident) => out.push(ident.name.clone()),
        TypeExpr::List(element, _, _) => collect_type_names(element, out),
    }
}

/// Triggers compare case- and space-insensitively.
fn normalize(trigger: &str) -> String {
    trigger
        .split_whitespace()
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}
