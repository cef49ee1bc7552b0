//! Routing (`pai route "<request>"`, `pai run --request`): which skill, and which of its
//! workflows, a request in plain words starts.
//!
//! The rules, deterministic and in this order:
//! 1. The candidates are the skills of `./skills/`, then of each `PAI_PATH` directory,
//!    then of the embedded standard library; a skill found earlier shadows one of the
//!    same name found later.
//! 2. Each `use when` trigger scores against the request, both lowercased and split into
//!    words (letters and digits; a trailing `s` is dropped, so "features" matches
//!    "feature"; words such as "the", "a", "is" and "what" are left out): a trigger whose
//!    words appear in the request in order and next to each other scores 100 plus its
//!    word count; otherwise the share of its words that appear anywhere, as a
//!    percentage, when at least half do and one of them is more than a generic verb
//!    ("add", "find", "build", ...). A skill scores its best trigger.
//! 3. The highest score wins; a tie goes to the longer trigger, then to the skill name
//!    that sorts first. The runner-up is the best other skill.
//! 4. The workflow is the skill's first, unless the request names another of its
//!    workflows, as words ("plan the refactor" starts `pai-orchestrate`'s `plan`).

use std::path::{Path, PathBuf};

use crate::syntax::{self, ast};

/// A skill that a request may start.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    pub skill: String,
    /// Where it is defined (a `<stdlib>/...` path for the embedded library).
    pub file: PathBuf,
    pub description: Option<String>,
    pub triggers: Vec<String>,
    /// Its workflows, the default first.
    pub workflows: Vec<String>,
}

/// How well one skill matches.
#[derive(Clone, Debug, PartialEq)]
pub struct Match {
    pub skill: String,
    pub file: PathBuf,
    pub workflow: String,
    /// Whether the workflow is the skill's default.
    pub default_workflow: bool,
    pub trigger: String,
    pub score: u32,
    /// The trigger appeared as a phrase, not only word by word.
    pub phrase: bool,
}

/// The chosen skill and the runner-up.
#[derive(Clone, Debug, PartialEq)]
pub struct Routing {
    pub chosen: Match,
    pub runner_up: Option<Match>,
}

/// The skills a request can be routed to, from `dirs` (each a `skills/` directory)
/// and then the embedded standard library.
pub fn candidates(dirs: &[PathBuf]) -> Vec<Candidate> {
    let mut found: Vec<Candidate> = Vec::new();
    let mut add = |file: PathBuf, text: &str| {
        for candidate in skills_in(&file, text) {
            if found.iter().all(|c| c.skill != candidate.skill) {
                found.push(candidate);
            }
        }
    };
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "pai"))
            .collect();
        files.sort();
        for file in files {
            if let Ok(text) = crate::source::read_text(&file) {
                add(file, &text);
            }
        }
    }
    for (path, text) in crate::stdlib::skill_files() {
        add(path, text);
    }
    found
}

/// The default search: `./skills/`, then each `PAI_PATH` directory.
pub fn default_dirs() -> Vec<PathBuf> {
    let mut dirs = vec![PathBuf::from("skills")];
    if let Some(path) = std::env::var_os("PAI_PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs
}

fn skills_in(file: &Path, text: &str) -> Vec<Candidate> {
    syntax::parse(text)
        .file
        .items
        .into_iter()
        .filter_map(|item| match item {
            ast::Item::Skill(skill) => Some(Candidate {
                skill: skill.name.name.clone(),
                file: file.to_path_buf(),
                description: skill.settings.iter().find_map(|s| match &s.value {
                    ast::Value::Text(t) if s.key.name == "description" => Some(t.value.clone()),
                    _ => None,
                }),
                triggers: skill.triggers.iter().map(|t| t.value.clone()).collect(),
                workflows: skill.workflows.iter().map(|w| w.name.clone()).collect(),
            }),
            _ => None,
        })
        .collect()
}

/// Words too common to say anything about a request.
const STOP_WORDS: &[&str] = &[
    "a", "an", "the", "is", "are", "be", "to", "of", "in", "on", "at", "for", "and", "or", "with",
    "this", "that", "it", "my", "our", "me", "us", "we", "i", "you", "what", "how",
];

/// Verbs that start many requests; a scattered match needs a word beyond them.
const GENERIC_VERBS: &[&str] = &[
    "add", "find", "get", "make", "build", "look", "use", "do", "run", "write", "show", "check",
    "create", "give", "help", "tell", "take",
];

/// Lowercase words, letters and digits only, stop words left out, a plural `s` dropped.
fn words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty() && !STOP_WORDS.contains(w))
        .map(|w| match w.strip_suffix('s') {
            Some(stem) if stem.len() >= 3 && !stem.ends_with('s') => stem.to_string(),
            _ => w.to_string(),
        })
        .collect()
}

