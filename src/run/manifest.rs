//! Manifests (DESIGN §4): `run.yaml` and one `manifest.yaml` per node in a directory
//! tree mirroring the call tree. They are written atomically by the writer thread
//! (`super::writer`), so the scheduler never waits on the disk.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One node's manifest: the seed's schema, then the extensions. The words every manifest
/// repeats (`status`, `kind`, `outputs`) are borrowed when written, not allocated per
/// node.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub status: Cow<'static, str>,
    pub summary: String,
    pub depth: usize,
    pub parent: Option<String>,
    pub children: Vec<String>,
    pub children_status: BTreeMap<String, String>,
    pub outputs: Vec<Cow<'static, str>>,
    // Extensions.
    pub id: String,
    pub kind: Cow<'static, str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default)]
    pub inputs: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs_hash: Option<String>,
    #[serde(default)]
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
    #[serde(default)]
    pub tokens: Tokens,
    #[serde(default)]
    pub cost_usd: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The summary was longer than the agent's budget and was cut.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub summary_cut: bool,
    /// The structured answer of an agent that returns a record or a list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<serde_json::Value>,
    /// Why an answer is only partly done (`claude -p` was refused tools).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial_reason: Option<String>,
    /// The provider's conversation id (`claude --resume ID` reopens it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// What this node and everything under it spent: the per-subtree roll-up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtree: Option<Spend>,
}

/// A node's manifest as it waits in the writer's queue. The writer is slower than the
/// scheduler, so a run of 10,000 nodes queues most of them at once and every byte here
/// counts 10,000 times: the words every manifest repeats are borrowed, the fields most
/// nodes leave empty are boxed together, and the children (segments and statuses) are
/// listed when the writer serializes it, off the scheduler's thread. Each field is the
/// [`Manifest`] field of the same name.
#[derive(Default)]
pub struct Queued {
    pub status: &'static str,
    pub kind: &'static str,
    pub depth: usize,
    pub summary: String,
    pub id: String,
    pub parent: Option<String>,
    pub agent: Option<String>,
    pub model: Option<String>,
    pub inputs: Vec<String>,
    pub inputs_hash: Option<String>,
    pub outputs: Vec<Cow<'static, str>>,
    pub attempts: u32,
    pub summary_cut: bool,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    pub tokens: Tokens,
    pub cost_usd: f64,
    /// Each child's id and status word, in order.
    pub children: Vec<(String, &'static str)>,
    pub rare: Option<Box<Rare>>,
}

/// The fields of a manifest that most nodes leave empty, each the [`Manifest`] field of
/// the same name (`subtree` only for nodes with children).
#[derive(Default)]
pub struct Rare {
    pub error: Option<String>,
    pub value: Option<serde_json::Value>,
    pub partial_reason: Option<String>,
    pub session: Option<String>,
    pub subtree: Option<Spend>,
}

impl Rare {
    /// `None` when every field is empty: nothing to box.
    pub fn boxed(self) -> Option<Box<Rare>> {
        let empty = self.error.is_none()
            && self.value.is_none()
            && self.partial_reason.is_none()
            && self.session.is_none()
            && self.subtree.is_none();
        (!empty).then(|| Box::new(self))
    }
}

impl Queued {
    /// The manifest as written.
    pub fn manifest(&self) -> Manifest {
        let segment = |id: &str| format!("{}/", id.rsplit('/').next().unwrap_or(""));
        let rare = self.rare.as_deref();
        Manifest {
            status: Cow::Borrowed(self.status),
            summary: self.summary.clone(),
            depth: self.depth,
            parent: self.parent.clone(),
            children: self.children.iter().map(|(id, _)| segment(id)).collect(),
            children_status: self
                .children
                .iter()
                .map(|(id, status)| (segment(id), (*status).to_string()))
                .collect(),
            outputs: self.outputs.clone(),
            id: self.id.clone(),
            kind: Cow::Borrowed(self.kind),
            agent: self.agent.clone(),
            model: self.model.clone(),
            inputs: self.inputs.clone(),
            inputs_hash: self.inputs_hash.clone(),
            attempts: self.attempts,
            started_at: self.started_at,
            finished_at: self.finished_at,
            tokens: self.tokens,
            cost_usd: self.cost_usd,
            error: rare.and_then(|r| r.error.clone()),
            summary_cut: self.summary_cut,
            value: rare.and_then(|r| r.value.clone()),
            partial_reason: rare.and_then(|r| r.partial_reason.clone()),
            session: rare.and_then(|r| r.session.clone()),
            subtree: rare.and_then(|r| r.subtree),
        }
    }
}

impl Serialize for Queued {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.manifest().serialize(serializer)
    }
}

/// Agent calls, tokens and money spent.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Spend {
    pub agent_calls: u64,
    pub tokens: Tokens,
    pub cost_usd: f64,
}

/// Tokens in and out.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Tokens {
    pub input: u64,
    pub output: u64,
}

/// `run.yaml`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct RunManifest {
    pub run_id: String,
    pub file: String,
    pub workflow: String,
    pub args: Vec<String>,
    pub provider: String,
    /// `--provider` (or `PAI_PROVIDER`) as it was given; absent when none was.
    /// `--resume` chooses it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chosen_provider: Option<String>,
    /// `--fixture`, made absolute; `--resume` uses it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixture: Option<String>,
    /// The directory the run was started in, where its relative paths (the file, path
    /// arguments) are read from: `--resume` runs from there too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory: Option<String>,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    pub started_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    pub totals: RunTotals,
}

