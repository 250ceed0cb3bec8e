//! A simulated disk for tests: a durable image plus the writes issued since
//! the last sync. `crash_image(seed)` decides, reproducibly from the seed, what
//! a power cut would leave of each pending write: all of it, none of it, or
//! a tear at 512-byte sectors where each sector it covers is new, old, or
//! garbage. It can also fail the i-th I/O call with EIO, ENOSPC or a short
//! write. Reads see pending writes, like a page cache.
//!
//! Garbage replaces only the bytes a write covered inside a sector; the other
//! bytes of that sector keep their old value (the "powersafe overwrite"
//! assumption of docs/FORMAT.md).

use super::{Storage, check_range};
use crate::format::SECTOR_BYTES;
use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::io;

/// Which error an injected fault produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// `EIO`: nothing happens.
    Eio,
    /// `ENOSPC`: nothing happens.
    NoSpace,
    /// A write that stores only its first half and then fails (sync: as EIO).
    ShortWrite,
}

/// Fail the I/O call with this 0-based index (writes and syncs are counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    pub at_call: u64,
    pub kind: FaultKind,
}

#[derive(Debug)]
struct State {
    durable: Vec<u8>,
    volatile: Vec<u8>,
    pending: Vec<(u64, Vec<u8>)>,
    io_calls: u64,
    fault: Option<Fault>,
    capture: Option<(u64, u64)>,
    captured: Option<Vec<u8>>,
}

/// The simulated disk. Cheap to clone images out of; all methods take `&self`.
#[derive(Debug)]
pub struct SimDisk {
    len: u64,
    state: Mutex<State>,
}

impl SimDisk {
    /// A zeroed disk of `len` bytes.
    pub fn new(len: u64) -> Self {
        SimDisk::from_image(vec![0u8; len as usize])
    }

    /// A disk whose durable (and visible) content is `image`.
    pub fn from_image(image: Vec<u8>) -> Self {
        SimDisk {
            len: image.len() as u64,
            state: Mutex::new(State {
                durable: image.clone(),
                volatile: image,
                pending: Vec::new(),
                io_calls: 0,
                fault: None,
                capture: None,
                captured: None,
            }),
        }
    }

    /// Fails one future I/O call.
    pub fn set_fault(&self, fault: Option<Fault>) {
        self.state.lock().fault = fault;
    }

    /// Writes and syncs issued so far.
    pub fn io_calls(&self) -> u64 {
        self.state.lock().io_calls
    }

    /// Writes issued since the last successful sync.
    pub fn pending_writes(&self) -> usize {
        self.state.lock().pending.len()
    }

    /// Just before I/O call `at_call` runs, records `crash_image(seed)`; fetch
    /// it with [`SimDisk::take_captured`]. The disk goes on working.
    pub fn capture_crash_before_call(&self, at_call: u64, seed: u64) {
        let mut state = self.state.lock();
        state.capture = Some((at_call, seed));
        state.captured = None;
    }

    pub fn take_captured(&self) -> Option<Vec<u8>> {
        self.state.lock().captured.take()
    }

    /// What a power cut now would leave on the medium, decided by `seed`.
    pub fn crash_image(&self, seed: u64) -> Vec<u8> {
        crash_image_of(&self.state.lock(), seed)
    }

    /// Everything written, as if the machine stayed up (a kill -9 of the process).
    pub fn volatile_image(&self) -> Vec<u8> {
        self.state.lock().volatile.clone()
    }

    /// Only what has been synced.
    pub fn durable_image(&self) -> Vec<u8> {
        self.state.lock().durable.clone()
    }

    /// Damages the medium directly (both images), for corruption tests.
    pub fn corrupt(&self, offset: u64, bytes: &[u8]) {
        let mut state = self.state.lock();
        let at = offset as usize;
        state.durable[at..at + bytes.len()].copy_from_slice(bytes);
        state.volatile[at..at + bytes.len()].copy_from_slice(bytes);
    }

    fn next_call(state: &mut State) -> Option<FaultKind> {
        let call = state.io_calls;
        state.io_calls += 1;
        if let Some((at_call, seed)) = state.capture
            && at_call == call
        {
            state.captured = Some(crash_image_of(state, seed));
        }
        match state.fault {
            Some(fault) if fault.at_call == call => Some(fault.kind),
            _ => None,
        }
    }
}

fn crash_image_of(state: &State, seed: u64) -> Vec<u8> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut image = state.durable.clone();
    for (offset, bytes) in &state.pending {
        match rng.random_range(0..10) {
            0..=3 => apply(&mut image, *offset, bytes),
            4..=6 => {}
            _ => tear(&mut image, *offset, bytes, &mut rng),
        }
    }
    image
}

fn apply(image: &mut [u8], offset: u64, bytes: &[u8]) {
    let at = offset as usize;
    image[at..at + bytes.len()].copy_from_slice(bytes);
}

