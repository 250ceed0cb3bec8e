//! Where kvd and kvctl look by default, so that `kvd` with no arguments and
//! `kvctl` with no `--socket` find each other (docs/OPERATIONS.md).
//!
//! - socket: `$KV_SOCKET`, else `$XDG_RUNTIME_DIR/blockkv/kvd.sock`, else
//!   `/tmp/blockkv-<uid>/kvd.sock`
//! - data:   `$KV_DATA`, else `$XDG_DATA_HOME/blockkv/data.kvdata`, else
//!   `$HOME/.local/share/blockkv/data.kvdata`, else `./blockkv.kvdata`

use std::path::PathBuf;

/// Environment variable naming the socket.
pub const SOCKET_ENV: &str = "KV_SOCKET";
/// Environment variable naming the data file.
pub const DATA_ENV: &str = "KV_DATA";

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// The socket path kvd listens on and kvctl connects to by default.
pub fn default_socket_path() -> PathBuf {
    if let Some(path) = env_path(SOCKET_ENV) {
        return path;
    }
    match env_path("XDG_RUNTIME_DIR") {
        Some(dir) => dir.join("blockkv").join("kvd.sock"),
        None => PathBuf::from(format!("/tmp/blockkv-{}", rustix::process::getuid().as_raw())).join("kvd.sock"),
    }
}

/// The data file kvd opens (and creates) by default.
pub fn default_data_path() -> PathBuf {
    if let Some(path) = env_path(DATA_ENV) {
        return path;
    }
    if let Some(dir) = env_path("XDG_DATA_HOME") {
        return dir.join("blockkv").join("data.kvdata");
    }
    match env_path("HOME") {
        Some(home) => home.join(".local").join("share").join("blockkv").join("data.kvdata"),
        None => PathBuf::from("blockkv.kvdata"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_paths_are_absolute_or_named_by_the_environment() {
        // Without KV_* set, both defaults are per-user paths.
        if std::env::var_os(SOCKET_ENV).is_none() {
            let socket = default_socket_path();
            assert!(socket.ends_with("kvd.sock"), "{}", socket.display());
        }
        if std::env::var_os(DATA_ENV).is_none() && std::env::var_os("HOME").is_some() {
            assert!(default_data_path().is_absolute());
        }
    }
}
