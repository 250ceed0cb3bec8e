//! Every cycle's choices, derived from the run's seed: a run is replayed
//! by giving the same `--seed`. (What it replays is the plan and the
//! writers' operations; where in the load the kill lands is still up to the
//! machine's timing.)

use crate::keyspace::splitmix64;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::fmt;

/// When kvd is killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillMoment {
    /// After `load_ms` of writes.
    MidWrite,
    /// After `load_ms` of writes, `delay_us` after a checkpoint request was sent.
    Checkpoint,
    /// After `load_ms` of writes; then kvd is restarted and killed again
    /// `delay_us` after it was started, inside (or near) its recovery.
    Recovery,
    /// After `load_ms` of writes, `delay_us` after a compaction request was
    /// sent: inside a compaction pass, or the checkpoint that ends it.
    Compaction,
}

impl KillMoment {
    pub const ALL: [KillMoment; 4] =
        [KillMoment::MidWrite, KillMoment::Checkpoint, KillMoment::Recovery, KillMoment::Compaction];

    pub fn name(self) -> &'static str {
        match self {
            KillMoment::MidWrite => "mid-write",
            KillMoment::Checkpoint => "checkpoint",
            KillMoment::Recovery => "recovery",
            KillMoment::Compaction => "compaction",
        }
    }
}

/// Writes before the kill: at least this long, so the writers are in full flow.
pub const LOAD_MS_MIN: u32 = 50;
/// ... and at most this long (a cycle is meant to take 1-2 s).
pub const LOAD_MS_MAX: u32 = 800;
/// Before a checkpoint kill the load is shorter, leaving time for the checkpoint.
pub const CHECKPOINT_LOAD_MS_MAX: u32 = 400;
/// From sending the checkpoint request to the kill. A checkpoint of the
/// test's keys takes 0.3-1.5 ms under the writers' load (kvd's log, `ms=`),
/// so most kills land in one and some after it.
pub const CHECKPOINT_DELAY_US_MAX: u32 = 3_000;
/// From sending the compaction request to the kill. An on-demand
/// compaction of the test's 32 MiB file (passes until none gains a block,
/// then a checkpoint) takes 1-13 ms under the writers' load (kvd's log,
/// `compaction on demand ... ms=`), so kills land in its passes, its
/// checkpoint and, now and then, after it.
pub const COMPACTION_DELAY_US_MAX: u32 = 6_000;
/// From restarting kvd to killing it in its recovery. kvd logs its
/// recovery report about 2-3 ms after it is started on the test's 32 MiB
/// file, and listens about 1 ms later.
pub const RECOVERY_DELAY_US_MAX: u32 = 4_000;

/// One cycle's choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CyclePlan {
    pub cycle: u32,
    /// Seeds the writers' operations.
    pub cycle_seed: u64,
    pub moment: KillMoment,
    pub load_ms: u32,
    pub delay_us: u32,
}

impl CyclePlan {
    /// Cycle `cycle` (from 1) of the run seeded `run_seed`.
    pub fn derive(run_seed: u64, cycle: u32) -> CyclePlan {
        let mut state = run_seed ^ u64::from(cycle).wrapping_mul(0xD1B5_4A32_D192_ED03);
        let cycle_seed = splitmix64(&mut state);
        let mut rng = StdRng::seed_from_u64(splitmix64(&mut state));
        let moment = KillMoment::ALL[rng.random_range(0..KillMoment::ALL.len())];
        let (load_ms, delay_us) = match moment {
            KillMoment::MidWrite => (rng.random_range(LOAD_MS_MIN..=LOAD_MS_MAX), 0),
            KillMoment::Checkpoint => {
                (rng.random_range(LOAD_MS_MIN..=CHECKPOINT_LOAD_MS_MAX), rng.random_range(0..=CHECKPOINT_DELAY_US_MAX))
            }
            KillMoment::Compaction => {
                (rng.random_range(LOAD_MS_MIN..=CHECKPOINT_LOAD_MS_MAX), rng.random_range(0..=COMPACTION_DELAY_US_MAX))
            }
            KillMoment::Recovery => {
                (rng.random_range(LOAD_MS_MIN..=LOAD_MS_MAX), rng.random_range(0..=RECOVERY_DELAY_US_MAX))
            }
        };
        CyclePlan { cycle, cycle_seed, moment, load_ms, delay_us }
    }
}

/// The line `crash-plan` prints for the script: `cycle cycle_seed moment load_ms delay_us`.
impl fmt::Display for CyclePlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {} {} {}", self.cycle, self.cycle_seed, self.moment.name(), self.load_ms, self.delay_us)
    }
}

/// The seed of writer thread `thread` in a cycle.
pub fn thread_seed(cycle_seed: u64, thread: u32) -> u64 {
    let mut state = cycle_seed ^ u64::from(thread).wrapping_mul(0x9FB2_1C65_1E98_DF25);
    splitmix64(&mut state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_are_a_function_of_seed_and_cycle() {
        // The same seed gives the same plans; another seed or cycle gives others; every moment occurs.
        let plans: Vec<CyclePlan> = (1..=60).map(|cycle| CyclePlan::derive(42, cycle)).collect();
        assert_eq!(plans, (1..=60).map(|cycle| CyclePlan::derive(42, cycle)).collect::<Vec<_>>());
        assert_ne!(CyclePlan::derive(43, 1).cycle_seed, plans[0].cycle_seed);
        assert_ne!(plans[0].cycle_seed, plans[1].cycle_seed);
        for moment in KillMoment::ALL {
            assert!(plans.iter().any(|plan| plan.moment == moment), "{moment:?}");
        }
        assert!(plans.iter().all(|plan| (LOAD_MS_MIN..=LOAD_MS_MAX).contains(&plan.load_ms)));
    }
}
