//! Which provider answers which agent.
//!
//! - An agent that says `provider NAME` gets NAME: a `provider` declaration in scope,
//!   else one of the built-in providers (`claude`, `codex`, `ollama`, `llm`, `gemini`,
//!   `openai`, `anthropic`, `sim`, `replay`).
//! - Every other agent gets the run's provider: `--provider NAME`, else `PAI_PROVIDER`,
//!   else `sim`, announced as such.
//! - Choosing `sim` or `replay` for the run replaces every agent's provider: they are
//!   the test doubles, and a dry run must never spend money.
//!
//! Each provider is built once per run and shared by the agents that use it, so an
//! HTTP provider keeps one connection pool.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::anthropic::Anthropic;
use super::command::Command;
use super::openai::OpenAi;
use super::replay::Replay;
use super::secret::Secret;
use super::sim::Sim;
use super::spec::{Kind, Spec};
use super::Provider;
use crate::check::modules::{Module, ModuleId};
use crate::check::scope::{ItemKind, ItemRef};
use crate::check::Outcome;
use crate::compile::prices::Prices;
use crate::syntax::ast::{self, Item, Value};

/// How the run's provider is chosen, and what the test doubles need.
#[derive(Clone, Debug, Default)]
pub struct Choice {
    /// `--provider` or `PAI_PROVIDER`; `None` means `sim`, announced.
    pub name: Option<String>,
    /// The replay fixture; by default the workflow file with `.replay.yaml`.
    pub fixture: Option<PathBuf>,
    pub sim_latency: Duration,
    pub sim_list: usize,
}

/// A provider by where it is defined.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    Declared(ItemRef),
    Builtin(String),
}

/// The providers of one run.
pub struct Providers {
    default: Arc<dyn Provider>,
    /// Agents that name their own provider, and which.
    agents: HashMap<ItemRef, Key>,
    specs: HashMap<Key, Spec>,
    built: Mutex<HashMap<Key, Arc<dyn Provider>>>,
    prices: Arc<Prices>,
    /// The run's choice and file, for the test doubles an agent may name.
    choice: Choice,
    file: PathBuf,
    /// What `run.yaml` records.
    description: String,
}

impl Providers {
    /// One provider for every agent.
    pub fn single(provider: Arc<dyn Provider>) -> Providers {
        Providers {
            description: provider.name().to_string(),
            default: provider,
            agents: HashMap::new(),
            specs: HashMap::new(),
            built: Mutex::new(HashMap::new()),
            prices: Arc::new(Prices::default()),
            choice: Choice::default(),
            file: PathBuf::new(),
        }
    }

    /// The providers `outcome`'s agents name, with `choice` for the rest. Fails when the
    /// run's provider is unknown or cannot be built (a key not set, a fixture missing).
    pub fn resolve(
        outcome: &Outcome,
        choice: &Choice,
        file: &Path,
        prices: Arc<Prices>,
    ) -> Result<Providers, ProviderSetupError> {
        let root = outcome.roots.first().copied();
        let (run_key, run_spec) = match &choice.name {
            Some(name) => lookup(outcome, root, name).ok_or_else(|| ProviderSetupError {
                message: format!("unknown provider `{name}`"),
                help: format!(
                    "the providers are {}; declare others with `provider {name} {{ kind \"openai\" ... }}`",
                    known_names(outcome, root).join(", ")
                ),
            })?,
            None => (
                Key::Builtin("sim".to_string()),
                Spec::builtin("sim").ok_or_else(|| ProviderSetupError {
                    message: "`sim` is missing from the built-in providers".to_string(),
                    help: "this is a bug in pai; please report it".to_string(),
                })?,
            ),
        };
        let mut specs = HashMap::new();
        // Only a double chosen on purpose overrides the agents' own providers.
        let double = choice.name.is_some() && matches!(run_spec.kind, Kind::Sim | Kind::Replay);
        specs.insert(run_key.clone(), run_spec.clone());
        let mut agents = HashMap::new();
        if !double {
            for item in outcome.agents.keys() {
                let Some(name) = agent_provider(outcome, *item) else {
                    continue;
                };
                if let Some((key, spec)) = lookup(outcome, Some(item.module), name) {
                    specs.entry(key.clone()).or_insert(spec);
                    agents.insert(*item, key);
                }
            }
        }
        // Whatever answers the run, a key any provider names (declared in the files
        // run, or named by an agent) is kept out of what `exec` steps print.
        let declared = all_specs(outcome);
        let keys = declared.iter().chain(specs.values());
        super::secret::guard_variables(keys.filter_map(|spec| spec.key.as_deref()));
        let default =
            build(&run_spec, choice, file, &prices).map_err(|message| ProviderSetupError {
                message,
                help: setup_help(&run_spec),
            })?;
        let description = if choice.name.is_none() && run_spec.kind == Kind::Sim {
            "sim".to_string()
        } else {
            run_spec.name.clone()
        };
        Ok(Providers {
            built: Mutex::new(HashMap::from([(run_key, default.clone())])),
            default,
            agents,
            specs,
            prices,
            choice: choice.clone(),
            file: file.to_path_buf(),
            description,
        })
    }

