//! Loading files and resolving `use`: every file is read and parsed once per check,
//! whoever uses it.
//!
//! `use "rel/path.pai"` reads a file relative to the file that says it. `use NAME`
//! looks for `skills/NAME.pai` in the using file's directory and each directory above
//! it, then in each directory of `PAI_PATH`, then in the embedded standard library
//! ([`crate::stdlib`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use foldhash::HashMap;

use crate::diagnostics::{self, Diagnostic};
use crate::source::{FileId, SourceFile, SourceMap, Span};
use crate::syntax::{self, ast};

/// Index of a [`Module`] in a [`Program`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModuleId(pub usize);

/// One parsed file.
#[derive(Debug)]
pub struct Module {
    pub file: FileId,
    /// The directory `use "..."` paths are relative to.
    pub dir: PathBuf,
    pub ast: ast::File,
    /// One entry per `use` item, in order.
    pub imports: Vec<Import>,
    /// Whether the file had syntax errors (its AST is partial).
    pub broken: bool,
}

/// A resolved `use`.
#[derive(Debug)]
pub struct Import {
    pub span: Span,
    /// What the `use` named, as written.
    pub target: String,
    pub module: Option<ModuleId>,
    /// For `use NAME`: the skill's name.
    pub skill: Option<String>,
}

/// Every file of one check, and the diagnostics of loading them.
#[derive(Debug, Default)]
pub struct Program {
    pub sources: SourceMap,
    pub modules: Vec<Module>,
    /// Syntax and loading diagnostics, each in its own file.
    pub diagnostics: Vec<Diagnostic>,
    by_path: HashMap<PathBuf, ModuleId>,
}

/// A file that could not be read at all: the CLI turns it into exit code 2.
#[derive(Debug)]
pub struct LoadError {
    pub path: PathBuf,
    pub error: std::io::Error,
}