/// The score of one trigger against the request's words, and whether it matched as a
/// phrase.
fn score(trigger: &[String], request: &[String]) -> Option<(u32, bool)> {
    if trigger.is_empty() {
        return None;
    }
    let count = u32::try_from(trigger.len()).unwrap_or(u32::MAX);
    if request.windows(trigger.len()).any(|w| w == trigger) {
        return Some((100u32.saturating_add(count), true));
    }
    let present: Vec<&String> = trigger.iter().filter(|w| request.contains(w)).collect();
    // Sharing only a generic verb ("add", "find") says nothing about the skill.
    let telling = present.iter().any(|w| !GENERIC_VERBS.contains(&w.as_str()));
    (present.len() * 2 >= trigger.len() && telling).then(|| {
        (
            u32::try_from(present.len() * 100 / trigger.len()).unwrap_or(0),
            false,
        )
    })
}

/// The best match of each candidate, best first.
pub fn rank(request: &str, candidates: &[Candidate]) -> Vec<Match> {
    let request_words = words(request);
    let mut matches: Vec<Match> = candidates
        .iter()
        .filter_map(|candidate| {
            let (trigger, score, phrase) = candidate
                .triggers
                .iter()
                .filter_map(|t| score(&words(t), &request_words).map(|(s, p)| (t, s, p)))
                .max_by(|a, b| a.1.cmp(&b.1).then(a.0.len().cmp(&b.0.len())))?;
            let default = candidate.workflows.first()?;
            let named = candidate.workflows.iter().skip(1).find(|w| {
                let name = words(w);
                !name.is_empty() && request_words.windows(name.len()).any(|r| r == name)
            });
            Some(Match {
                skill: candidate.skill.clone(),
                file: candidate.file.clone(),
                workflow: named.unwrap_or(default).clone(),
                default_workflow: named.is_none(),
                trigger: trigger.clone(),
                score,
                phrase,
            })
        })
        .collect();
    matches.sort_by(|a, b| {
        b.score
            .cmp(&a.score)
            .then(b.trigger.len().cmp(&a.trigger.len()))
            .then(a.skill.cmp(&b.skill))
    });
    matches
}

/// Routes `request`: the best skill and the runner-up, or `None` when no trigger
/// matches at all.
pub fn route(request: &str, candidates: &[Candidate]) -> Option<Routing> {
    let mut ranked = rank(request, candidates).into_iter();
    let chosen = ranked.next()?;
    Some(Routing {
        chosen,
        runner_up: ranked.next(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn library() -> Vec<Candidate> {
        candidates(&[])
    }

    fn routed(request: &str) -> (String, String) {
        let routing = route(request, &library()).expect("a match");
        (routing.chosen.skill, routing.chosen.workflow)
    }

    #[test]
    fn the_library_routes_typical_requests() {
        assert_eq!(
            routed("add feature: a login page"),
            ("pai-orchestrate".into(), "execute".into())
        );
        assert_eq!(
            routed("Refactor the storage layer"),
            ("pai-orchestrate".into(), "execute".into())
        );
        assert_eq!(
            routed("research how others batch requests"),
            ("pai-research".into(), "standard".into())
        );
        assert_eq!(
            routed("red team our rollout plan"),
            ("pai-redteam".into(), "attack".into())
        );
        assert_eq!(
            routed("should we adopt gRPC? get perspectives"),
            ("pai-council".into(), "debate".into())
        );
        assert_eq!(
            routed("map the code of this repo"),
            ("pai-codebase".into(), "explore".into())
        );
    }

    #[test]
    fn a_word_naming_another_workflow_picks_it() {
        assert_eq!(
            routed("plan the refactor of the parser"),
            ("pai-orchestrate".into(), "plan".into())
        );
        assert_eq!(
            routed("quick research on tokio"),
            ("pai-research".into(), "quick".into())
        );
    }

    #[test]
    fn a_request_no_trigger_matches_routes_nowhere() {
        assert_eq!(route("bake a cake", &library()), None);
        // "find the weaknesses" shares only "find" and a stop word with this.
        assert_eq!(route("find the bug in login", &library()), None);
        assert_eq!(route("what is the weather", &library()), None);
        // ...while a telling word is enough.
        assert_eq!(
            routed("implement a login page"),
            ("pai-orchestrate".into(), "execute".into())
        );
    }

    #[test]
    fn phrases_beat_scattered_words_and_ties_are_stable() {
        let candidates = vec![
            Candidate {
                skill: "b".into(),
                file: PathBuf::from("b.pai"),
                description: None,
                triggers: vec!["review code".into()],
                workflows: vec!["run".into()],
            },
            Candidate {
                skill: "a".into(),
                file: PathBuf::from("a.pai"),
                description: None,
                triggers: vec!["code review".into()],
                workflows: vec!["run".into()],
            },
        ];
        let routing = route("please code review this", &candidates).expect("a match");
        assert_eq!(routing.chosen.skill, "a");
        assert!(routing.chosen.phrase);
        assert_eq!(routing.runner_up.map(|m| m.skill), Some("b".to_string()));
        // Neither trigger is a phrase of this request; both have all their words: a tie,
        // which goes to the skill name that sorts first.
        let routing = route("review new code", &candidates).expect("a match");
        assert_eq!(routing.chosen.skill, "a");
        assert!(!routing.chosen.phrase);
    }
}
