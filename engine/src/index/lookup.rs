//! Finding a key's current entry. The index holds only hashes, so every
//! candidate with the key's hash is read back and its key compared. A
//! candidate whose record fails its checksum cannot be identified: readers
//! refuse to answer past it when it is newer than what they found (better an
//! error than an older value), writers leave it alone.

use crate::error::{Error, Result};
use crate::format::snapshot::IndexEntry;
use crate::index::Index;
use crate::index::read::{Fragment, read_fragment};
use crate::storage::Storage;

/// A key's current entry with its verified first fragment.
#[derive(Debug)]
pub struct Current {
    pub entry: IndexEntry,
    pub first: Fragment,
}

/// What a lookup found.
#[derive(Debug)]
pub struct Found {
    pub current: Option<Current>,
    /// The newest candidate that could not be verified, if any.
    pub unreadable: Option<(IndexEntry, Error)>,
}

impl Found {
    /// For readers: the current record, or an error if an unreadable
    /// candidate might be a newer version of this key.
    pub fn for_read(self) -> Result<Option<Current>> {
        match (self.current, self.unreadable) {
            (current, None) => Ok(current),
            (Some(current), Some((bad, _))) if bad.lsn() < current.entry.lsn() => Ok(Some(current)),
            (_, Some((_, err))) => Err(err),
        }
    }
}

/// Looks `key` up among the index candidates for `hash`.
pub fn find(storage: &dyn Storage, index: &Index, key: &[u8], hash: u32) -> Found {
    let mut candidates = Vec::new();
    index.candidates(hash, &mut candidates);
    let mut found = Found { current: None, unreadable: None };
    for entry in candidates {
        match read_fragment(storage, entry.block, entry.offset()) {
            Ok(first) if first.header.lsn != entry.lsn() => {
                let err = Error::corrupt(entry.block, entry.offset(), "record lsn differs from its index entry");
                note_unreadable(&mut found, entry, err);
            }
            Ok(first) if first.key() == key && !first.header.is_tombstone() => {
                if found.current.as_ref().is_none_or(|c| c.entry.lsn() < entry.lsn()) {
                    found.current = Some(Current { entry, first });
                }
            }
            Ok(_) => {}
            Err(err) => note_unreadable(&mut found, entry, err),
        }
    }
    found
}

fn note_unreadable(found: &mut Found, entry: IndexEntry, err: Error) {
    if found.unreadable.as_ref().is_none_or(|(e, _)| e.lsn() < entry.lsn()) {
        found.unreadable = Some((entry, err));
    }
}