impl Program {
    /// Loads a file named on the command line, and everything it uses.
    pub fn load_root(&mut self, path: &Path) -> Result<ModuleId, LoadError> {
        if crate::stdlib::is_virtual(path) {
            let (key, text) = crate::stdlib::file(path).ok_or_else(|| LoadError {
                path: path.to_path_buf(),
                error: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no such file in the standard library",
                ),
            })?;
            return Ok(self.add_embedded(key, text));
        }
        let key = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        if let Some(&id) = self.by_path.get(&key) {
            return Ok(id);
        }
        let text = read(path).map_err(|error| LoadError {
            path: path.to_path_buf(),
            error,
        })?;
        Ok(self.add(key, &path.display().to_string(), text, parent_dir(path)))
    }

    /// Loads text that is not on disk (tests, benchmarks, fuzzing); `use` resolves
    /// relative to `dir`.
    pub fn load_text(&mut self, name: &str, text: &str, dir: &Path) -> ModuleId {
        let key = PathBuf::from(format!("<memory>/{}/{name}", self.modules.len()));
        self.add(key, name, decode(text.as_bytes()), dir.to_path_buf())
    }

    /// The module with id `id`.
    pub fn module(&self, id: ModuleId) -> &Module {
        &self.modules[id.0]
    }

    /// Adds a file and every file it `use`s, directly or not.
    fn add(&mut self, key: PathBuf, name: &str, decoded: Decoded, dir: PathBuf) -> ModuleId {
        let id = self.create(key, name, decoded, dir);
        self.resolve_imports(id);
        id
    }

    /// Parses a file into a module whose imports are not resolved yet.
    fn create(&mut self, key: PathBuf, name: &str, decoded: Decoded, dir: PathBuf) -> ModuleId {
        let id = ModuleId(self.modules.len());
        self.by_path.insert(key, id);
        let Decoded { text, error } = decoded;
        let file = self.sources.add(SourceFile::new(name, text.clone()));
        let (ast, errors) = match error {
            Some(diagnostic) => (ast::File::default(), vec![*diagnostic]),
            None => {
                let parsed = syntax::parse(&text);
                (parsed.file, parsed.diagnostics)
            }
        };
        let broken = !errors.is_empty();
        self.diagnostics
            .extend(errors.into_iter().map(|d| d.in_file(file)));
        self.modules.push(Module {
            file,
            dir,
            ast,
            imports: Vec::new(),
            broken,
        });
        id
    }

    /// Resolves the `use`s of module `root` and of every module they load, depth first
    /// (so modules are numbered as a recursion would number them), on a stack of its
    /// own: a chain of thousands of files that each `use` the next overflowed the
    /// native stack.
    fn resolve_imports(&mut self, root: ModuleId) {
        let mut stack = vec![self.uses_of(root)];
        while let Some(frame) = stack.last_mut() {
            let module = frame.module;
            let Some(next) = frame.uses.next() else {
                // Every `use` of this module is resolved.
                let Some(done) = stack.pop() else { break };
                self.modules[done.module.0].imports = done.imports;
                if let Some(parent) = stack.last_mut() {
                    if let Some(waiting) = parent.waiting.take() {
                        self.diagnostics.extend(waiting.broken);
                        parent.imports.push(waiting.import);
                    }
                }
                continue;
            };
            match self.resolve_use(module, next) {
                None => {}
                Some((import, Loaded::Known(_))) => frame.imports.push(import),
                Some((import, Loaded::New { id, broken })) => {
                    frame.waiting = Some(Waiting { import, broken });
                    let child = self.uses_of(id);
                    stack.push(child);
                }
            }
        }
    }

    /// Module `id` with its `use`s still to resolve.
    fn uses_of(&self, id: ModuleId) -> ImportFrame {
        let uses: Vec<ast::Use> = self.modules[id.0]
            .ast
            .items
            .iter()
            .filter_map(|item| match item {
                ast::Item::Use(u) => Some(u.clone()),
                _ => None,
            })
            .collect();
        ImportFrame {
            module: id,
            uses: uses.into_iter(),
            imports: Vec::new(),
            waiting: None,
        }
    }

    /// What one `use` of `module` imports, loading the file if it is new (`None` for a
    /// misplaced `use when`, which the checker reports).
    fn resolve_use(&mut self, module: ModuleId, u: ast::Use) -> Option<(Import, Loaded)> {
        let dir = self.modules[module.0].dir.clone();
        let file = self.modules[module.0].file;
        let (target, skill, loaded) = match &u.target {
            ast::UseTarget::File(text) => {
                let candidate = dir.join(&text.value);
                let loaded = self.load_used(&candidate, file, text.span, &text.value);
                (text.value.clone(), None, loaded)
            }
            ast::UseTarget::Skill(name) => {
                let loaded = match find_skill(&dir, &name.name) {
                    Some(path) => self.load_used(&path, file, name.span, &name.name),
                    None => {
                        self.diagnostics.push(
                            diagnostics::unresolved_use(
                                name.span,
                                &name.name,
                                "no skill of that name on the search path",
                                &format!(
                                    "put the skill in `skills/{}.pai` beside this file or in a directory above it, or add its directory to `PAI_PATH` (the standard library has pai-codebase, pai-research, pai-council, pai-redteam and pai-orchestrate)",
                                    name.name
                                ),
                            )
                            .in_file(file),
                        );
                        Loaded::Known(None)
                    }
                };
                (name.name.clone(), Some(name.name.clone()), loaded)
            }
            ast::UseTarget::MisplacedWhen(_) => return None,
        };
        let import = Import {
            span: u.span,
            target,
            module: loaded.module(),
            skill,
        };
        Some((import, loaded))
    }

    /// Loads a file named by a `use`; a new one comes back with the diagnostic to give
    /// at the `use` if it has errors of its own, once its own `use`s are resolved.
    fn load_used(&mut self, path: &Path, from: FileId, span: Span, written: &str) -> Loaded {
        if crate::stdlib::is_virtual(path) {
            return self.load_embedded(path, from, span, written);
        }
        let key = match path.canonicalize() {
            Ok(key) => key,
            Err(error) => {
                self.diagnostics.push(
                    diagnostics::unresolved_use(
                        span,
                        written,
                        &io_reason(&error),
                        &format!("`{}` must be an existing `.pai` file", path.display()),
                    )
                    .in_file(from),
                );
                return Loaded::Known(None);
            }
        };
        if let Some(&id) = self.by_path.get(&key) {
            return Loaded::Known(Some(id));
        }
        let text = match read(path) {
            Ok(text) => text,
            Err(error) => {
                self.diagnostics.push(
                    diagnostics::unresolved_use(
                        span,
                        written,
                        &io_reason(&error),
                        &format!("`{}` must be a readable `.pai` file", path.display()),
                    )
                    .in_file(from),
                );
                return Loaded::Known(None);
            }
        };
        let id = self.create(key, &path.display().to_string(), text, parent_dir(path));
        let broken = self.modules[id.0].broken.then(|| {
            diagnostics::unresolved_use(
                span,
                written,
                "the file has syntax errors",
                &format!("run `pai check {}` and fix them", path.display()),
            )
            .in_file(from)
        });
        Loaded::New { id, broken }
    }
}

