//! The names each file sees: its own items, the items of the files it `use`s, and the
//! skills it `use`s. All items share one namespace.

use foldhash::HashMap;

use super::modules::ModuleId;
use super::types::Type;
use super::Checker;
use crate::diagnostics;
use crate::syntax::ast::{self, Ident, Item, TypeExpr};

/// The kinds of item a name can denote.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ItemKind {
    Agent,
    Workflow,
    Type,
    Skill,
    Protocol,
    Provider,
}

impl ItemKind {
    pub fn noun(self) -> &'static str {
        match self {
            ItemKind::Agent => "agent",
            ItemKind::Workflow => "workflow",
            ItemKind::Type => "type",
            ItemKind::Skill => "skill",
            ItemKind::Protocol => "protocol",
            ItemKind::Provider => "provider",
        }
    }
}

/// An item of some module.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ItemRef {
    pub module: ModuleId,
    pub index: usize,
}

/// What a name in a scope resolves to.
#[derive(Clone, Copy, Debug)]
pub struct Binding {
    pub item: ItemRef,
    pub kind: ItemKind,
    /// The `use` it came through (index into the module's imports), if imported.
    pub import: Option<usize>,
}

/// The names one module sees.
#[derive(Debug, Default)]
pub struct Scope {
    pub names: HashMap<String, Binding>,
}

/// The name and kind of an item (`use` has none).
pub fn item_name(item: &Item) -> Option<(&Ident, ItemKind)> {
    Some(match item {
        Item::Use(_) => return None,
        Item::Type(t) => (&t.name, ItemKind::Type),
        Item::Agent(a) => (&a.name, ItemKind::Agent),
        Item::Workflow(w) => (&w.name, ItemKind::Workflow),
        Item::Skill(s) => (&s.name, ItemKind::Skill),
        Item::Protocol(p) => (&p.name, ItemKind::Protocol),
        Item::Provider(p) => (&p.name, ItemKind::Provider),
    })
}

/// The type `ty` denotes in `module`, without reporting or marking anything used.
pub(crate) fn resolve_type_in(scopes: &[Scope], module: ModuleId, ty: &TypeExpr) -> Type {
    match ty {
        TypeExpr::List(element, _, _) => {
            Type::List(Box::new(resolve_type_in(scopes, module, element)))
        }
        TypeExpr::Named(ident) => Type::builtin(&ident.name).unwrap_or_else(|| {
            match scopes.get(module.0).and_then(|s| s.names.get(&ident.name)) {
                Some(binding) if binding.kind == ItemKind::Type => Type::Record(ident.name.clone()),
                _ => Type::Unknown,
            }
        }),
    }
}

/// The workflow a call of skill `skill` runs: `method`, or the skill's first workflow.
pub(crate) fn skill_workflow(
    program: &super::Program,
    scopes: &[Scope],
    skill: ItemRef,
    method: Option<&Ident>,
) -> Option<ItemRef> {
    let Item::Skill(decl) = program.module(skill.module).ast.items.get(skill.index)? else {
        return None;
    };
    let name = match method {
        Some(method) => decl.workflows.iter().find(|w| w.name == method.name)?,
        None => decl.workflows.first()?,
    };
    let binding = scopes.get(skill.module.0)?.names.get(&name.name)?;
    (binding.kind == ItemKind::Workflow).then_some(binding.item)
}

