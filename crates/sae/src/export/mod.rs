//! A trained spiking network for other tools: `sae export RUN FILE --format nir` writes
//! (part of) it as an NIR graph ([`nir`]) in the HDF5 file the neuromorphic ecosystem
//! exchanges ([`hdf5`], cargo feature `nir`), and optionally the activity an importer
//! should reproduce ([`activity`]).

pub mod activity;
#[cfg(feature = "nir")]
pub mod hdf5;
pub mod nir;

use std::path::Path;

use crate::run::RunError;

crate::choice! {
    /// File formats `sae export` writes.
    pub enum Format {
        /// NIR (neuroir.org): an HDF5 file of graph nodes and edges.
        Nir = "nir",
    }
}

/// Writes `graph` as an NIR HDF5 file at `path`.
#[cfg(feature = "nir")]
pub fn write_nir(path: &Path, graph: &nir::Graph) -> Result<(), RunError> {
    hdf5::write(path, graph).map_err(|e| RunError::Io(e.to_string()))
}

/// Without the `nir` feature there is no HDF5 library to write with.
#[cfg(not(feature = "nir"))]
pub fn write_nir(path: &Path, _: &nir::Graph) -> Result<(), RunError> {
    Err(RunError::Usage(format!(
        "{}: this `sae` was built without NIR export; build it with `cargo build --release -p \
         sae --features nir` (needs the HDF5 library: `apt-get install libhdf5-dev` on Debian \
         and Ubuntu)",
        path.display()
    )))
}
