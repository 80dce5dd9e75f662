//! Finding, starting, reaping and stopping the `ollama serve` process.

use std::ffi::OsString;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use llm_core::http::reqwest::Url;
use tokio::sync::{oneshot, watch};

/// Most bytes of the server log quoted in an error.
const LOG_TAIL: usize = 2000;
/// Longest wait for a killed server to exit.
const KILL_WAIT: Duration = Duration::from_secs(10);

/// A server process this crate started.
#[derive(Debug)]
pub(crate) struct Spawned {
    /// Its process id.
    pub pid: Option<u32>,
    /// Asks the reaper task to kill it. Dropping it does not kill the process.
    kill: Option<oneshot::Sender<()>>,
    /// `Some(description)` once the process has exited (and been reaped).
    pub exit: watch::Receiver<Option<String>>,
    /// Where its stdout and stderr go.
    pub log: Option<PathBuf>,
}

impl Spawned {
    /// Its exit description, if it has exited.
    pub fn exited(&self) -> Option<String> {
        self.exit.borrow().clone()
    }

    /// Kills it (if still running) and waits for it to be reaped; returns how it ended.
    pub async fn kill(&mut self) -> Option<String> {
        if let Some(tx) = self.kill.take() {
            let _ = tx.send(());
        }
        let mut exit = self.exit.clone();
        let waited = tokio::time::timeout(KILL_WAIT, exit.wait_for(Option::is_some)).await;
        match waited {
            Ok(Ok(v)) => v.clone(),
            _ => None,
        }
    }
}

/// Whether `url` names this machine (`localhost`, a loopback or unspecified address).
pub(crate) fn is_local(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let lower = host.to_ascii_lowercase();
    if lower == "localhost" || lower.ends_with(".localhost") {
        return true;
    }
    host.parse::<IpAddr>()
        .is_ok_and(|ip| ip.is_loopback() || ip.is_unspecified())
}

/// `host:port` of `url`, the form `OLLAMA_HOST` takes.
pub(crate) fn host_port(url: &Url) -> Option<String> {
    let host = url.host_str()?;
    let port = url.port_or_known_default()?;
    Some(format!("{host}:{port}"))
}

/// Finds the executable: a name is searched on `PATH`, a path is used as it is.
pub(crate) fn resolve_binary(binary: &Path, path_var: Option<OsString>) -> Option<PathBuf> {
    let has_dir = binary.parent().is_some_and(|p| !p.as_os_str().is_empty());
    if has_dir {
        return binary.is_file().then(|| binary.to_path_buf());
    }
    let path_var = path_var?;
    std::env::split_paths(&path_var)
        .filter(|dir| !dir.as_os_str().is_empty())
        .flat_map(|dir| candidates(&dir, binary))
        .find(|c| is_executable(c))
}

fn candidates(dir: &Path, binary: &Path) -> Vec<PathBuf> {
    let plain = dir.join(binary);
    if cfg!(windows) && binary.extension().is_none() {
        vec![plain.with_extension("exe"), plain]
    } else {
        vec![plain]
    }
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file()
}

/// The log file of a server started for `port`, in the temporary directory.
pub(crate) fn log_path(port: u16) -> PathBuf {
    std::env::temp_dir().join(format!("llm-ollama-serve-{port}.log"))
}

/// An executable found and its output files opened, ready to start.
#[derive(Debug)]
pub(crate) struct Prepared {
    /// The executable.
    pub binary: PathBuf,
    stdout: Stdio,
    stderr: Stdio,
    log: Option<PathBuf>,
}

/// Finds the executable and opens the log (blocking file-system work: run it
/// off the async threads). `None` when the executable does not exist.
pub(crate) fn prepare(
    binary: &Path,
    path_var: Option<OsString>,
    log: Option<&Path>,
) -> Option<Prepared> {
    let binary = resolve_binary(binary, path_var)?;
    let opened = log.and_then(|p| {
        let file = std::fs::File::create(p).ok()?;
        let err = file.try_clone().ok()?;
        Some((file, err, p.to_path_buf()))
    });
    let (stdout, stderr, log) = match opened {
        Some((out, err, path)) => (Stdio::from(out), Stdio::from(err), Some(path)),
        None => (Stdio::null(), Stdio::null(), None),
    };
    Some(Prepared {
        binary,
        stdout,
        stderr,
        log,
    })
}

