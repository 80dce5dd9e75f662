//! Finding, starting, reaping and stopping the `ollama serve` process, and its log.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use llm_core::http::reqwest::Url;
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};
use tokio::sync::{oneshot, watch};

/// Most bytes of the server log kept for an error.
const LOG_TAIL: u64 = 2000;
/// How long a server asked to stop (SIGTERM) may take before its process group
/// is killed (SIGKILL).
pub(crate) const TERM_GRACE: Duration = Duration::from_secs(5);
/// Longest wait for a killed process to be reaped.
const KILL_WAIT: Duration = Duration::from_secs(10);
/// Directory of the server logs under the user's state directory.
const STATE_SUBDIR: &str = "llm-router/ollama";

/// A server process this crate started.
#[derive(Debug)]
pub(crate) struct Spawned {
    /// Its process id (also its process group id on Unix).
    pub pid: Option<u32>,
    /// Asks the reaper task to stop it. Dropping it does not stop the process.
    stop: Option<oneshot::Sender<()>>,
    /// `Some(description)` once the process has exited (and been reaped).
    pub exit: watch::Receiver<Option<String>>,
    /// Its log file.
    pub log: Option<PathBuf>,
    /// Where this start's output begins in the log.
    pub log_offset: u64,
}

impl Spawned {
    /// Its exit description, if it has exited.
    pub fn exited(&self) -> Option<String> {
        self.exit.borrow().clone()
    }

    /// Stops it, if it still runs: SIGTERM to its process group, up to
    /// [`TERM_GRACE`] to exit, then SIGKILL to the group. Waits until it has
    /// been reaped; returns how it ended.
    pub async fn stop(&mut self) -> Option<String> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let mut exit = self.exit.clone();
        let waited =
            tokio::time::timeout(TERM_GRACE + KILL_WAIT, exit.wait_for(Option::is_some)).await;
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

/// The `OLLAMA_HOST` a server for `url` is started with: `host:port` of `url`,
/// except that an unspecified address (`0.0.0.0`, `[::]`) becomes the loopback
/// address of its family (`127.0.0.1`, `[::1]`) unless `expose` is set.
pub(crate) fn listen_host(url: &Url, expose: bool) -> Option<String> {
    let port = url.port_or_known_default()?;
    let host = url.host_str()?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) if ip.is_unspecified() && !expose => Some(format!("127.0.0.1:{port}")),
        Ok(IpAddr::V6(ip)) if ip.is_unspecified() && !expose => Some(format!("[::1]:{port}")),
        _ => host_port(url),
    }
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

/// The default directory of server logs: `$XDG_STATE_HOME/llm-router/ollama`,
/// else `~/.local/state/llm-router/ollama`, else a directory with a random
/// name in the temporary directory (one per process).
pub(crate) fn default_log_dir() -> PathBuf {
    let absolute = |v: OsString| {
        let p = PathBuf::from(v);
        p.is_absolute().then_some(p)
    };
    if let Some(state) = std::env::var_os("XDG_STATE_HOME").and_then(absolute) {
        return state.join(STATE_SUBDIR);
    }
    if let Some(home) = std::env::var_os("HOME").and_then(absolute) {
        return home.join(".local/state").join(STATE_SUBDIR);
    }
    static FALLBACK: OnceLock<PathBuf> = OnceLock::new();
    FALLBACK
        .get_or_init(|| std::env::temp_dir().join(format!("llm-ollama-{:016x}", fastrand::u64(..))))
        .clone()
}

/// The log file of a server started for `port` in `dir`.
pub(crate) fn log_path(dir: &Path, port: u16) -> PathBuf {
    dir.join(format!("ollama-{port}.log"))
}

/// Creates `dir` (and its missing parents) accessible to its owner only, and
/// checks that it is a directory, not a link, that no one else can enter.
fn private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    let meta = std::fs::symlink_metadata(dir)?;
    if !meta.is_dir() {
        return Err(io::Error::other(format!(
            "{} is not a directory",
            dir.display()
        )));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
    }
    Ok(())
}

