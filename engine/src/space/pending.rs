//! Pending-free rule (invariant 5, docs/DESIGN.md): a block freed while
//! checkpoint N is current may still be named by checkpoint N or by the
//! replayable tail after it, so it becomes allocatable only once checkpoint
//! N+1 — captured after the free — is durable. `on_capture` and
//! `on_checkpoint_durable` move it along that path.

use super::table::{BlockTable, BlockUse};

impl BlockTable {
    /// Frees a block that the current checkpoint or the tail may still name
    /// (the compactor's emptied victims); the rule is tested below.
    pub fn free_after_checkpoint(&mut self, block: u32) {
        let BlockUse::Log { generation } = self.uses[block as usize] else {
            debug_assert!(false, "only LOG blocks go pending-free");
            return;
        };
        self.set_use(block, BlockUse::Pending { generation });
        self.pending.push(block);
    }

    /// A checkpoint is being captured: blocks freed before this moment are
    /// not named by it, so they can go once it is durable.
    pub fn on_capture(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        self.releasing.extend(pending);
    }

    /// The checkpoint captured by the last `on_capture` is durable.
    pub fn on_checkpoint_durable(&mut self) {
        for block in std::mem::take(&mut self.releasing) {
            self.set_use(block, BlockUse::Free);
        }
    }

    /// A failed checkpoint: its releasable blocks wait for the next one.
    pub fn on_checkpoint_failed(&mut self) {
        let releasing = std::mem::take(&mut self.releasing);
        self.pending.extend(releasing);
    }

    /// In-use bitmap as stored in a snapshot. Blocks freed after the last
    /// capture count as in use (the current checkpoint may name them);
    /// blocks this capture releases are free in it: it names none of them,
    /// and they become free in memory the moment it is durable.
    pub fn bitmap(&self) -> Vec<u8> {
        let mut bitmap = vec![0u8; self.uses.len().div_ceil(8)];
        for (block, use_) in self.uses.iter().enumerate() {
            if *use_ != BlockUse::Free {
                bitmap[block / 8] |= 1 << (block % 8);
            }
        }
        for &block in &self.releasing {
            bitmap[block as usize / 8] &= !(1 << (block % 8));
        }
        bitmap
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::table::Purpose;

    #[test]
    fn freed_block_is_not_reused_before_the_next_durable_checkpoint() {
        let mut table = BlockTable::new(8);
        let mut got = Vec::new();
        while let Some(b) = table.allocate(Purpose::User, BlockUse::Log { generation: 1 }) {
            got.push(b);
        }
        assert_eq!(got, vec![3, 4, 5, 6, 7]);
        table.free_after_checkpoint(4);
        assert_eq!(table.allocate(Purpose::User, BlockUse::Log { generation: 2 }), None, "pending, not free");
        table.on_capture();
        table.free_after_checkpoint(5); // freed after the capture: waits one more checkpoint
        assert_eq!(table.allocate(Purpose::User, BlockUse::Log { generation: 2 }), None);
        table.on_checkpoint_durable();
        assert_eq!(table.allocate(Purpose::User, BlockUse::Log { generation: 2 }), Some(4));
        assert_eq!(table.allocate(Purpose::User, BlockUse::Log { generation: 2 }), None);
        table.on_capture();
        table.on_checkpoint_durable();
        assert_eq!(table.allocate(Purpose::User, BlockUse::Log { generation: 2 }), Some(5));
    }
}
