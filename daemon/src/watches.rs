//! WATCH: which connections watch which keys. Every command that changes a
//! key (RESP or native, on any connection) calls `touch` with it, and each
//! transaction watching that key is marked dirty; its EXEC then applies
//! nothing. A key that expires or is removed without a touch (active or
//! lazy expiry) is caught at EXEC instead: it existed at WATCH and does
//! not now (resp/transaction.rs). With nothing watched, a touch is one
//! atomic load.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Keys one connection may watch at once (each costs a copy of the key).
pub const WATCHED_KEYS_MAX: usize = 10_000;

/// One transaction's "a watched key changed" flag.
#[derive(Debug, Default)]
pub struct Dirty(AtomicBool);

impl Dirty {
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    fn set(&self) {
        self.0.store(true, Ordering::Release);
    }
}

#[derive(Debug, Default)]
pub struct Watches {
    /// (key, watcher) pairs registered: zero makes `touch` free.
    pairs: AtomicUsize,
    keys: Mutex<HashMap<Vec<u8>, Vec<Arc<Dirty>>>>,
}

impl Watches {
    pub fn watch(&self, key: &[u8], dirty: &Arc<Dirty>) {
        let mut keys = self.keys.lock();
        let watchers = keys.entry(key.to_vec()).or_default();
        if !watchers.iter().any(|w| Arc::ptr_eq(w, dirty)) {
            watchers.push(dirty.clone());
            self.pairs.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Forgets `dirty`'s watch of each of `keys`.
    pub fn unwatch<'k>(&self, keys: impl IntoIterator<Item = &'k [u8]>, dirty: &Arc<Dirty>) {
        let mut map = self.keys.lock();
        for key in keys {
            if let Some(watchers) = map.get_mut(key) {
                let before = watchers.len();
                watchers.retain(|w| !Arc::ptr_eq(w, dirty));
                self.pairs.fetch_sub(before - watchers.len(), Ordering::Relaxed);
                if watchers.is_empty() {
                    map.remove(key);
                }
            }
        }
    }

    /// `key` changed: every transaction watching it is dirty.
    pub fn touch(&self, key: &[u8]) {
        if self.pairs.load(Ordering::Relaxed) == 0 {
            return;
        }
        if let Some(watchers) = self.keys.lock().get(key) {
            watchers.iter().for_each(|w| w.set());
        }
    }

    /// Every watched key for which `existed` says yes changed (FLUSHALL).
    pub fn touch_where(&self, mut existed: impl FnMut(&[u8]) -> bool) {
        if self.pairs.load(Ordering::Relaxed) == 0 {
            return;
        }
        for (key, watchers) in self.keys.lock().iter() {
            if existed(key) {
                watchers.iter().for_each(|w| w.set());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_touch_marks_only_the_watchers_of_that_key_until_they_unwatch() {
        // Two watchers of k and one of j: touching k marks the two; after unwatching, a touch marks none.
        let watches = Watches::default();
        let (a, b, c) = (Arc::new(Dirty::default()), Arc::new(Dirty::default()), Arc::new(Dirty::default()));
        watches.watch(b"k", &a);
        watches.watch(b"k", &b);
        watches.watch(b"j", &c);
        watches.touch(b"k");
        assert!(a.is_set() && b.is_set() && !c.is_set());
        let d = Arc::new(Dirty::default());
        watches.watch(b"k", &d);
        watches.unwatch([&b"k"[..]], &d);
        watches.unwatch([&b"k"[..]], &a);
        watches.unwatch([&b"k"[..]], &b);
        watches.touch(b"k");
        assert!(!d.is_set());
        assert_eq!(watches.pairs.load(Ordering::Relaxed), 1);
        watches.touch_where(|key| key == b"j");
        assert!(c.is_set());
    }
}
