//! The listening socket: created mode 0600 (umask set around bind), a
//! stale socket left by a crashed kvd is replaced, a live one is never
//! stolen, and the file is removed when kvd exits.

use anyhow::{Context, bail};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Removes the socket file when dropped (clean exit).
#[derive(Debug)]
pub struct SocketFile(PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Binds `path`, replacing a stale socket and refusing a live one.
pub fn bind(path: &Path) -> anyhow::Result<(mio::net::UnixListener, SocketFile)> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the socket's directory {}", dir.display()))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    if path.exists() {
        match std::os::unix::net::UnixStream::connect(path) {
            Ok(_) => bail!("{} is in use by a running kvd; stop it first or choose --socket", path.display()),
            Err(_) => {
                tracing::warn!(socket = %path.display(), "replacing a stale socket left by an earlier kvd");
                std::fs::remove_file(path)
                    .with_context(|| format!("cannot remove the stale socket {}", path.display()))?;
            }
        }
    }
    // Mode 0600 from the first moment: no window where others could connect.
    let old = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o177));
    let bound = mio::net::UnixListener::bind(path);
    rustix::process::umask(old);
    let listener = bound.with_context(|| format!("cannot listen on {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok((listener, SocketFile(path.to_path_buf())))
}