/// Each sector the write touches independently ends up new, old or garbage.
fn tear(image: &mut [u8], offset: u64, bytes: &[u8], rng: &mut StdRng) {
    let start = offset as usize;
    let end = start + bytes.len();
    let mut sector_start = start - start % SECTOR_BYTES;
    while sector_start < end {
        let lo = sector_start.max(start);
        let hi = (sector_start + SECTOR_BYTES).min(end);
        match rng.random_range(0..3) {
            0 => image[lo..hi].copy_from_slice(&bytes[lo - start..hi - start]),
            1 => {}
            _ => rng.fill(&mut image[lo..hi]),
        }
        sector_start += SECTOR_BYTES;
    }
}

fn fault_error(kind: FaultKind) -> io::Error {
    match kind {
        FaultKind::Eio => io::Error::from_raw_os_error(5),
        FaultKind::NoSpace => io::Error::from_raw_os_error(28),
        FaultKind::ShortWrite => io::Error::new(io::ErrorKind::WriteZero, "injected short write"),
    }
}

impl Storage for SimDisk {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        check_range(self.len, offset, buf.len())?;
        let state = self.state.lock();
        let at = offset as usize;
        buf.copy_from_slice(&state.volatile[at..at + buf.len()]);
        Ok(())
    }

    fn write_at(&self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        check_range(self.len, offset, bytes.len())?;
        let mut state = self.state.lock();
        let stored = match SimDisk::next_call(&mut state) {
            None => bytes,
            Some(FaultKind::ShortWrite) => &bytes[..bytes.len() / 2],
            Some(kind) => return Err(fault_error(kind)),
        };
        apply(&mut state.volatile, offset, stored);
        state.pending.push((offset, stored.to_vec()));
        if stored.len() < bytes.len() {
            return Err(fault_error(FaultKind::ShortWrite));
        }
        Ok(())
    }

    fn sync(&self) -> io::Result<()> {
        let mut state = self.state.lock();
        if let Some(kind) = SimDisk::next_call(&mut state) {
            // After a failed fsync nothing is known: the writes stay pending,
            // and a crash may keep, drop or tear each of them.
            let kind = if kind == FaultKind::ShortWrite { FaultKind::Eio } else { kind };
            return Err(fault_error(kind));
        }
        let pending = std::mem::take(&mut state.pending);
        for (offset, bytes) in pending {
            apply(&mut state.durable, offset, &bytes);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synced_writes_survive_every_crash() {
        let disk = SimDisk::new(4096);
        disk.write_at(0, &[1u8; 1000]).expect("write");
        disk.sync().expect("sync");
        disk.write_at(2000, &[2u8; 1000]).expect("write");
        for seed in 0..50 {
            let image = disk.crash_image(seed);
            assert!(image[..1000].iter().all(|&b| b == 1), "seed {seed}");
        }
    }

    #[test]
    fn crash_image_is_reproducible_from_its_seed() {
        let disk = SimDisk::new(8192);
        for i in 0..8u8 {
            disk.write_at(u64::from(i) * 1000, &[i + 1; 700]).expect("write");
        }
        assert_eq!(disk.crash_image(42), disk.crash_image(42));
        let distinct: std::collections::HashSet<Vec<u8>> = (0..40).map(|s| disk.crash_image(s)).collect();
        assert!(distinct.len() > 10, "crash images should vary with the seed");
    }

    #[test]
    fn torn_write_never_touches_bytes_outside_its_range() {
        let disk = SimDisk::new(4096);
        disk.write_at(0, &[7u8; 4096]).expect("write");
        disk.sync().expect("sync");
        disk.write_at(100, &[9u8; 50]).expect("write");
        for seed in 0..200 {
            let image = disk.crash_image(seed);
            assert!(image[..100].iter().chain(&image[150..]).all(|&b| b == 7), "seed {seed}");
        }
    }

    #[test]
    fn injected_faults_fail_the_chosen_call() {
        let disk = SimDisk::new(4096);
        disk.set_fault(Some(Fault { at_call: 1, kind: FaultKind::ShortWrite }));
        disk.write_at(0, &[1u8; 10]).expect("call 0 works");
        let err = disk.write_at(10, &[2u8; 10]).expect_err("call 1 fails");
        assert_eq!(err.kind(), io::ErrorKind::WriteZero);
        let mut buf = [0u8; 20];
        disk.read_at(0, &mut buf).expect("read");
        assert_eq!(&buf[10..15], &[2u8; 5], "short write stored its first half");
        assert_eq!(&buf[15..], &[0u8; 5]);
        disk.set_fault(Some(Fault { at_call: 2, kind: FaultKind::Eio }));
        assert_eq!(disk.sync().expect_err("sync fails").raw_os_error(), Some(5));
        assert_eq!(disk.pending_writes(), 2, "a failed sync makes nothing durable");
    }
}
