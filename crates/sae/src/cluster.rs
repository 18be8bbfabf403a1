//! The processes a command runs on: this one alone, or the ranks of an MPI job
//! (`mpirun -np N sae …`, `srun sae …`) when `sae` is built with the `mpi` feature.
//!
//! A [`Group`] offers the few collective operations data-parallel training needs: sums
//! of `f32`/`f64` buffers (MPI all-reduce), every rank's `u64` (all-gather, to compare
//! hashes) and an abort that ends every rank. On one process they are no-ops.

use std::fmt;
use std::sync::OnceLock;

/// `(rank, size)` of this process's MPI job, once it has joined one.
static JOB: OnceLock<(usize, usize)> = OnceLock::new();

/// `"rank R of N: "` for the messages of a process in a job of several, else empty.
pub fn rank_prefix() -> String {
    match JOB.get() {
        Some(&(rank, size)) if size > 1 => format!("rank {rank} of {size}: "),
        _ => String::new(),
    }
}

/// The processes a command runs on.
pub struct Group {
    inner: Inner,
}

enum Inner {
    Single,
    #[cfg(feature = "mpi")]
    Mpi {
        // Dropping the universe finalizes MPI, so it lives as long as the group.
        _universe: mpi::environment::Universe,
        world: mpi::topology::SimpleCommunicator,
    },
}

impl fmt::Debug for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Group(rank {} of {})", self.rank(), self.size())
    }
}

/// The number of processes the launcher says this job has (`mpirun`, `srun`, PMIx), if
/// it was started by one.
fn launched_size() -> Option<usize> {
    [
        "OMPI_COMM_WORLD_SIZE",
        "PMI_SIZE",
        "PMIX_SIZE",
        "SLURM_STEP_NUM_TASKS",
    ]
    .iter()
    .find_map(|k| std::env::var(k).ok()?.parse().ok())
}

impl Group {
    /// This process alone.
    pub fn single() -> Self {
        Group {
            inner: Inner::Single,
        }
    }

    /// The job this process belongs to: the MPI world when started by an MPI launcher
    /// with more than one process (and built with the `mpi` feature), else this process
    /// alone. Started as one of several ranks without the feature is an error saying how
    /// to build it, rather than N independent runs writing one folder.
    pub fn from_launcher() -> Result<Self, String> {
        let launched = launched_size().unwrap_or(1);
        #[cfg(feature = "mpi")]
        if launched > 1 || std::env::var_os("OMPI_COMM_WORLD_RANK").is_some() {
            let universe = mpi::initialize().ok_or("MPI was already initialized")?;
            let world = universe.world();
            let group = Group {
                inner: Inner::Mpi {
                    _universe: universe,
                    world,
                },
            };
            let _ = JOB.set((group.rank(), group.size()));
            return Ok(group);
        }
        if launched > 1 {
            return Err(format!(
                "started as one of {launched} processes, but this sae was built without MPI; \
                 build it with `cargo build --release -p sae --features mpi` (README, \
                 \"Clusters\")"
            ));
        }
        Ok(Group::single())
    }

    /// This process's rank, `0..size`.
    pub fn rank(&self) -> usize {
        match &self.inner {
            Inner::Single => 0,
            #[cfg(feature = "mpi")]
            Inner::Mpi { world, .. } => {
                use mpi::traits::Communicator;
                world.rank() as usize
            }
        }
    }

    /// The number of processes.
    pub fn size(&self) -> usize {
        match &self.inner {
            Inner::Single => 1,
            #[cfg(feature = "mpi")]
            Inner::Mpi { world, .. } => {
                use mpi::traits::Communicator;
                world.size() as usize
            }
        }
    }

    /// Whether this is rank 0, the one that writes files.
    pub fn is_root(&self) -> bool {
        self.rank() == 0
    }

    /// Replaces `buf` on every rank by the element-wise sum over the ranks.
    pub fn sum_f32(&self, buf: &mut [f32]) {
        self.sum(buf);
    }

    /// Replaces `buf` on every rank by the element-wise sum over the ranks.
    pub fn sum_f64(&self, buf: &mut [f64]) {
        self.sum(buf);
    }

