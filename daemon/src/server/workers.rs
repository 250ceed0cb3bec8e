//! The worker pool: threads that run the jobs the event loop does not run
//! itself (writes under `--sync always`, SCAN, INFO, STATS, CHECKPOINT,
//! COMPACT, unknown commands; a whole job goes here when any of its requests
//! is not short), one job at a time each, and hand the answers back through a
//! channel and the loop's waker.

use crate::context::Context;
use crate::pipeline::{self, Job};
use mio::Waker;
use std::io;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// A finished job: its answers are in `out`, its session comes back.
pub(super) type Done = Job;

/// The pool's threads and both ends of its channels on the loop's side.
pub(super) struct Workers {
    jobs: Sender<Job>,
    done: Receiver<Done>,
    threads: Vec<JoinHandle<()>>,
}

impl Workers {
    /// Starts `count` threads; each wakes the loop through `waker` when it
    /// has answers.
    pub(super) fn spawn(count: usize, ctx: &Context, waker: Arc<Waker>) -> io::Result<Workers> {
        let (jobs, job_rx) = channel::<Job>();
        let (done_tx, done) = channel::<Done>();
        let job_rx = Arc::new(Mutex::new(job_rx));
        let threads = (0..count)
            .map(|i| {
                let (job_rx, done_tx, waker, ctx) = (job_rx.clone(), done_tx.clone(), waker.clone(), ctx.clone());
                std::thread::Builder::new()
                    .name(format!("kvd-worker-{i}"))
                    .spawn(move || work(&ctx, &job_rx, &done_tx, &waker))
            })
            .collect::<io::Result<_>>()?;
        Ok(Workers { jobs, done, threads })
    }

    /// Queues a job for the next free worker; gives it back if the pool is gone.
    pub(super) fn send(&self, job: Job) -> Result<(), Job> {
        self.jobs.send(job).map_err(|err| err.0)
    }

    /// A finished job, if one is waiting.
    pub(super) fn try_done(&self) -> Option<Done> {
        self.done.try_recv().ok()
    }

    /// Closes both channels, so each worker returns after its current job,
    /// and waits for them.
    pub(super) fn join(self) {
        let Workers { jobs, done, threads } = self;
        drop(jobs);
        drop(done);
        for thread in threads {
            let _ = thread.join();
        }
    }
}

fn work(ctx: &Context, jobs: &Mutex<Receiver<Job>>, done: &Sender<Done>, waker: &Waker) {
    loop {
        // One job at a time: plain puts, which gain from sharing a write,
        // run on the event loop; a worker's job is answered as soon as it
        // is done, never held behind another connection's long one.
        let job = match jobs.lock() {
            Ok(jobs) => jobs.recv(),
            Err(_) => return,
        };
        let Ok(mut job) = job else { return };
        pipeline::run_jobs(ctx, std::slice::from_mut(&mut job));
        if done.send(job).is_err() {
            return;
        }
        let _ = waker.wake();
    }
}
