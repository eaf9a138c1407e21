//! The control socket an inspector reads ([`super::StackBuilder::control_socket`];
//! the `tipc-rs` tool of crates/tipc-inspect): a Unix stream socket, owner
//! only, served by a thread of its own. A client writes one request line
//! and reads one answer line, then the connection closes:
//!
//! | request | answer |
//! |---|---|
//! | `stats` | the node's [`crate::stats::StackStats`] as JSON |
//! | anything else | `{"error": "..."}` |
//!
//! The thread takes the stack's lock only as long as
//! [`super::Stack::stats`] does, and gives a slow client at most
//! [`CLIENT_TIMEOUT`] per read or write: an inspector never blocks the
//! stack it inspects.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration as StdDuration;

use crate::error::Error;

/// How long a client may take to send its request or read the answer.
pub const CLIENT_TIMEOUT: StdDuration = StdDuration::from_secs(2);

/// How often the serving thread looks whether the stack is stopping.
const STOP_LOOK: StdDuration = StdDuration::from_millis(100);

/// A running control socket: the socket file is removed and the thread
/// joined when it is dropped.
pub(super) struct Server {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Binds `path` (owner-only permissions) and serves it on a thread;
    /// `snapshot` makes the JSON of the node's statistics.
    ///
    /// # Errors
    /// [`Error::ControlSocket`]: the path is taken by a live socket or
    /// another file, or cannot be bound.
    pub(super) fn start(path: &Path, snapshot: impl Fn() -> String + Send + 'static) -> Result<Server, Error> {
        let fail = |source: std::io::Error| Error::ControlSocket { path: path.to_path_buf(), source };
        if path.exists() {
            // a socket nobody answers on is left over from a process that
            // died: take its place; anything else is someone's
            let stale = std::fs::symlink_metadata(path).map(|m| {
                use std::os::unix::fs::FileTypeExt;
                m.file_type().is_socket()
            });
            if matches!(stale, Ok(true)) && UnixStream::connect(path).is_err() {
                std::fs::remove_file(path).map_err(fail)?;
            } else {
                return Err(fail(std::io::Error::from(std::io::ErrorKind::AddrInUse)));
            }
        }
        let listener = UnixListener::bind(path).map_err(fail)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(fail)?;
        listener.set_nonblocking(true).map_err(fail)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::Builder::new()
            .name("tipc-control".into())
            .spawn(move || serve(&listener, &stop2, &snapshot))
            .map_err(fail)?;
        Ok(Server { path: path.to_path_buf(), stop, thread: Some(thread) })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

fn serve(listener: &UnixListener, stop: &AtomicBool, snapshot: &dyn Fn() -> String) {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((client, _)) => answer(client, snapshot),
            // nobody waiting (or a failed accept): look again shortly
            Err(_) => std::thread::sleep(STOP_LOOK),
        }
    }
}

/// Reads one request line and writes one answer line; a client that is
/// too slow or sends garbage only loses its own answer.
fn answer(client: UnixStream, snapshot: &dyn Fn() -> String) {
    if client.set_nonblocking(false).is_err()
        || client.set_read_timeout(Some(CLIENT_TIMEOUT)).is_err()
        || client.set_write_timeout(Some(CLIENT_TIMEOUT)).is_err()
    {
        return;
    }
    let mut line = String::new();
    // a request line's worth of bytes at most
    let mut reader = std::io::Read::take(BufReader::new(&client), 4096);
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let reply = match line.trim() {
        "stats" => snapshot(),
        other => {
            let msg = format!("unknown request {other:?}: the control socket answers `stats`");
            serde_json::json!({ "error": msg }).to_string()
        }
    };
    let mut w = &client;
    let _ = w.write_all(reply.as_bytes()).and_then(|()| w.write_all(b"\n"));
}
