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

/// Waits for `child`, reading its piped standard output and error at the same time,
/// each up to [`MAX_OUTPUT`] bytes. A child that writes more is killed at once (so the
/// other pipe ends too) and the error names the stream.
pub async fn wait_capped(mut child: Child) -> Result<Captured, CaptureError> {
    let read = tokio::try_join!(
        read_capped(child.stdout.take(), "standard output"),
        read_capped(child.stderr.take(), "standard error"),
    );
    let (stdout, stderr) = match read {
        Ok(both) => both,
        Err(error) => {
            // Killing may fail only for a child that has already exited.
            let _ = child.start_kill();
            let _ = child.wait().await;
            return Err(error);
        }
    };
    let status = child.wait().await.map_err(CaptureError::Io)?;
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

    fn shell(script: &str) -> Child {
        tokio::process::Command::new("sh")
            .args(["-c", script])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("sh runs")
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