/// What a `use` loaded: a module whose own `use`s are still to resolve, or not.
enum Loaded {
    /// Nothing new: loaded before, or not loadable (already reported).
    Known(Option<ModuleId>),
    New {
        id: ModuleId,
        /// Reported at the `use` (once the module's own `use`s are resolved, where a
        /// recursion would report it) when the module has syntax errors.
        broken: Option<Diagnostic>,
    },
}

impl Loaded {
    fn module(&self) -> Option<ModuleId> {
        match self {
            Loaded::Known(module) => *module,
            Loaded::New { id, .. } => Some(*id),
        }
    }
}

/// A module whose `use`s are being resolved.
struct ImportFrame {
    module: ModuleId,
    uses: std::vec::IntoIter<ast::Use>,
    imports: Vec<Import>,
    /// The import waiting for the module it loaded to have its own `use`s resolved.
    waiting: Option<Waiting>,
}

struct Waiting {
    import: Import,
    broken: Option<Diagnostic>,
}

impl Program {
    /// Loads a file of the embedded standard library.
    fn load_embedded(&mut self, path: &Path, from: FileId, span: Span, written: &str) -> Loaded {
        let Some((key, text)) = crate::stdlib::file(path) else {
            self.diagnostics.push(
                diagnostics::unresolved_use(
                    span,
                    written,
                    "no such file in the standard library",
                    &format!(
                        "the standard library has {}",
                        crate::stdlib::FILES
                            .iter()
                            .map(|(p, _)| format!("`{p}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
                .in_file(from),
            );
            return Loaded::Known(None);
        };
        if let Some(&id) = self.by_path.get(&key) {
            return Loaded::Known(Some(id));
        }
        let id = self.create_embedded(key, text);
        Loaded::New { id, broken: None }
    }

    /// The module of the embedded file at `key` (a normalised `<stdlib>/...` path),
    /// loaded once, with everything it `use`s.
    fn add_embedded(&mut self, key: PathBuf, text: &str) -> ModuleId {
        if let Some(&id) = self.by_path.get(&key) {
            return id;
        }
        let id = self.create_embedded(key, text);
        self.resolve_imports(id);
        id
    }

    fn create_embedded(&mut self, key: PathBuf, text: &str) -> ModuleId {
        let dir = parent_dir(&key);
        let name = key.display().to_string();
        self.create(key, &name, decode(text.as_bytes()), dir)
    }
}

/// A file's text as the checker keeps it, and why it is not text if it is not.
struct Decoded {
    text: Arc<str>,
    /// Invalid UTF-8 or a NUL byte: the text is then a lossy copy, reported, not parsed.
    error: Option<Box<Diagnostic>>,
}

/// Reads and decodes a file. Only the decoded copy outlives the call, so a file is held
/// once while it is parsed.
fn read(path: &Path) -> std::io::Result<Decoded> {
    crate::source::read_bytes(path).map(|bytes| decode(&bytes))
}

fn decode(bytes: &[u8]) -> Decoded {
    match syntax::decode(bytes) {
        Ok(text) => Decoded {
            text: Arc::from(text),
            error: None,
        },
        Err(error) => Decoded {
            text: Arc::from(String::from_utf8_lossy(bytes)),
            error: Some(error),
        },
    }
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn io_reason(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => error.to_string().to_lowercase(),
    }
}

/// The file of skill `name`: `skills/NAME.pai` in `dir` or above, then `PAI_PATH`,
/// then the embedded standard library (a `<stdlib>/...` path).
fn find_skill(dir: &Path, name: &str) -> Option<PathBuf> {
    let file = format!("{name}.pai");
    // Inside the standard library, skills come from the search path or the library.
    let start = if crate::stdlib::is_virtual(dir) {
        PathBuf::new()
    } else {
        dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf())
    };
    for ancestor in start.ancestors().filter(|a| !a.as_os_str().is_empty()) {
        let candidate = ancestor.join("skills").join(&file);
        if candidate.is_file() {
            return Some(candidate);
        }
    }
    let on_path = std::env::var_os("PAI_PATH").and_then(|search| {
        std::env::split_paths(&search)
            .map(|dir| dir.join(&file))
            .find(|candidate| candidate.is_file())
    });
    on_path.or_else(|| crate::stdlib::skill(name))
}
