//! The connected clients, as CLIENT ID, LIST, INFO and KILL see them: one
//! shared entry per connection, registered when it is accepted and removed
//! when it closes. What only the connection itself reads (its protocol, its
//! transaction) is in its `resp::Session`.

use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

/// The longest client name, library name or version kept.
pub const CLIENT_NAME_BYTES_MAX: usize = 1024;

/// One connection, as other connections may see it.
#[derive(Debug)]
pub struct Client {
    pub id: u64,
    /// The socket path the client connected to (CLIENT LIST's addr).
    pub addr: Arc<str>,
    created: Instant,
    last_active_ms: AtomicU64,
    name: Mutex<Vec<u8>>,
    library: Mutex<(String, String)>,
    /// The last command run, as `resp::spec` numbers them.
    last_command: AtomicUsize,
    /// CLIENT KILL asked for it: the event loop closes it on its next turn.
    killed: AtomicBool,
    resp: AtomicU8,
    /// Commands queued in its transaction; -1 outside MULTI.
    multi: AtomicI64,
    monitor: AtomicBool,
}

impl Client {
    pub fn name(&self) -> Vec<u8> {
        self.name.lock().clone()
    }

    pub fn set_name(&self, name: &[u8]) {
        *self.name.lock() = name.to_vec();
    }

    /// CLIENT SETINFO LIB-NAME / LIB-VER.
    pub fn set_library(&self, name: Option<&str>, version: Option<&str>) {
        let mut library = self.library.lock();
        if let Some(name) = name {
            library.0 = name.to_string();
        }
        if let Some(version) = version {
            library.1 = version.to_string();
        }
    }

    /// A command of this client is about to run.
    pub fn ran(&self, command: usize) {
        self.last_command.store(command, Ordering::Relaxed);
    }

    pub fn last_command(&self) -> usize {
        self.last_command.load(Ordering::Relaxed)
    }

    /// The client sent something (once per job, not per command).
    pub fn active(&self, since_start_ms: u64) {
        self.last_active_ms.store(since_start_ms, Ordering::Relaxed);
    }

    /// The address CLIENT LIST shows and CLIENT KILL ADDR matches.
    pub fn address(&self) -> String {
        format!("{}:0", self.addr)
    }

    pub fn age_s(&self) -> u64 {
        self.created.elapsed().as_secs()
    }

    pub fn kill(&self) {
        self.killed.store(true, Ordering::Relaxed);
    }

    pub fn killed(&self) -> bool {
        self.killed.load(Ordering::Relaxed)
    }

    pub fn set_resp(&self, version: u8) {
        self.resp.store(version, Ordering::Relaxed);
    }

    pub fn set_monitor(&self) {
        self.monitor.store(true, Ordering::Relaxed);
    }

    pub fn set_multi(&self, queued: Option<usize>) {
        self.multi.store(queued.map_or(-1, |n| n as i64), Ordering::Relaxed);
    }

    /// The line CLIENT LIST and CLIENT INFO show, in Redis's field order
    /// (fields kvd has no counterpart for carry Redis's idle values).
    pub fn line(&self, since_start_ms: u64, last_command: &str) -> String {
        let (lib_name, lib_ver) = self.library.lock().clone();
        let idle_s = since_start_ms.saturating_sub(self.last_active_ms.load(Ordering::Relaxed)) / 1000;
        // U: a Unix-socket client, as Redis flags one; O: MONITOR; x: in MULTI.
        let flags = if self.monitor.load(Ordering::Relaxed) {
            "O"
        } else if self.multi.load(Ordering::Relaxed) >= 0 {
            "xU"
        } else {
            "U"
        };
        format!(
            "id={} addr={}:0 laddr={}:0 fd=-1 name={} age={} idle={} flags={} db=0 sub=0 psub=0 ssub=0 multi={} \
             qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r \
             cmd={} user=default redir=-1 resp={} lib-name={} lib-ver={}",
            self.id,
            self.addr,
            self.addr,
            String::from_utf8_lossy(&self.name.lock()),
            self.created.elapsed().as_secs(),
            idle_s,
            flags,
            self.multi.load(Ordering::Relaxed),
            last_command,
            self.resp.load(Ordering::Relaxed),
            lib_name,
            lib_ver,
        )
    }
}

/// Every open connection's entry, by id.
#[derive(Debug)]
pub struct Clients {
    next_id: AtomicU64,
    started: Instant,
    all: Mutex<BTreeMap<u64, Arc<Client>>>,
}

impl Default for Clients {
    fn default() -> Self {
        Clients { next_id: AtomicU64::new(1), started: Instant::now(), all: Mutex::new(BTreeMap::new()) }
    }
}

impl Clients {
    /// A new connection's entry, with the next id (ids are never reused).
    pub fn register(&self, addr: Arc<str>) -> Arc<Client> {
        let client = Arc::new(Client {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            addr,
            created: Instant::now(),
            last_active_ms: AtomicU64::new(self.since_start_ms()),
            name: Mutex::new(Vec::new()),
            library: Mutex::new((String::new(), String::new())),
            last_command: AtomicUsize::new(usize::MAX),
            killed: AtomicBool::new(false),
            resp: AtomicU8::new(2),
            multi: AtomicI64::new(-1),
            monitor: AtomicBool::new(false),
        });
        self.all.lock().insert(client.id, client.clone());
        client
    }

    pub fn unregister(&self, id: u64) {
        self.all.lock().remove(&id);
    }

    pub fn since_start_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    pub fn find(&self, id: u64) -> Option<Arc<Client>> {
        self.all.lock().get(&id).cloned()
    }

    pub fn all(&self) -> Vec<Arc<Client>> {
        self.all.lock().values().cloned().collect()
    }
}
