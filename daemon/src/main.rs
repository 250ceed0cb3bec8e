//! kvd: parse arguments, open the store (exclusive lock), bind the socket,
//! serve until SIGTERM/SIGINT, checkpoint, exit 0. The daemon's code is the
//! library beside this file (lib.rs says where things live).
#![deny(unsafe_code)]

use anyhow::Context;
use blockkv_daemon::{config, context, detach, logging, malloc, server, settings, socket};
use blockkv_engine::{Error, Store};
use clap::Parser;
use std::process::ExitCode;
use std::sync::Arc;

fn main() -> ExitCode {
    // First of all, while nothing has been opened or started: may replace
    // this process image with kvd again, tuned (malloc.rs).
    malloc::tune();
    let args = config::Args::parse();
    if let Err(err) = args.validate() {
        eprintln!("kvd: {err:#}");
        return ExitCode::from(2);
    }
    // Detach before any thread exists (the store and the logger start threads).
    let mut readiness = if args.daemonize {
        match detach::daemonize() {
            Ok(readiness) => readiness,
            Err(err) => {
                eprintln!("kvd: {err:#}");
                return ExitCode::from(1);
            }
        }
    } else {
        detach::Readiness::foreground()
    };
    let (log_file, set_level) = match logging::init(args.log_path().as_deref(), args.log_level.as_deref()) {
        Ok(logging) => logging,
        Err(err) => {
            let message = format!("cannot open the log file: {err}");
            readiness.failed(&message);
            eprintln!("kvd: {message}");
            return ExitCode::from(1);
        }
    };
    match run(&args, log_file, set_level, &mut readiness) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err:#}");
            readiness.failed(&format!("{err:#}"));
            eprintln!("kvd: {err:#}");
            ExitCode::from(1)
        }
    }
}

fn run(
    args: &config::Args,
    log_file: Option<logging::LogFile>,
    set_level: logging::SetLevel,
    readiness: &mut detach::Readiness,
) -> anyhow::Result<()> {
    let data = args.data_path();
    let socket_path = args.socket_path();
    if let Some(dir) = data.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    tracing::info!(
        data = %data.display(),
        socket = %socket_path.display(),
        sync = ?args.sync_policy(),
        workers = args.workers(),
        max_connections = args.max_connections,
        recovery = %args.recovery,
        "kvd {} starting",
        env!("CARGO_PKG_VERSION")
    );
    // The data file's lock comes first: a second kvd on the same file stops
    // here, before it touches the socket.
    let store = Store::open(&data, args.store_options()).map_err(|err| match err {
        Error::Locked { path, pid: Some(pid) } => {
            anyhow::anyhow!("{} is already served by another kvd (pid {pid})", path.display())
        }
        other => anyhow::Error::new(other).context(format!("cannot open {}", data.display())),
    })?;
    let store = Arc::new(store);
    tracing::info!("recovery: {}", store.recovery_report());
    let (listener, socket_file) = socket::bind(&socket_path)?;
    // The data file's lock is held and the socket is bound: now the pidfile,
    // then the parent (if daemonized) may exit 0.
    let pidfile = args.pidfile_path().map(|path| detach::PidFile::write(&path)).transpose()?;
    tracing::info!(socket = %socket_path.display(), pid = std::process::id(), "listening");
    readiness.ready();
    let ctx = context::Context::new(
        store.clone(),
        &data.display().to_string(),
        &socket_path.display().to_string(),
        args.sync_policy(),
        settings::Settings::new(args.max_connections, args.log_level.as_deref().unwrap_or("info"), set_level),
    );
    let server = server::Server {
        listener,
        ctx,
        workers: args.workers(),
        partial_timeout: std::time::Duration::from_millis(args.partial_timeout_ms.max(1)),
        on_sighup: Box::new(move || {
            if let Some(file) = &log_file {
                match file.reopen() {
                    Ok(()) => tracing::info!("log file reopened"),
                    Err(err) => eprintln!("kvd: cannot reopen the log file: {err}"),
                }
            }
        }),
    };
    server.run().context("event loop failed")?;
    drop(socket_file);
    let store = Arc::try_unwrap(store).map_err(|_| anyhow::anyhow!("store still in use at shutdown"))?;
    let stats = store.stats();
    store.close().context("final checkpoint failed")?;
    drop(pidfile);
    tracing::info!(keys = stats.keys, last_lsn = stats.last_lsn, "clean shutdown: checkpoint written, socket removed");
    Ok(())
}
