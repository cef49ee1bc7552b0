//! The standard library, embedded in the binary so `use pai-council` works from any
//! directory: the skills of `skills/`, the workflows of `workflows/`, the agents they
//! share in `agents/` and the protocols of `protocols/`.
//!
//! Embedded files live under the virtual directory `<stdlib>`: a diagnostic in one
//! names `<stdlib>/skills/pai-council.pai`, and `use "../workflows/execute.pai"` inside
//! one resolves to another embedded file. A project's own `skills/NAME.pai` (in the
//! using file's directory or above it, or on `PAI_PATH`) shadows the embedded skill for
//! the project's files; inside the library, `use NAME` looks on `PAI_PATH` and then in
//! the library, so a project cannot change what the library's own skills call.

use std::path::{Component, Path, PathBuf};

/// The virtual directory the embedded files live in.
pub const ROOT: &str = "<stdlib>";

/// Every embedded file: its path under [`ROOT`] and its text.
pub const FILES: &[(&str, &str)] = &[
    (
        "skills/pai-codebase.pai",
        include_str!("../skills/pai-codebase.pai"),
    ),
    (
        "skills/pai-research.pai",
        include_str!("../skills/pai-research.pai"),
    ),
    (
        "skills/pai-council.pai",
        include_str!("../skills/pai-council.pai"),
    ),
    (
        "skills/pai-redteam.pai",
        include_str!("../skills/pai-redteam.pai"),
    ),
    (
        "skills/pai-orchestrate.pai",
        include_str!("../skills/pai-orchestrate.pai"),
    ),
    (
        "workflows/execute.pai",
        include_str!("../workflows/execute.pai"),
    ),
    ("workflows/plan.pai", include_str!("../workflows/plan.pai")),
    ("agents/coding.pai", include_str!("../agents/coding.pai")),
    (
        "protocols/tree-orchestration.pai",
        include_str!("../protocols/tree-orchestration.pai"),
    ),
];

/// The embedded skill files: their virtual paths and texts.
pub fn skill_files() -> impl Iterator<Item = (PathBuf, &'static str)> {
    FILES
        .iter()
        .filter(|(path, _)| path.starts_with("skills/"))
        .map(|(path, text)| (Path::new(ROOT).join(path), *text))
}

/// The virtual path of the embedded skill `name`, if there is one.
pub fn skill(name: &str) -> Option<PathBuf> {
    let relative = format!("skills/{name}.pai");
    FILES
        .iter()
        .any(|(path, _)| *path == relative)
        .then(|| Path::new(ROOT).join(relative))
}

/// The text of the embedded file at `path` (`<stdlib>/skills/../agents/coding.pai`),
/// and its normalised path; `None` for a path outside `<stdlib>` or not embedded.
pub fn file(path: &Path) -> Option<(PathBuf, &'static str)> {
    let mut components = path.components();
    if components.next()? != Component::Normal(ROOT.as_ref()) {
        return None;
    }
    let mut parts: Vec<&str> = Vec::new();
    for component in components {
        match component {
            Component::Normal(part) => parts.push(part.to_str()?),
            Component::ParentDir => {
                // `..` never climbs out of `<stdlib>`.
                parts.pop()?;
            }
            Component::CurDir => {}
            _ => return None,
        }
    }
    let relative = parts.join("/");
    FILES
        .iter()
        .find(|(p, _)| *p == relative)
        .map(|(p, text)| (Path::new(ROOT).join(p), *text))
}

/// Whether `path` names something under `<stdlib>`.
pub fn is_virtual(path: &Path) -> bool {
    path.components().next() == Some(Component::Normal(ROOT.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_resolve_inside_the_library_only() {
        let (path, text) =
            file(Path::new("<stdlib>/skills/../workflows/execute.pai")).expect("embedded");
        assert_eq!(path, Path::new("<stdlib>/workflows/execute.pai"));
        assert!(text.contains("workflow execute"));
        assert!(file(Path::new("<stdlib>/../etc/passwd")).is_none());
        assert!(file(Path::new("skills/pai-council.pai")).is_none());
        assert_eq!(
            skill("pai-council"),
            Some(PathBuf::from("<stdlib>/skills/pai-council.pai"))
        );
        assert_eq!(skill("pai-nothing"), None);
    }
}
