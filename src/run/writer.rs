//! The writer thread: every file a run writes goes through it, so the scheduler never
//! waits on the disk.
//!
//! Writes are atomic: each file is written to a temp file beside it, made durable, then
//! renamed over the target, so a reader (or a resume after `kill -9`) sees the old file
//! or the new one, never half of one.
//!
//! Writes are committed in batches: whatever is queued when the thread wakes (up to
//! [`MAX_BATCH`] files) is written to temp files (closed again, so a batch holds no
//! descriptors), made durable together, then renamed in order. On Linux one `syncfs` per filesystem makes a whole batch durable, where an
//! `fsync` per file cost a journal commit each and let the queue (and the run's memory)
//! grow with every node; elsewhere each temp file is synced on its own.
//!
//! The queue holds at most [`NODE_WINDOW`] nodes' files: a node's manifest is built
//! from the scheduler's state only when the writer has room for it ([`Writer::has_room`],
//! [`Writer::room`]). The scheduler keeps the nodes still to write as a few bytes each,
//! so a run that finishes calls faster than the disk takes their manifests does not
//! hold every manifest built at once.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use tokio::sync::Notify;

use serde::Serialize;

use super::manifest::Queued;

/// The most files one batch stages before committing them.
pub const MAX_BATCH: usize = 256;

/// The most nodes whose files may wait in the writer's queue: two to four batches (a
/// node has one or two files), so the writer never waits for the scheduler to hand it
/// the next one.
pub const NODE_WINDOW: usize = 2 * MAX_BATCH;

enum Job {
    Write(PathBuf, Vec<u8>),
    /// Serialized on the writer thread, off the scheduler's path.
    Yaml(PathBuf, Box<dyn Document>),
    /// A node's files in its directory under the run's (`manifest::node_dir`):
    /// `output.md` (when there is one), then `manifest.yaml`, which is not written if
    /// the output could not be.
    Node(Arc<Path>, Option<Arc<str>>, Box<Queued>),
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
    /// Nodes queued whose files are not yet committed.
    backlog: Arc<AtomicUsize>,
    /// Notified after each commit: the backlog went down.
    room: Arc<Notify>,
}

impl Writer {
    /// Starts the writer thread.
    pub fn start() -> Writer {
        let (jobs, inbox) = mpsc::channel::<Job>();
        let backlog = Arc::new(AtomicUsize::new(0));
        let room = Arc::new(Notify::new());
        let thread = {
            let backlog = backlog.clone();
            let room = room.clone();
            std::thread::spawn(move || {
                let mut batch = Batch::default();
                while let Ok(job) = inbox.recv() {
                    batch.take(job);
                    while batch.staged.len() < MAX_BATCH {
                        match inbox.try_recv() {
                            Ok(job) => batch.take(job),
                            Err(_) => break,
                        }
                    }
                    batch.commit();
                    let nodes = std::mem::take(&mut batch.nodes);
                    if nodes > 0 {
                        backlog.fetch_sub(nodes, Ordering::AcqRel);
                        room.notify_one();
                    }
                }
            })
        };
        Writer {
            jobs,
            thread: Some(thread),
            backlog,
            room,
        }
    }

    /// Whether another node's files may be queued now: fewer than [`NODE_WINDOW`] wait,
    /// or the writer thread has stopped (queuing then fails, and the flush says so).
    pub fn has_room(&self) -> bool {
        self.backlog.load(Ordering::Acquire) < NODE_WINDOW
            || self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Notified each time the writer commits nodes' files, so a scheduler with nodes
    /// still to write can wait for room without polling.
    pub fn room(&self) -> Arc<Notify> {
        self.room.clone()
    }

    /// Queues a YAML document for `path`; never blocks, and serializes on the writer
    /// thread.
    pub fn yaml<T: Serialize + Send + 'static>(&self, path: PathBuf, value: T) {
        let _ = self.jobs.send(Job::Yaml(path, Box::new(value)));
    }