/// `O_NOFOLLOW` of the target's C library (0 where it is not known: the
/// checks in [`open_log`] then stand alone).
#[cfg(all(
    any(target_os = "linux", target_os = "android"),
    any(
        target_arch = "arm",
        target_arch = "aarch64",
        target_arch = "powerpc",
        target_arch = "powerpc64",
        target_arch = "m68k"
    )
))]
const O_NOFOLLOW: i32 = 0x8000;
#[cfg(all(
    any(target_os = "linux", target_os = "android"),
    not(any(
        target_arch = "arm",
        target_arch = "aarch64",
        target_arch = "powerpc",
        target_arch = "powerpc64",
        target_arch = "m68k"
    ))
))]
const O_NOFOLLOW: i32 = 0x20000;
#[cfg(any(
    target_os = "macos",
    target_os = "ios",
    target_os = "freebsd",
    target_os = "openbsd",
    target_os = "netbsd",
    target_os = "dragonfly"
))]
const O_NOFOLLOW: i32 = 0x100;
#[cfg(all(
    unix,
    not(any(
        target_os = "linux",
        target_os = "android",
        target_os = "macos",
        target_os = "ios",
        target_os = "freebsd",
        target_os = "openbsd",
        target_os = "netbsd",
        target_os = "dragonfly"
    ))
))]
const O_NOFOLLOW: i32 = 0;

/// Opens the server log for appending, in a private directory, without
/// following a symbolic link; returns the file and its length (where this
/// start's output begins).
pub(crate) fn open_log(path: &Path) -> io::Result<(File, u64)> {
    if let Some(dir) = path.parent() {
        private_dir(dir)?;
    }
    let not_regular = || {
        io::Error::other(format!(
            "{} is not a regular file (a link?); not writing to it",
            path.display()
        ))
    };
    if std::fs::symlink_metadata(path).is_ok_and(|m| !m.is_file()) {
        return Err(not_regular());
    }
    let mut options = OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600).custom_flags(O_NOFOLLOW);
    }
    let file = options.open(path)?;
    let opened = file.metadata()?;
    let at_path = std::fs::symlink_metadata(path)?;
    if !opened.is_file() || !at_path.is_file() {
        return Err(not_regular());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if (opened.dev(), opened.ino()) != (at_path.dev(), at_path.ino()) {
            return Err(not_regular());
        }
    }
    Ok((file, opened.len()))
}

/// An executable found and its output file opened, ready to start.
#[derive(Debug)]
pub(crate) struct Prepared {
    /// The executable.
    pub binary: PathBuf,
    log: Option<(File, PathBuf, u64)>,
}

/// Finds the executable and opens the log (blocking file-system work: run it
/// off the async threads). `None` when the executable does not exist. A log
/// that cannot be opened safely is left out (with a warning): the server then
/// starts without one.
pub(crate) fn prepare(
    binary: &Path,
    path_var: Option<OsString>,
    log: Option<&Path>,
    ollama_host: &str,
) -> Option<Prepared> {
    let binary = resolve_binary(binary, path_var)?;
    let log = log.and_then(|p| match open_log(p) {
        Ok((mut file, _)) => {
            let unix_time = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let _ = writeln!(
                file,
                "--- {unix_time}: starting `{} serve` with OLLAMA_HOST={ollama_host}",
                binary.display()
            );
            let offset = file.metadata().map_or(0, |m| m.len());
            Some((file, p.to_path_buf(), offset))
        }
        Err(e) => {
            tracing::warn!(log = %p.display(), error = %e, "cannot open the Ollama server log; its output is discarded");
            None
        }
    });
    Some(Prepared { binary, log })
}