    #[cfg(feature = "mpi")]
    fn sum<T: mpi::datatype::Equivalence + Copy>(&self, buf: &mut [T]) {
        if let Inner::Mpi { world, .. } = &self.inner {
            use mpi::collective::SystemOperation;
            use mpi::traits::CommunicatorCollectives;
            // rsmpi's all-reduce takes distinct send and receive buffers.
            let local = buf.to_vec();
            world.all_reduce_into(&local[..], buf, SystemOperation::sum());
        }
    }

    #[cfg(not(feature = "mpi"))]
    fn sum<T>(&self, _: &mut [T]) {}

    /// Every rank's `value`, in rank order, on every rank.
    pub fn gather_u64(&self, value: u64) -> Vec<u64> {
        match &self.inner {
            Inner::Single => vec![value],
            #[cfg(feature = "mpi")]
            Inner::Mpi { world, .. } => {
                use mpi::traits::{Communicator, CommunicatorCollectives};
                let mut all = vec![0u64; world.size() as usize];
                world.all_gather_into(&value, &mut all[..]);
                all
            }
        }
    }

    /// Waits until every rank has arrived.
    pub fn barrier(&self) {
        match &self.inner {
            Inner::Single => {}
            #[cfg(feature = "mpi")]
            Inner::Mpi { world, .. } => {
                use mpi::traits::CommunicatorCollectives;
                world.barrier();
            }
        }
    }

    /// Ends every rank of the job with `code` (after this rank printed why): what a rank
    /// does when it cannot go on and the others would wait for it forever. Returns only
    /// on a single process (where there are no others to end).
    #[cfg_attr(not(feature = "mpi"), allow(unused_variables))]
    pub fn abort_others(&self, code: u8) {
        match &self.inner {
            Inner::Single => {}
            #[cfg(feature = "mpi")]
            Inner::Mpi { world, .. } => {
                use mpi::traits::Communicator;
                world.abort(i32::from(code))
            }
        }
    }

    /// The ranks whose `value` differs from rank 0's (for hashes that must agree).
    pub fn disagreeing(&self, value: u64) -> Vec<usize> {
        let all = self.gather_u64(value);
        (1..all.len()).filter(|&r| all[r] != all[0]).collect()
    }
}

/// The images `[start, end)` of a global batch of `batch` that rank `rank` of `size`
/// computes: contiguous shares, the first `batch % size` ranks one image more.
pub fn share(batch: usize, rank: usize, size: usize) -> std::ops::Range<usize> {
    let (base, extra) = (batch / size, batch % size);
    let start = rank * base + rank.min(extra);
    start..start + base + usize::from(rank < extra)
}

/// FNV-1a over bytes: a cheap hash to compare what ranks hold (not a digest).
pub fn fnv1a(bytes: impl IntoIterator<Item = u8>, mut hash: u64) -> u64 {
    for b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// FNV-1a's offset basis, the hash of nothing.
pub const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_cover_the_batch_in_order() {
        for (batch, size) in [(32, 2), (33, 4), (5, 5), (7, 3), (1, 1)] {
            let parts: Vec<_> = (0..size).map(|r| share(batch, r, size)).collect();
            assert_eq!(parts[0].start, 0);
            assert_eq!(parts[size - 1].end, batch);
            for w in parts.windows(2) {
                assert_eq!(w[0].end, w[1].start);
                assert!(w[0].len() >= w[1].len() && w[0].len() <= w[1].len() + 1);
            }
        }
    }

    #[test]
    fn a_single_process_is_its_own_group() {
        let g = Group::single();
        assert_eq!((g.rank(), g.size(), g.is_root()), (0, 1, true));
        let mut v = [1.0f32, 2.0];
        g.sum_f32(&mut v);
        assert_eq!(v, [1.0, 2.0]);
        assert_eq!(g.gather_u64(7), [7]);
        assert!(g.disagreeing(7).is_empty());
        assert_ne!(fnv1a([1u8], FNV_START), fnv1a([2u8], FNV_START));
    }
}