    /// How the run's provider was chosen.
    pub fn choice(&self) -> &Choice {
        &self.choice
    }

    /// Builds the providers of `agents` now, so a missing key stops the run before it
    /// starts instead of failing its nodes.
    pub fn prepare(
        &self,
        agents: impl IntoIterator<Item = ItemRef>,
    ) -> Result<(), ProviderSetupError> {
        for agent in agents {
            if let Some(key) = self.agents.get(&agent) {
                self.built(key).map_err(|message| ProviderSetupError {
                    help: self.specs.get(key).map(setup_help).unwrap_or_default(),
                    message,
                })?;
            }
        }
        Ok(())
    }

    /// The provider that answers `agent`.
    pub fn for_agent(&self, agent: ItemRef) -> Result<Arc<dyn Provider>, String> {
        match self.agents.get(&agent) {
            Some(key) => self.built(key),
            None => Ok(self.default.clone()),
        }
    }

    /// What the run used: `sim`, or `claude; local for 2 agents`.
    pub fn description(&self) -> String {
        let mut own: HashMap<&str, usize> = HashMap::new();
        for key in self.agents.values() {
            if let Some(spec) = self.specs.get(key) {
                *own.entry(spec.name.as_str()).or_default() += 1;
            }
        }
        let mut own: Vec<(&str, usize)> = own.into_iter().collect();
        own.sort_unstable();
        let mut parts = vec![self.description.clone()];
        parts.extend(own.into_iter().map(|(name, count)| {
            format!(
                "{name} for {count} agent{}",
                if count == 1 { "" } else { "s" }
            )
        }));
        parts.join("; ")
    }

    fn built(&self, key: &Key) -> Result<Arc<dyn Provider>, String> {
        let mut built = self
            .built
            .lock()
            .map_err(|_| "the provider table was poisoned by a panic".to_string())?;
        if let Some(provider) = built.get(key) {
            return Ok(provider.clone());
        }
        let spec = self
            .specs
            .get(key)
            .ok_or_else(|| "a provider that was never resolved".to_string())?;
        let provider = build(spec, &self.choice, &self.file, &self.prices)?;
        built.insert(key.clone(), provider.clone());
        Ok(provider)
    }
}

impl From<Arc<dyn Provider>> for Providers {
    fn from(provider: Arc<dyn Provider>) -> Providers {
        Providers::single(provider)
    }
}

impl<P: Provider + 'static> From<Arc<P>> for Providers {
    fn from(provider: Arc<P>) -> Providers {
        Providers::single(provider)
    }
}

/// Why the providers cannot be set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderSetupError {
    pub message: String,
    pub help: String,
}

/// The provider named `name` as seen from `module`: a declaration, else a built-in.
fn lookup(outcome: &Outcome, module: Option<ModuleId>, name: &str) -> Option<(Key, Spec)> {
    let declared = module
        .and_then(|m| outcome.scopes.get(m.0))
        .and_then(|scope| scope.names.get(name))
        .filter(|binding| binding.kind == ItemKind::Provider)
        .map(|binding| binding.item);
    if let Some(item) = declared {
        let module = outcome.program.module(item.module);
        if let Some(Item::Provider(declaration)) = module.ast.items.get(item.index) {
            return Some((Key::Declared(item), declared_spec(module, declaration)));
        }
    }
    Spec::builtin(name).map(|spec| (Key::Builtin(name.to_string()), spec))
}

