//! crash-plan: the seed and the per-cycle choices of a crash-test run, for
//! crash-test.sh. `--new-seed` prints a fresh random seed; `--seed S
//! --cycles N` prints one line per cycle: `cycle cycle_seed moment load_ms
//! delay_us` (see blockkv_recovery_tests::plan).

use anyhow::bail;
use blockkv_recovery_tests::keyspace::splitmix64;
use blockkv_recovery_tests::plan::CyclePlan;
use clap::Parser;

#[derive(Debug, Parser)]
#[command(name = "crash-plan", about = "seed and per-cycle plan of a crash-test run")]
struct Args {
    /// Print a new random seed and exit.
    #[arg(long, conflicts_with_all = ["seed", "cycles"])]
    new_seed: bool,
    /// The run's seed.
    #[arg(long)]
    seed: Option<u64>,
    /// How many cycles to plan.
    #[arg(long)]
    cycles: Option<u32>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.new_seed {
        let mut state = rand::random::<u64>();
        // Seeds people type back in: keep them to 12 decimal digits.
        println!("{}", splitmix64(&mut state) % 1_000_000_000_000);
        return Ok(());
    }
    let (Some(seed), Some(cycles)) = (args.seed, args.cycles) else {
        bail!("give --new-seed, or --seed and --cycles");
    };
    let mut out = String::new();
    for cycle in 1..=cycles {
        out.push_str(&format!("{}\n", CyclePlan::derive(seed, cycle)));
    }
    print!("{out}");
    Ok(())
}
