//! Operator logs through tracing: stderr, or a file that SIGHUP reopens
//! (for logrotate). Filter: RUST_LOG, else --log-level, else info.

use parking_lot::Mutex;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// The log file, reopenable in place.
#[derive(Debug, Clone)]
pub struct LogFile {
    path: PathBuf,
    file: Arc<Mutex<File>>,
}

impl LogFile {
    fn open_file(path: &Path) -> io::Result<File> {
        OpenOptions::new().create(true).append(true).open(path)
    }

    /// Closes and reopens the file by name (after logrotate moved it).
    pub fn reopen(&self) -> io::Result<()> {
        let fresh = LogFile::open_file(&self.path)?;
        *self.file.lock() = fresh;
        Ok(())
    }
}

/// A writer handle for one log line.
#[derive(Debug)]
pub struct LogFileWriter(Arc<Mutex<File>>);

impl Write for LogFileWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.lock().flush()
    }
}

impl<'a> MakeWriter<'a> for LogFile {
    type Writer = LogFileWriter;
    fn make_writer(&'a self) -> Self::Writer {
        LogFileWriter(self.file.clone())
    }
}

/// Changes the log filter of a running kvd (CONFIG SET loglevel).
pub type SetLevel = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// A `SetLevel` over a subscriber's reload handle.
fn reloader<S: 'static>(handle: tracing_subscriber::reload::Handle<EnvFilter, S>) -> SetLevel {
    Box::new(move |level| {
        let filter = EnvFilter::try_new(level).map_err(|err| err.to_string())?;
        handle.reload(filter).map_err(|err| err.to_string())
    })
}

/// Installs the global subscriber; returns the log file to reopen on SIGHUP
/// and the way to change the level later.
pub fn init(log_file: Option<&Path>, level: Option<&str>) -> io::Result<(Option<LogFile>, SetLevel)> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level.unwrap_or("info")));
    let file = match log_file {
        None => None,
        Some(path) => Some(LogFile { path: path.to_path_buf(), file: Arc::new(Mutex::new(LogFile::open_file(path)?)) }),
    };
    let set_level: SetLevel = match &file {
        None => {
            let ansi = io::IsTerminal::is_terminal(&io::stderr());
            let builder = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(io::stderr)
                .with_ansi(ansi)
                .with_target(false)
                .with_filter_reloading();
            let handle = builder.reload_handle();
            builder.init();
            reloader(handle)
        }
        Some(file) => {
            let builder = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(file.clone())
                .with_ansi(false)
                .with_target(false)
                .with_filter_reloading();
            let handle = builder.reload_handle();
            builder.init();
            reloader(handle)
        }
    };
    Ok((file, set_level))
}