/// The spec of a declaration in `module`; a fixture path is relative to that file.
fn declared_spec(module: &Module, declaration: &ast::Provider) -> Spec {
    let mut spec = Spec::from_declaration(declaration);
    spec.fixture = spec.fixture.map(|fixture| module.dir.join(fixture));
    spec
}

/// Every provider name visible from `module`.
pub fn known_names(outcome: &Outcome, module: Option<ModuleId>) -> Vec<String> {
    let mut names: Vec<String> = Spec::builtin_names()
        .iter()
        .map(|n| format!("`{n}`"))
        .collect();
    if let Some(scope) = module.and_then(|m| outcome.scopes.get(m.0)) {
        let mut declared: Vec<String> = scope
            .names
            .iter()
            .filter(|(_, b)| b.kind == ItemKind::Provider)
            .map(|(n, _)| format!("`{n}`"))
            .filter(|n| !names.contains(n))
            .collect();
        declared.sort();
        names.extend(declared);
    }
    names
}

/// Every provider declared in the root modules of `outcome`, then the built-ins.
pub fn all_specs(outcome: &Outcome) -> Vec<Spec> {
    let mut specs = Vec::new();
    for root in &outcome.roots {
        let module = outcome.program.module(*root);
        for item in &module.ast.items {
            if let Item::Provider(declaration) = item {
                specs.push(declared_spec(module, declaration));
            }
        }
    }
    for name in Spec::builtin_names() {
        if specs.iter().all(|s| s.name != *name) {
            specs.extend(Spec::builtin(name));
        }
    }
    specs
}

/// The provider an agent names with `provider NAME`.
fn agent_provider(outcome: &Outcome, item: ItemRef) -> Option<&str> {
    let agent = outcome.agent(item)?;
    match agent.setting("provider").map(|s| &s.value) {
        Some(Value::Name(name)) => Some(&name.name),
        _ => None,
    }
}

/// Builds a provider from its spec.
pub fn build(
    spec: &Spec,
    choice: &Choice,
    file: &Path,
    prices: &Arc<Prices>,
) -> Result<Arc<dyn Provider>, String> {
    let key = |required: bool| -> Result<Option<(String, Secret)>, String> {
        match &spec.key {
            Some(variable) => Secret::from_env(variable)
                .map(|secret| Some((variable.clone(), secret)))
                .map_err(|problem| format!("provider `{}` needs a key: {problem}", spec.name)),
            None if required => Err(format!(
                "provider `{}` needs a key and names none",
                spec.name
            )),
            None => Ok(None),
        }
    };
    let url = || {
        spec.url
            .clone()
            .ok_or_else(|| format!("provider `{}` needs a `url`", spec.name))
    };
    Ok(match spec.kind {
        Kind::Sim => Arc::new(Sim {
            latency: spec.latency.unwrap_or(choice.sim_latency),
            list_len: if choice.sim_list == 0 {
                3
            } else {
                choice.sim_list
            },
        }),
        Kind::Replay => {
            let fixture = spec
                .fixture
                .clone()
                .or_else(|| choice.fixture.clone())
                .unwrap_or_else(|| file.with_extension("replay.yaml"));
            Arc::new(Replay::load(&fixture)?)
        }
        Kind::Command => Arc::new(Command::new(spec, prices.clone())?),
        Kind::OpenAi => Arc::new(OpenAi::new(
            &spec.name,
            &url()?,
            spec.model.clone(),
            key(false)?,
            spec.max_tokens,
            spec.timeout,
            prices.clone(),
        )?),
        Kind::Anthropic => {
            let Some(key) = key(true)? else {
                return Err(format!("provider `{}` needs a key", spec.name));
            };
            Arc::new(Anthropic::new(
                &spec.name,
                &url()?,
                spec.model.clone(),
                key,
                spec.max_tokens,
                spec.timeout,
                prices.clone(),
            )?)
        }
    })
}

/// What to do when a provider cannot be built.
fn setup_help(spec: &Spec) -> String {
    match (spec.kind, &spec.key) {
        (Kind::OpenAi | Kind::Anthropic, Some(variable)) => format!(
            "export {variable}=... in the environment that runs `pai` (keys are never written in `.pai` files), or pick another provider with `--provider`"
        ),
        (Kind::Replay, _) => {
            "write the fixture (see docs/run.md), or pass `--fixture FILE`".to_string()
        }
        _ => "`pai providers FILE` shows what each provider needs".to_string(),
    }
}
