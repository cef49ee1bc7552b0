//! Plan-time listings for `files(dir, glob)` and `dirs(dir)`: one level deep, sorted,
//! honouring `.gitignore` (inside a git repository or not) and `.ignore`, skipping
//! hidden entries (and so `.git`), as ripgrep does.

use std::path::{Path, PathBuf};

use globset::{Glob, GlobMatcher};

/// Why a listing failed.
#[derive(Debug)]
pub enum ListError {
    NotADirectory(PathBuf),
    BadGlob(String, String),
    Io(PathBuf, String),
}

/// What to list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listing {
    Files,
    Dirs,
}

/// The entries directly inside `dir` (files matching `glob`, or directories), sorted.
pub fn list(dir: &Path, listing: Listing, glob: Option<&str>) -> Result<Vec<PathBuf>, ListError> {
    if !dir.is_dir() {
        return Err(ListError::NotADirectory(dir.to_path_buf()));
    }
    let matcher: Option<GlobMatcher> = match glob {
        Some(pattern) => Some(
            Glob::new(pattern)
                .map_err(|e| ListError::BadGlob(pattern.to_string(), e.kind().to_string()))?
                .compile_matcher(),
        ),
        None => None,
    };
    let walker = ignore::WalkBuilder::new(dir)
        .max_depth(Some(1))
        .require_git(false)
        .follow_links(false)
        .sort_by_file_name(|a, b| a.cmp(b))
        .build();
    let mut out = Vec::new();
    for entry in walker {
        let entry = entry.map_err(|e| ListError::Io(dir.to_path_buf(), e.to_string()))?;
        if entry.depth() == 0 {
            continue;
        }
        let Some(kind) = entry.file_type() else {
            continue;
        };
        let wanted = match listing {
            Listing::Files => kind.is_file(),
            Listing::Dirs => kind.is_dir(),
        };
        if !wanted {
            continue;
        }
        if let Some(matcher) = &matcher {
            if !matcher.is_match(entry.file_name()) {
                continue;
            }
        }
        out.push(entry.into_path());
    }
    Ok(out)
}