impl Checker<'_> {
    pub(super) fn build_scopes(&mut self) {
        for id in 0..self.program.modules.len() {
            let scope = self.scope_of(ModuleId(id));
            self.scopes.push(scope);
        }
    }

    fn scope_of(&mut self, id: ModuleId) -> Scope {
        let program = self.program;
        let module = program.module(id);
        let mut scope = Scope::default();
        for (index, item) in module.ast.items.iter().enumerate() {
            let Some((name, kind)) = item_name(item) else {
                continue;
            };
            if name.name.is_empty() {
                continue;
            }
            let binding = Binding {
                item: ItemRef { module: id, index },
                kind,
                import: None,
            };
            if let Some(first) = scope.names.get(&name.name) {
                let first_span = self.item_ident(first.item).span;
                self.emit(
                    id,
                    diagnostics::duplicate(name.span, kind.noun(), &name.name, first_span),
                );
                continue;
            }
            scope.names.insert(name.name.clone(), binding);
        }
        for (import_index, import) in module.imports.iter().enumerate() {
            let Some(target) = import.module else {
                continue;
            };
            let target_module = program.module(target);
            for (index, item) in target_module.ast.items.iter().enumerate() {
                let Some((name, kind)) = item_name(item) else {
                    continue;
                };
                // `use NAME` brings in the skill only; `use "file"` brings everything.
                if let Some(skill) = &import.skill {
                    if kind != ItemKind::Skill || &name.name != skill {
                        continue;
                    }
                }
                let binding = Binding {
                    item: ItemRef {
                        module: target,
                        index,
                    },
                    kind,
                    import: Some(import_index),
                };
                match scope.names.get(&name.name) {
                    Some(existing) if existing.item == binding.item => {}
                    Some(existing) if existing.import.is_none() => {
                        let own = self.item_ident(existing.item).span;
                        self.emit(
                            id,
                            diagnostics::duplicate_in(
                                own,
                                existing.kind.noun(),
                                &name.name,
                                target_module.file,
                                name.span,
                            ),
                        );
                    }
                    Some(_) => {
                        // Two imports define the same name: report at the second `use`.
                        self.emit(
                            id,
                            diagnostics::duplicate_in(
                                import.span,
                                kind.noun(),
                                &name.name,
                                target_module.file,
                                name.span,
                            ),
                        );
                    }
                    None => {
                        scope.names.insert(name.name.clone(), binding);
                    }
                }
            }
            if let Some(skill) = &import.skill {
                if !scope.names.contains_key(skill) {
                    self.emit(
                        id,
                        diagnostics::unresolved_use(
                            import.span,
                            skill,
                            &format!(
                                "`{}` defines no skill `{skill}`",
                                program.sources.get(target_module.file).name()
                            ),
                            &format!("declare `skill {skill} {{ ... }}` in that file"),
                        ),
                    );
                }
            }
        }
        scope
    }

    /// The item `item` refers to.
    pub(super) fn item(&self, item: ItemRef) -> &ast::Item {
        &self.program.module(item.module).ast.items[item.index]
    }

    /// The name of item `item`.
    pub(super) fn item_ident(&self, item: ItemRef) -> &Ident {
        static NONE: std::sync::OnceLock<Ident> = std::sync::OnceLock::new();
        item_name(self.item(item))
            .map(|(ident, _)| ident)
            .unwrap_or_else(|| {
                NONE.get_or_init(|| Ident {
                    name: String::new(),
                    span: Default::default(),
                })
            })
    }

    /// Looks `name` up in the scope of `module`, marking it (and its `use`) used.
    pub(super) fn lookup(&mut self, module: ModuleId, name: &str) -> Option<Binding> {
        let binding = self.binding(module, name)?;
        self.mark_used(module, binding);
        Some(binding)
    }

    /// What `name` means in the scope of `module`, without marking it used.
    pub(super) fn binding(&self, module: ModuleId, name: &str) -> Option<Binding> {
        self.scopes.get(module.0)?.names.get(name).copied()
    }

    /// Marks a name that `module` looked up used, and the `use` it came through.
    pub(super) fn mark_used(&mut self, module: ModuleId, binding: Binding) {
        if let Some(import) = binding.import {
            self.used_imports.insert((module, import));
        }
        self.used_items.insert(binding.item);
    }

    /// Every name visible in `module`, for "did you mean" suggestions.
    pub(super) fn visible_names(&self, module: ModuleId) -> Vec<String> {
        self.scopes
            .get(module.0)
            .map(|scope| scope.names.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The record types visible in `module`.
    pub(super) fn type_names(&self, module: ModuleId) -> Vec<String> {
        self.scopes
            .get(module.0)
            .map(|scope| {
                scope
                    .names
                    .iter()
                    .filter(|(_, b)| b.kind == ItemKind::Type)
                    .map(|(n, _)| n.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The fields of record type `name` as seen from `module`.
    pub(super) fn record_fields(
        &self,
        module: ModuleId,
        name: &str,
    ) -> Option<Vec<(String, Type)>> {
        let binding = self.scopes.get(module.0)?.names.get(name)?;
        let Item::Type(decl) = self.item(binding.item) else {
            return None;
        };
        Some(
            decl.fields
                .iter()
                .map(|field| {
                    (
                        field.name.name.clone(),
                        self.resolve_type_quiet(binding.item.module, &field.ty),
                    )
                })
                .collect(),
        )
    }

    /// For a field of record `name` declared `list<text max N>`: N.
    pub(super) fn record_field_text_max(
        &self,
        module: ModuleId,
        name: &str,
        field: &str,
    ) -> Option<u64> {
        let binding = self.scopes.get(module.0)?.names.get(name)?;
        let Item::Type(decl) = self.item(binding.item) else {
            return None;
        };
        let field = decl.fields.iter().find(|f| f.name.name == field)?;
        field.ty.text_element_max()
    }

    /// Resolves a type without reporting or marking anything used.
    pub(super) fn resolve_type_quiet(&self, module: ModuleId, ty: &TypeExpr) -> Type {
        resolve_type_in(&self.scopes, module, ty)
    }
}
