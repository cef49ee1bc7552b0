//! Manifests (DESIGN §4): `run.yaml` and one `manifest.yaml` per node in a directory
//! tree mirroring the call tree. Writes are atomic (temp file, fsync, rename) and done
//! by a writer thread, so the scheduler never waits on the disk.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;

use serde::{Deserialize, Serialize};

/// One node's manifest: the seed's schema, then the extensions.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub status: String,
    pub summary: String,
    pub depth: usize,
    pub parent: Option<String>,
    pub children: Vec<String>,
    pub children_status: BTreeMap<String, String>,
    pub outputs: Vec<String>,
    // Extensions.
    pub id: String,
    pub kind: String,
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
    pub started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
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
    pub failed: u64,
    pub waiting: u64,
    pub tokens: Tokens,
    pub cost_usd: f64,
    pub wall_seconds: f64,
    /// The critical path's share of the wall time: the sum of the durations along the
    /// longest chain of dependent calls.
    pub critical_path_seconds: f64,
}

/// Now, as RFC 3339.
pub fn now() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

/// The directory of node `id` in run directory `run_dir`.
pub fn node_dir(run_dir: &Path, id: &str) -> PathBuf {
    let mut dir = run_dir.to_path_buf();
    for segment in id.split('/') {
        dir.push(segment);
    }
    dir
}

enum Job {
    Write(PathBuf, Vec<u8>),
    /// Serialized on the writer thread, off the scheduler's path.
    Yaml(PathBuf, Box<dyn Document>),
    Flush(mpsc::Sender<Vec<String>>),
}

/// Something the writer thread can turn into YAML.
pub trait Document: Send {
    fn to_yaml(&self) -> Result<String, String>;
}

impl<T: Serialize + Send> Document for T {
    fn to_yaml(&self) -> Result<String, String> {
        serde_yaml::to_string(self).map_err(|e| e.to_string())
    }
}

/// Writes files atomically on its own thread.
pub struct Writer {
    jobs: mpsc::Sender<Job>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// Starts the writer thread.
    pub fn start() -> Writer {
        let (jobs, inbox) = mpsc::channel::<Job>();
        let thread = std::thread::spawn(move || {
            let mut errors = Vec::new();
            while let Ok(job) = inbox.recv() {
                match job {
                    Job::Write(path, bytes) => {
                        if let Err(error) = write_atomic(&path, &bytes) {
                            errors.push(format!("cannot write `{}`: {error}", path.display()));
                        }
                    }
                    Job::Yaml(path, document) => {
                        let written = document.to_yaml().and_then(|text| {
                            write_atomic(&path, text.as_bytes()).map_err(|e| e.to_string())
                        });
                        if let Err(error) = written {
                            errors.push(format!("cannot write `{}`: {error}", path.display()));
                        }
                    }
                    Job::Flush(reply) => {
                        let _ = reply.send(std::mem::take(&mut errors));
                    }
                }
            }
        });
        Writer {
            jobs,
            thread: Some(thread),
        }
    }

    /// Queues a YAML document for `path`; never blocks, and serializes on the writer
    /// thread.
    pub fn yaml<T: Serialize + Send + 'static>(&self, path: PathBuf, value: T) {
        let _ = self.jobs.send(Job::Yaml(path, Box::new(value)));
    }

    /// Queues bytes for `path`; never blocks.
    pub fn bytes(&self, path: PathBuf, bytes: Vec<u8>) {
        let _ = self.jobs.send(Job::Write(path, bytes));
    }

    /// Waits until everything queued is on disk; returns the writes that failed.
    pub fn flush(&self) -> Vec<String> {
        let (reply, answer) = mpsc::channel();
        if self.jobs.send(Job::Flush(reply)).is_err() {
            return vec!["the manifest writer stopped".to_string()];
        }
        answer
            .recv()
            .unwrap_or_else(|_| vec!["the manifest writer stopped".to_string()])
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.flush();
        let (closed, _) = mpsc::channel();
        drop(std::mem::replace(&mut self.jobs, closed));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Temp file, fsync, rename: a reader sees the old file or the new one, never half.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(bytes)?;
        // The data must be on disk before the rename makes it visible.
        file.sync_data()?;
    }
    std::fs::rename(&temp, path)
}

/// Reads a node manifest, if there is a readable one.
pub fn read(path: &Path) -> Option<Manifest> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_yaml::from_str(&text).ok()
}

/// Reads `run.yaml`.
pub fn read_run(run_dir: &Path) -> Result<RunManifest, String> {
    let path = run_dir.join("run.yaml");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "cannot read `{}`: {}",
            path.display(),
            e.to_string().to_lowercase()
        )
    })?;
    serde_yaml::from_str(&text)
        .map_err(|e| format!("`{}` is not a run manifest: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_writes_replace_whole_files() {
        let dir = std::env::temp_dir().join(format!("pai-manifest-{}", std::process::id()));
        let path = dir.join("a/b/manifest.yaml");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temp file is left behind");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn node_dirs_mirror_ids() {
        assert_eq!(
            node_dir(Path::new("runs/r1"), "execute/orchestrate[src]/coder[a.rs]"),
            Path::new("runs/r1/execute/orchestrate[src]/coder[a.rs]")
        );
    }
}