/// Starts `<binary> serve` with `OLLAMA_HOST` and `env`, in its own process
/// group (so a Ctrl-C in our terminal does not stop it), output to the log.
///
/// A reaper task owns the child: it waits for it (so it never lingers as a
/// zombie while we run) and kills it only when [`Spawned::kill`] asks.
pub(crate) fn spawn(
    prepared: Prepared,
    ollama_host: &str,
    env: &[(OsString, OsString)],
) -> std::io::Result<Spawned> {
    let mut cmd = tokio::process::Command::new(&prepared.binary);
    cmd.arg("serve")
        .env("OLLAMA_HOST", ollama_host)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(prepared.stdout)
        .stderr(prepared.stderr)
        .kill_on_drop(false);
    #[cfg(unix)]
    cmd.process_group(0);
    let child = cmd.spawn()?;
    let pid = child.id();
    let (kill_tx, kill_rx) = oneshot::channel();
    let (exit_tx, exit_rx) = watch::channel(None);
    tokio::spawn(reap(child, kill_rx, exit_tx));
    Ok(Spawned {
        pid,
        kill: Some(kill_tx),
        exit: exit_rx,
        log: prepared.log,
    })
}

async fn reap(
    mut child: tokio::process::Child,
    kill: oneshot::Receiver<()>,
    exit: watch::Sender<Option<String>>,
) {
    // A dropped sender (the service went away) is not a kill request: the
    // server keeps running, and this task still reaps it if it exits.
    let kill_requested = async move {
        if kill.await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let status = tokio::select! {
        status = child.wait() => status,
        () = kill_requested => {
            let _ = child.start_kill();
            child.wait().await
        }
    };
    let text = match status {
        Ok(s) => s.to_string(),
        Err(e) => format!("unknown exit status ({e})"),
    };
    tracing::debug!(exit = %text, "ollama server process ended");
    let _ = exit.send(Some(text));
}

/// The last lines of a server log, for an error message.
pub(crate) async fn log_tail(log: &Path) -> Option<String> {
    let bytes = tokio::fs::read(log).await.ok()?;
    let start = bytes.len().saturating_sub(LOG_TAIL);
    let text = String::from_utf8_lossy(&bytes[start..]);
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn local_hosts() {
        for s in [
            "http://localhost:11434",
            "http://127.0.0.1:1",
            "http://[::1]:11434",
            "http://0.0.0.0:11434",
            "http://LOCALHOST",
        ] {
            assert!(is_local(&url(s)), "{s}");
        }
        for s in [
            "http://gpu-box:11434",
            "https://ollama.com",
            "http://10.0.0.5:11434",
        ] {
            assert!(!is_local(&url(s)), "{s}");
        }
    }

    #[test]
    fn ollama_host_is_host_and_port() {
        assert_eq!(
            host_port(&url("http://localhost:11434/")).as_deref(),
            Some("localhost:11434")
        );
        assert_eq!(
            host_port(&url("http://[::1]:8080")).as_deref(),
            Some("[::1]:8080")
        );
        assert_eq!(
            host_port(&url("http://127.0.0.1")).as_deref(),
            Some("127.0.0.1:80")
        );
    }

    #[test]
    fn missing_binaries_are_not_found() {
        assert_eq!(
            resolve_binary(
                Path::new("surely-no-such-binary-xyz"),
                std::env::var_os("PATH")
            ),
            None
        );
        assert_eq!(resolve_binary(Path::new("ollama"), None), None);
        assert_eq!(
            resolve_binary(
                Path::new("/nonexistent/dir/ollama"),
                std::env::var_os("PATH")
            ),
            None
        );
    }

    #[cfg(unix)]
    #[test]
    fn binaries_are_found_on_path() {
        let found = resolve_binary(Path::new("sh"), std::env::var_os("PATH"));
        assert!(found.is_some_and(|p| p.ends_with("sh")));
    }
}