/// The totals of a run.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct RunTotals {
    pub agent_calls: u64,
    pub reused: u64,
    pub complete: u64,
    /// Agents whose answer was only partly done (cut at the token limit, a tool
    /// refused): written only when there are some.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub partial: u64,
    pub failed: u64,
    pub waiting: u64,
    pub tokens: Tokens,
    pub cost_usd: f64,
    pub wall_seconds: f64,
    /// The critical path's share of the wall time: the sum of the durations along the
    /// longest chain of dependent calls.
    pub critical_path_seconds: f64,
}

fn is_zero(count: &u64) -> bool {
    *count == 0
}

/// Now, as RFC 3339.
pub fn now() -> String {
    Timestamp::now().to_string()
}

/// A moment, written as RFC 3339 with milliseconds (`2026-11-21T09:30:00.123Z`).
///
/// The scheduler keeps the `SystemTime` (no allocation); the text is made where the
/// manifest is serialized, on the writer thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timestamp(pub std::time::SystemTime);

impl Timestamp {
    /// Now.
    pub fn now() -> Timestamp {
        Timestamp(std::time::SystemTime::now())
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // humantime panics before 1970; a clock set that far back writes the epoch.
        humantime::format_rfc3339_millis(self.0.max(std::time::UNIX_EPOCH)).fmt(f)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_rfc3339_weak(&text)
            .map(Timestamp)
            .map_err(|e| serde::de::Error::custom(format!("`{text}` is not a time: {e}")))
    }
}

/// The directory of node `id` in run directory `run_dir`. Ids are `/`-separated
/// segments, none empty, `.` or `..` (`compile::ir::safe_segment`), so the id joins as
/// one relative path.
pub fn node_dir(run_dir: &Path, id: &str) -> PathBuf {
    run_dir.join(id)
}

/// Reads a node manifest, if there is a readable one.
pub fn read(path: &Path) -> Option<Manifest> {
    let text = crate::source::read_text(path).ok()?;
    serde_yaml::from_str(&text).ok()
}

/// Marks the run in `run_dir` as in use by this process until the returned file is
/// dropped: a second `pai` resuming it at the same time would run its calls again and
/// write over the same manifests. The lock is the kernel's (`flock`), so a run whose
/// `pai` was killed is free again at once.
pub fn lock_run(run_dir: &Path, run_id: &str) -> Result<std::fs::File, super::RunError> {
    let path = run_dir.join(".lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| super::RunError::io(&path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(super::RunError {
            plan_broken: false,
            message: format!("run `{run_id}` is in use by another `pai`"),
            help: "wait for it to finish, or stop it, then `--resume` it".to_string(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(super::RunError::io(&path, e)),
    }
}

/// Reads `run.yaml`.
pub fn read_run(run_dir: &Path) -> Result<RunManifest, String> {
    let path = run_dir.join("run.yaml");
    let text = crate::source::read_text(&path)?;
    serde_yaml::from_str(&text)
        .map_err(|e| format!("`{}` is not a run manifest: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_as_rfc3339_text() {
        let at =
            Timestamp(std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_795_000_000_123));
        let yaml = serde_yaml::to_string(&at).unwrap();
        assert_eq!(yaml, "2026-11-18T11:06:40.123Z\n");
        assert_eq!(serde_yaml::from_str::<Timestamp>(&yaml).unwrap(), at);
        assert!(serde_yaml::from_str::<Timestamp>("yesterday").is_err());
        let before = Timestamp(std::time::UNIX_EPOCH - std::time::Duration::from_secs(5));
        assert_eq!(before.to_string(), "1970-01-01T00:00:00.000Z");
    }

    /// A queued manifest is written as the schema has it: children as segments with a
    /// trailing `/` in order, their statuses keyed by segment, the rare fields in place.
    #[test]
    fn a_queued_manifest_is_written_as_the_schema_has_it() {
        let queued = Queued {
            status: "partial",
            kind: "workflow",
            depth: 1,
            summary: "two parts".to_string(),
            id: "w".to_string(),
            parent: None,
            agent: None,
            model: None,
            inputs: vec!["w/x".to_string()],
            inputs_hash: None,
            outputs: Vec::new(),
            attempts: 0,
            summary_cut: false,
            started_at: None,
            finished_at: None,
            tokens: Tokens::default(),
            cost_usd: 0.0,
            children: vec![
                ("w/leaf[b]".to_string(), "failed"),
                ("w/leaf[a]".to_string(), "complete"),
            ],
            rare: Rare {
                error: Some("one part failed".to_string()),
                ..Rare::default()
            }
            .boxed(),
        };
        let read: Manifest =
            serde_yaml::from_str(&serde_yaml::to_string(&queued).unwrap()).expect("a manifest");
        assert_eq!(read, queued.manifest());
        assert_eq!(read.status, "partial");
        assert_eq!(read.children, ["leaf[b]/", "leaf[a]/"]);
        assert_eq!(
            read.children_status.into_iter().collect::<Vec<_>>(),
            [
                ("leaf[a]/".to_string(), "complete".to_string()),
                ("leaf[b]/".to_string(), "failed".to_string())
            ]
        );
        assert_eq!(read.error.as_deref(), Some("one part failed"));
        assert!(
            Rare::default().boxed().is_none(),
            "nothing rare, nothing boxed"
        );
    }

    #[test]
    fn node_dirs_mirror_ids() {
        assert_eq!(
            node_dir(Path::new("runs/r1"), "execute/orchestrate[src]/coder[a.rs]"),
            Path::new("runs/r1/execute/orchestrate[src]/coder[a.rs]")
        );
    }
}