/// Starts `<binary> serve` with `OLLAMA_HOST` and `env`, in its own process
/// group (so a Ctrl-C in our terminal does not stop it), output to the log.
///
/// A reaper task owns the child: it waits for it (so it never lingers as a
/// zombie while we run) and stops it only when [`Spawned::stop`] asks.
pub(crate) fn spawn(
    prepared: Prepared,
    ollama_host: &str,
    env: &[(OsString, OsString)],
) -> io::Result<Spawned> {
    let (stdout, stderr, log, log_offset) = match prepared.log {
        Some((file, path, offset)) => {
            let err = file.try_clone()?;
            (Stdio::from(file), Stdio::from(err), Some(path), offset)
        }
        None => (Stdio::null(), Stdio::null(), None, 0),
    };
    let mut cmd = tokio::process::Command::new(&prepared.binary);
    cmd.arg("serve")
        .env("OLLAMA_HOST", ollama_host)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .kill_on_drop(false);
    #[cfg(unix)]
    cmd.process_group(0);
    let child = cmd.spawn()?;
    let pid = child.id();
    let (stop_tx, stop_rx) = oneshot::channel();
    let (exit_tx, exit_rx) = watch::channel(None);
    tokio::spawn(reap(child, pid, stop_rx, exit_tx));
    Ok(Spawned {
        pid,
        stop: Some(stop_tx),
        exit: exit_rx,
        log,
        log_offset,
    })
}