    /// Queues a node's `output.md` (if any) and then its `manifest.yaml`, in the node's
    /// directory under `run_dir`; never blocks. The output is shared, not copied. A
    /// manifest never stands for an output that is not on disk: if the output cannot be
    /// written, neither is the manifest, and the next flush reports both.
    pub fn node(&self, run_dir: &Arc<Path>, output: Option<Arc<str>>, manifest: Queued) {
        self.backlog.fetch_add(1, Ordering::AcqRel);
        let _ = self
            .jobs
            .send(Job::Node(run_dir.clone(), output, Box::new(manifest)));
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

/// A temp file written and not yet renamed over its target.
struct Staged {
    temp: PathBuf,
    path: PathBuf,
    /// The filesystem it is on (`st_dev`; 0 where there is no such thing).
    device: u64,
    /// Renamed only if the file staged before it was: a node's manifest after its
    /// output, so a manifest never stands for an output that is not on disk.
    after_previous: bool,
}

/// Files staged by the writer thread since its last commit.
#[derive(Default)]
struct Batch {
    staged: Vec<Staged>,
    /// Temp files made so far, so two writes of one path in a batch never share one.
    made: u64,
    errors: Vec<String>,
    /// Node jobs taken since the writer last said how many it committed.
    nodes: usize,
    /// The directory written to last, known to exist, and its filesystem: a node's
    /// output and manifest come one after the other, and each `mkdir` and `stat`
    /// skipped is a system call fewer per file.
    last_dir: Option<(PathBuf, u64)>,
}

impl Batch {
    fn take(&mut self, job: Job) {
        match job {
            Job::Write(path, bytes) => {
                self.stage(path, &bytes);
            }
            Job::Yaml(path, document) => {
                self.stage_yaml(path, document.as_ref());
            }
            Job::Node(run_dir, output, manifest) => {
                self.nodes += 1;
                let dir = super::manifest::node_dir(&run_dir, &manifest.id);
                let manifest_path = dir.join("manifest.yaml");
                if let Some(text) = output {
                    if !self.stage(dir.join("output.md"), text.as_bytes()) {
                        self.errors.push(format!(
                            "cannot write `{}`: its output was not written",
                            manifest_path.display()
                        ));
                        return;
                    }
                    if self.stage_yaml(manifest_path, manifest.as_ref()) {
                        if let Some(last) = self.staged.last_mut() {
                            last.after_previous = true;
                        }
                    }
                } else {
                    self.stage_yaml(manifest_path, manifest.as_ref());
                }
            }
            Job::Flush(reply) => {
                self.commit();
                let _ = reply.send(std::mem::take(&mut self.errors));
            }
        }
    }

    /// [`Batch::stage`] for a document turned into YAML; says whether it could.
    fn stage_yaml(&mut self, path: PathBuf, document: &dyn Document) -> bool {
        match document.to_yaml() {
            Ok(text) => self.stage(path, text.as_bytes()),
            Err(error) => {
                self.errors.push(cannot_write(&path, &error));
                false
            }
        }
    }

    /// Writes `bytes` to a temp file for `path`; says whether it could.
    fn stage(&mut self, path: PathBuf, bytes: &[u8]) -> bool {
        self.made += 1;
        let mut staged = self.stage_temp(&path, bytes);
        // The directory went away since it was made (a user removed it): make it again.
        if staged
            .as_ref()
            .is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
        {
            self.last_dir = None;
            staged = self.stage_temp(&path, bytes);
        }
        match staged {
            Ok((temp, device)) => {
                self.staged.push(Staged {
                    temp,
                    path,
                    device,
                    after_previous: false,
                });
                true
            }
            Err(error) => {
                self.errors.push(cannot_write(&path, &error));
                false
            }
        }
    }

    /// The temp file for `path`, in its directory (made if need be), and its filesystem.
    fn stage_temp(&mut self, path: &Path, bytes: &[u8]) -> std::io::Result<(PathBuf, u64)> {
        let device = self.directory(path)?;
        Ok((write_temp(path, bytes, self.made)?, device))
    }

    /// Makes sure the directory of `path` exists; says which filesystem it is on.
    fn directory(&mut self, path: &Path) -> std::io::Result<u64> {
        let dir = path.parent().unwrap_or(Path::new(""));
        if let Some((last, device)) = &self.last_dir {
            if last == dir {
                return Ok(*device);
            }
        }
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir)?;
        }
        let device = device_of(dir)?;
        self.last_dir = Some((dir.to_path_buf(), device));
        Ok(device)
    }

