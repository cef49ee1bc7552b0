//! A child process's output, read up to a limit: what `exec` steps and command
//! providers run may write without end (`yes`), and all of it would otherwise be held
//! in memory until the call's timeout.

use std::process::ExitStatus;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Child;

/// The most a child may write to its standard output, and again to its standard
/// error, before it is stopped: far more than a prompt can hold, far less than memory.
pub const MAX_OUTPUT: usize = 16 << 20;

/// What a child wrote, and how it ended.
pub struct Captured {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// Why a child's output could not be read whole.
pub enum CaptureError {
    /// It wrote more than [`MAX_OUTPUT`] to the stream named; it has been killed.
    TooMuch(&'static str),
    /// Reading its pipes or waiting for it failed.
    Io(std::io::Error),
}

impl CaptureError {
    /// The message for a node or a provider error: ``"`prog` wrote more than ..."``.
    pub fn describe(&self, program: &str) -> String {
        match self {
            CaptureError::TooMuch(stream) => format!(
                "`{program}` wrote more than {} MiB to its {stream}; it was stopped",
                MAX_OUTPUT >> 20
            ),
            CaptureError::Io(error) => {
                format!("`{program}` failed: {}", error.to_string().to_lowercase())
            }
        }
    }
}

/// A child in a session (and so a process group) of its own, with everything it
/// starts: dropped (a timeout, Ctrl-C) or done, the whole group is killed.
/// `kill_on_drop` alone killed the child and left what it had started running (a
/// provider script's `sleep 1000` under `timeout` outlived `pai`).
///
/// A new session has no terminal: a program that asks on the terminal (`ssh` or `git`
/// for a password) fails at once rather than stopping, in the background, until its
/// timeout; and Ctrl-C reaches `pai`, which stops the group, not the child directly.
pub struct Group {
    pub child: Child,
    /// The group's id (the child's pid) until the group has been killed after the
    /// child was reaped: an id signalled later could name a new process by then.
    id: Option<u32>,
}

impl Group {
    /// Spawns `command` as the leader of a new session and process group.
    pub fn spawn(command: &mut tokio::process::Command) -> std::io::Result<Group> {
        #[cfg(unix)]
        // SAFETY: the hook runs in the child between fork and exec, where only
        // async-signal-safe calls are allowed: `setsid` is a plain system call, and the
        // closure allocates nothing and captures nothing.
        unsafe {
            command.pre_exec(|| {
                if libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn()?;
        let id = child.id();
        Ok(Group { child, id })
    }

    /// Kills every process left in the group (none left is not an error).
    fn kill_all(&self) {
        #[cfg(unix)]
        if let Some(id) = self.id.and_then(|id| libc::pid_t::try_from(id).ok()) {
            // SAFETY: `kill` with a negative pid signals the process group `id`, which
            // this child leads; it touches no memory.
            unsafe {
                libc::kill(-id, libc::SIGKILL);
            }
        }
    }

    /// Kills what is left of the group once the child has been reaped, for the last
    /// time.
    fn finish(&mut self) {
        self.kill_all();
        self.id = None;
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill_all();
    }
}

/// Waits for the child of `group`, reading its piped standard output and error at the
/// same time, each up to [`MAX_OUTPUT`] bytes. A child that writes more is killed at
/// once (so the other pipe ends too) and the error names the stream. Once the child
/// has exited, what it left running is killed: it would keep the pipes open (a script
/// that answered and left `sleep 1000 &` behind waited out its whole timeout).
pub async fn wait_capped(mut group: Group) -> Result<Captured, CaptureError> {
    let stdout = group.child.stdout.take();
    let stderr = group.child.stderr.take();
    let reading = async {
        tokio::try_join!(
            read_capped(stdout, "standard output"),
            read_capped(stderr, "standard error"),
        )
    };
    tokio::pin!(reading);
    let mut exited = None;
    let read = tokio::select! {
        read = &mut reading => read,
        status = group.child.wait() => {
            group.finish();
            exited = Some(status.map_err(CaptureError::Io)?);
            reading.await
        }
    };
    let (stdout, stderr) = match read {
        Ok(both) => both,
        Err(error) => {
            // Killing may fail only for a child that has already exited; the rest of
            // its group goes once it is reaped.
            let _ = group.child.start_kill();
            let _ = group.child.wait().await;
            group.finish();
            return Err(error);
        }
    };
    let status = match exited {
        Some(status) => status,
        None => group.child.wait().await.map_err(CaptureError::Io)?,
    };
    group.finish();
    Ok(Captured {
        status,
        stdout,
        stderr,
    })
}

/// All of `pipe` (called `stream` in errors) up to [`MAX_OUTPUT`] bytes; nothing for a
/// stream that was not piped.
async fn read_capped(
    pipe: Option<impl AsyncRead + Unpin>,
    stream: &'static str,
) -> Result<Vec<u8>, CaptureError> {
    let mut bytes = Vec::new();
    if let Some(pipe) = pipe {
        // One byte past the limit, so that more is noticed.
        pipe.take(MAX_OUTPUT as u64 + 1)
            .read_to_end(&mut bytes)
            .await
            .map_err(CaptureError::Io)?;
    }
    if bytes.len() > MAX_OUTPUT {
        return Err(CaptureError::TooMuch(stream));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use std::process::Stdio;

    use super::*;

    fn shell(script: &str) -> Group {
        Group::spawn(
            tokio::process::Command::new("sh")
                .args(["-c", script])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true),
        )
        .expect("sh runs")
    }

    /// Whether a process with `pid` still runs (not a zombie).
    #[cfg(target_os = "linux")]
    fn running(pid: &str) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|stat| !stat.contains(") Z "))
    }

    /// A child that answers and exits, leaving a process behind that holds its output
    /// open: the answer comes at once (it waited for the leftover to close the pipe),
    /// and the leftover is gone.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn what_a_child_leaves_running_is_stopped_with_it() {
        let started = std::time::Instant::now();
        let captured = wait_capped(shell("sleep 30 & echo $!; echo answer"))
            .await
            .ok()
            .expect("captured");
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
        let out = String::from_utf8_lossy(&captured.stdout).to_string();
        let mut lines = out.lines();
        let leftover = lines.next().expect("the leftover's pid").to_string();
        assert_eq!(lines.next(), Some("answer"));
        for _ in 0..100 {
            if !running(&leftover) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("`sleep` {leftover} outlived its parent");
    }

    /// A call dropped before its child ends (a timeout) stops what the child started.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_dropped_call_stops_the_whole_group() {
        let mut group = shell("sleep 30 & echo $!; wait");
        let mut first = String::new();
        {
            use tokio::io::AsyncBufReadExt;
            let stdout = group.child.stdout.as_mut().expect("piped");
            let mut reader = tokio::io::BufReader::new(stdout);
            reader.read_line(&mut first).await.expect("a line");
        }
        let leftover = first.trim().to_string();
        assert!(running(&leftover));
        drop(group);
        for _ in 0..100 {
            if !running(&leftover) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("`sleep` {leftover} outlived the dropped call");
    }

    #[tokio::test]
    async fn output_within_the_limit_is_kept_whole() {
        let captured = wait_capped(shell("echo out; echo err >&2; exit 3"))
            .await
            .ok()
            .expect("captured");
        assert_eq!(captured.stdout, b"out\n");
        assert_eq!(captured.stderr, b"err\n");
        assert_eq!(captured.status.code(), Some(3));
    }

    #[tokio::test]
    async fn a_flood_on_either_stream_stops_the_child() {
        for (script, stream) in [
            ("yes", "standard output"),
            ("echo fine; yes >&2", "standard error"),
        ] {
            match wait_capped(shell(script)).await {
                Err(error @ CaptureError::TooMuch(_)) => assert_eq!(
                    error.describe("sh"),
                    format!("`sh` wrote more than 16 MiB to its {stream}; it was stopped")
                ),
                Err(CaptureError::Io(error)) => panic!("{script}: {error}"),
                Ok(_) => panic!("{script}: captured whole"),
            }
        }
    }
}