async fn reap(
    mut child: tokio::process::Child,
    pid: Option<u32>,
    stop: oneshot::Receiver<()>,
    exit: watch::Sender<Option<String>>,
) {
    // A dropped sender (the service went away) is not a stop request: the
    // server keeps running, and this task still reaps it if it exits.
    let stop_requested = async move {
        if stop.await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let status = tokio::select! {
        status = child.wait() => status,
        () = stop_requested => terminate(&mut child, pid).await,
    };
    let text = match status {
        Ok(s) => s.to_string(),
        Err(e) => format!("unknown exit status ({e})"),
    };
    tracing::debug!(exit = %text, "ollama server process ended");
    let _ = exit.send(Some(text));
}

/// SIGTERM to the child's process group, up to [`TERM_GRACE`] for the child to
/// exit, then SIGKILL to the group (whatever of it is left: the runners the
/// server started). Without a way to signal the group, the child alone is killed.
async fn terminate(
    child: &mut tokio::process::Child,
    pid: Option<u32>,
) -> io::Result<std::process::ExitStatus> {
    let group_signalled = match pid {
        Some(pid) => signal_group(pid, "TERM").await,
        None => false,
    };
    if !group_signalled {
        let _ = child.start_kill();
        return child.wait().await;
    }
    let status = match tokio::time::timeout(TERM_GRACE, child.wait()).await {
        Ok(status) => status,
        Err(_) => {
            tracing::debug!(
                ?pid,
                "the Ollama server did not exit on SIGTERM; killing it"
            );
            if let Some(pid) = pid {
                signal_group(pid, "KILL").await;
            }
            let _ = child.start_kill();
            child.wait().await
        }
    };
    if let Some(pid) = pid {
        // Children of the server that outlived it (they share its group).
        signal_group(pid, "KILL").await;
    }
    status
}

/// Sends `signal` (`TERM`, `KILL`) to process group `pgid` with the system's
/// `kill` command; whether it was delivered.
#[cfg(unix)]
async fn signal_group(pgid: u32, signal: &str) -> bool {
    if pgid <= 1 {
        return false;
    }
    tokio::process::Command::new("kill")
        .args(["-s", signal, "--", &format!("-{pgid}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success())
}

#[cfg(not(unix))]
async fn signal_group(_pgid: u32, _signal: &str) -> bool {
    false
}

/// The end (at most 2,000 bytes) of what a start wrote to its log from `offset` on.
pub(crate) async fn log_tail(log: &Path, offset: u64) -> Option<String> {
    let mut file = tokio::fs::File::open(log).await.ok()?;
    let len = file.metadata().await.ok()?.len();
    let start = offset.max(len.saturating_sub(LOG_TAIL)).min(len);
    file.seek(io::SeekFrom::Start(start)).await.ok()?;
    let mut bytes = Vec::new();
    file.take(LOG_TAIL).read_to_end(&mut bytes).await.ok()?;
    let text = String::from_utf8_lossy(&bytes);
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
    fn unspecified_addresses_listen_on_loopback_unless_exposed() {
        let listen = |s: &str, expose| listen_host(&url(s), expose);
        assert_eq!(
            listen("http://0.0.0.0:11434", false).as_deref(),
            Some("127.0.0.1:11434")
        );
        assert_eq!(
            listen("http://[::]:11434", false).as_deref(),
            Some("[::1]:11434")
        );
        assert_eq!(
            listen("http://0.0.0.0:11434", true).as_deref(),
            Some("0.0.0.0:11434")
        );
        assert_eq!(
            listen("http://[::]:8080", true).as_deref(),
            Some("[::]:8080")
        );
        assert_eq!(
            listen("http://localhost:11434", false).as_deref(),
            Some("localhost:11434")
        );
        assert_eq!(
            listen("http://127.0.0.1:1", true).as_deref(),
            Some("127.0.0.1:1")
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

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "llm-ollama-unit-{name}-{}-{:x}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir(&dir).unwrap();
        dir
    }

    #[cfg(unix)]
    #[test]
    fn the_log_is_appended_in_a_private_directory() {
        use std::os::unix::fs::PermissionsExt;
        let root = scratch("append");
        let dir = root.join("logs");
        let path = log_path(&dir, 11434);
        let (mut f, start) = open_log(&path).unwrap();
        assert_eq!(start, 0);
        writeln!(f, "first").unwrap();
        drop(f);
        let (mut f, start) = open_log(&path).unwrap();
        assert_eq!(start, 6, "appended, not truncated");
        writeln!(f, "second").unwrap();
        drop(f);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "first\nsecond\n");
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the log is private too");
        // A directory others can enter is made private again.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        open_log(&path).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_link_at_the_log_path_is_not_followed() {
        let root = scratch("link");
        let dir = root.join("logs");
        std::fs::create_dir(&dir).unwrap();
        let victim = root.join("victim");
        std::fs::write(&victim, "precious\n").unwrap();
        let path = log_path(&dir, 11434);
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        assert!(open_log(&path).is_err());
        // A dangling link is not followed either (it would create the target).
        let dangling = log_path(&dir, 1);
        std::os::unix::fs::symlink(root.join("created"), &dangling).unwrap();
        assert!(open_log(&dangling).is_err());
        assert!(!root.join("created").exists());
        // A linked directory is not used.
        let linked = root.join("linked");
        std::os::unix::fs::symlink(&dir, &linked).unwrap();
        assert!(open_log(&log_path(&linked, 2)).is_err());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[tokio::test]
    async fn the_tail_is_this_starts_output_and_at_most_2000_bytes() {
        let root = scratch("tail");
        let path = root.join("ollama-1.log");
        std::fs::write(&path, "an earlier start\n").unwrap();
        let offset = std::fs::metadata(&path).unwrap().len();
        assert_eq!(log_tail(&path, offset).await, None);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        writeln!(f, "Error: listen tcp: address already in use").unwrap();
        assert_eq!(
            log_tail(&path, offset).await.as_deref(),
            Some("Error: listen tcp: address already in use")
        );
        writeln!(f, "{}", "x".repeat(5000)).unwrap();
        let tail = log_tail(&path, offset).await.unwrap();
        assert!(
            tail.len() <= 2000 && tail.chars().all(|c| c == 'x'),
            "{tail}"
        );
        std::fs::remove_dir_all(&root).unwrap();
    }
}