    /// Makes every staged file durable, then renames each over its target, in the order
    /// they were queued. A file that cannot be made durable is not renamed and is
    /// reported, and so is a manifest whose node's output was not written; the others go
    /// on.
    fn commit(&mut self) {
        if self.staged.is_empty() {
            return;
        }
        let staged = std::mem::take(&mut self.staged);
        let synced = sync_all(&staged);
        let mut previous_written = true;
        for (entry, synced) in staged.into_iter().zip(synced) {
            let Staged {
                temp,
                path,
                after_previous,
                ..
            } = entry;
            let written = if after_previous && !previous_written {
                Err("its output was not written".to_string())
            } else {
                synced
                    .and_then(|()| std::fs::rename(&temp, &path))
                    .map_err(|e| e.to_string())
            };
            previous_written = written.is_ok();
            if let Err(error) = written {
                let _ = std::fs::remove_file(&temp);
                self.errors.push(cannot_write(&path, &error));
            }
        }
    }
}

/// Writes `bytes` to a fresh temp file beside `path`, whose directory exists. The file
/// is closed again: a batch holds no descriptors, however large.
fn write_temp(path: &Path, bytes: &[u8], serial: u64) -> std::io::Result<PathBuf> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = path.with_file_name(format!(".{name}.{}.{serial}.tmp", process_id()));
    match File::create(&temp).and_then(|mut file| file.write_all(bytes)) {
        Ok(()) => Ok(temp),
        Err(error) => {
            let _ = std::fs::remove_file(&temp);
            Err(error)
        }
    }
}

/// This process's id, asked of the system once (glibc makes `getpid` a system call).
fn process_id() -> u32 {
    static ID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *ID.get_or_init(std::process::id)
}

/// The filesystem `dir` is on (`st_dev`), which is that of every file in it.
#[cfg(unix)]
fn device_of(dir: &Path) -> std::io::Result<u64> {
    use std::os::unix::fs::MetadataExt as _;
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    Ok(std::fs::metadata(dir)?.dev())
}

#[cfg(not(unix))]
fn device_of(_: &Path) -> std::io::Result<u64> {
    Ok(0)
}

/// Makes the data of every staged file durable: one result per file, in order.
#[cfg(target_os = "linux")]
fn sync_all(staged: &[Staged]) -> Vec<std::io::Result<()>> {
    use std::os::unix::io::AsRawFd as _;
    // One `syncfs` per filesystem the batch wrote to, through one of its files.
    let mut devices: Vec<u64> = Vec::new();
    for entry in staged {
        if devices.contains(&entry.device) {
            continue;
        }
        devices.push(entry.device);
        let synced = File::open(&entry.temp).and_then(|file| {
            // SAFETY: `syncfs` only reads the descriptor, which `file` keeps open.
            if unsafe { libc::syncfs(file.as_raw_fd()) } == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
        if synced.is_err() {
            return each_synced(staged);
        }
    }
    staged.iter().map(|_| Ok(())).collect()
}

#[cfg(not(target_os = "linux"))]
fn sync_all(staged: &[Staged]) -> Vec<std::io::Result<()>> {
    each_synced(staged)
}

/// Syncs each staged file on its own (an `fsync` reaches the file through any
/// descriptor).
fn each_synced(staged: &[Staged]) -> Vec<std::io::Result<()>> {
    staged.iter().map(|entry| sync_file(&entry.temp)).collect()
}

/// Syncs one file's data, through a descriptor opened for writing (which some systems
/// require).
fn sync_file(path: &Path) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|file| file.sync_data())
}

/// The error for a file that could not be written, in the lowercase of every message.
fn cannot_write(path: &Path, error: &dyn std::fmt::Display) -> String {
    format!(
        "cannot write `{}`: {}",
        path.display(),
        error.to_string().to_lowercase()
    )
}

/// Temp file, sync, rename, for one file outside the writer thread.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let temp = write_temp(path, bytes, 0)?;
    let done = sync_file(&temp).and_then(|()| std::fs::rename(&temp, path));
    if done.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pai-writer-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn atomic_writes_replace_whole_files() {
        let dir = scratch("atomic");
        let path = dir.join("a/b/manifest.yaml");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temp file is left behind");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_batch_keeps_the_last_write_of_each_path_and_no_temp_files() {
        let dir = scratch("batch");
        let writer = Writer::start();
        for i in 0..(MAX_BATCH * 2 + 7) {
            writer.bytes(
                dir.join(format!("n{}/out.md", i % 10)),
                i.to_string().into_bytes(),
            );
        }
        writer.yaml(dir.join("run.yaml"), vec!["a", "b"]);
        assert!(writer.flush().is_empty());
        for n in 0..10 {
            let last = (0..(MAX_BATCH * 2 + 7))
                .filter(|i| i % 10 == n)
                .max()
                .unwrap();
            let text = std::fs::read_to_string(dir.join(format!("n{n}/out.md"))).unwrap();
            assert_eq!(text, last.to_string());
            let files = std::fs::read_dir(dir.join(format!("n{n}")))
                .unwrap()
                .count();
            assert_eq!(files, 1, "no temp file is left in n{n}");
        }
        assert_eq!(
            std::fs::read_to_string(dir.join("run.yaml")).unwrap(),
            "- a\n- b\n"
        );
        drop(writer);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn failed_writes_are_reported_by_the_next_flush() {
        let dir = scratch("fail");
        std::fs::create_dir_all(&dir).unwrap();
        // A file where a directory must go.
        std::fs::write(dir.join("blocker"), b"x").unwrap();
        let writer = Writer::start();
        writer.bytes(dir.join("blocker/out.md"), b"lost".to_vec());
        writer.bytes(dir.join("fine.md"), b"kept".to_vec());
        let errors = writer.flush();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains("blocker"), "{errors:?}");
        assert_eq!(std::fs::read(dir.join("fine.md")).unwrap(), b"kept");
        assert!(writer.flush().is_empty(), "errors are reported once");
        drop(writer);
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// The writer remembers the directory it wrote to last; one removed behind its back
    /// is made again, not reported as a failed write.
    #[test]
    fn a_directory_removed_between_writes_is_made_again() {
        let dir = scratch("removed");
        let writer = Writer::start();
        writer.bytes(dir.join("n/out.md"), b"one".to_vec());
        assert!(writer.flush().is_empty());
        std::fs::remove_dir_all(dir.join("n")).unwrap();
        writer.bytes(dir.join("n/manifest.yaml"), b"two".to_vec());
        assert_eq!(writer.flush(), Vec::<String>::new());
        assert_eq!(std::fs::read(dir.join("n/manifest.yaml")).unwrap(), b"two");
        drop(writer);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_node_job_writes_its_output_then_its_manifest() {
        let dir: Arc<Path> = scratch("node").into();
        let writer = Writer::start();
        let queued = |id: &str| Queued {
            id: id.to_string(),
            status: "complete",
            ..Queued::default()
        };
        writer.node(&dir, Some("the answer".into()), queued("w/a"));
        writer.node(&dir, None, queued("w/b"));
        assert!(writer.flush().is_empty());
        assert_eq!(
            std::fs::read(dir.join("w/a/output.md")).unwrap(),
            b"the answer"
        );
        let written: super::super::manifest::Manifest =
            serde_yaml::from_str(&std::fs::read_to_string(dir.join("w/a/manifest.yaml")).unwrap())
                .unwrap();
        assert_eq!(
            (written.id.as_str(), written.status.as_ref()),
            ("w/a", "complete")
        );
        assert!(!dir.join("w/b/output.md").exists());
        assert!(dir.join("w/b/manifest.yaml").exists());
        drop(writer);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A manifest never stands for an output that is not on disk: when a node's output
    /// cannot be written, neither is its manifest, and both are reported.
    #[test]
    fn a_node_whose_output_fails_gets_no_manifest() {
        let dir: Arc<Path> = scratch("node-fails").into();
        // A directory where the output file must go: its rename fails at the commit.
        std::fs::create_dir_all(dir.join("w/c/output.md")).unwrap();
        let writer = Writer::start();
        let queued = Queued {
            id: "w/c".to_string(),
            status: "complete",
            ..Queued::default()
        };
        writer.node(&dir, Some("lost".into()), queued);
        let errors = writer.flush();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].contains("output.md"), "{errors:?}");
        assert!(errors[1].contains("manifest.yaml"), "{errors:?}");
        assert!(
            errors[1].ends_with("its output was not written"),
            "{errors:?}"
        );
        assert!(!dir.join("w/c/manifest.yaml").exists());
        let leftovers: Vec<_> = std::fs::read_dir(dir.join("w/c"))
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.file_name())
            .collect();
        assert_eq!(leftovers, ["output.md"], "no temp file is left behind");
        drop(writer);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
