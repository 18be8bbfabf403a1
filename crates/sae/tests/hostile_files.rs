//! Hostile IDX files: random bytes, random headers, truncated, padded or gzip-wrapped
//! files never panic, abort or hang the readers; a file is accepted exactly when its
//! header is right and its length matches it, and every error names the file.

use std::io::Write;
use std::path::Path;

use flate2::Compression;
use flate2::write::GzEncoder;
use proptest::prelude::*;
use sae::data::{self, Mnist, read_images, read_labels};
use tempfile::TempDir;

const IMAGES_MAGIC: u32 = 0x0000_0803;
const LABELS_MAGIC: u32 = 0x0000_0801;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// An IDX file: the magic, the dimensions, then the body.
fn idx(magic: u32, dims: &[u32], body: &[u8]) -> Vec<u8> {
    let mut b = magic.to_be_bytes().to_vec();
    for d in dims {
        b.extend(d.to_be_bytes());
    }
    b.extend(body);
    b
}

/// Asserts that a failed read's message starts with the file's path.
fn names_the_file<T>(
    result: &Result<T, data::DataError>,
    path: &Path,
) -> Result<(), TestCaseError> {
    if let Err(e) = result {
        let msg = e.to_string();
        prop_assert!(msg.starts_with(&format!("{}: ", path.display())), "{}", msg);
    }
    Ok(())
}

/// Small dimensions mostly, sometimes huge ones.
fn dim() -> impl Strategy<Value = u32> {
    prop_oneof![8 => 0u32..6, 1 => any::<u32>(), 1 => Just(u32::MAX)]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 200,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..64), gz in any::<bool>()) {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("random");
        std::fs::write(&path, if gz { gzip(&bytes) } else { bytes }).unwrap();
        names_the_file(&read_images(&path), &path)?;
        names_the_file(&read_labels(&path), &path)?;
        // Gzip magic followed by anything: a corrupt stream.
        let mut corrupt = vec![0x1f, 0x8b];
        corrupt.extend(std::fs::read(&path).unwrap());
        std::fs::write(&path, corrupt).unwrap();
        names_the_file(&read_images(&path), &path)?;
        names_the_file(&read_labels(&path), &path)?;
    }

    /// Images: accepted exactly when the magic is right and the body is as long as the
    /// header says; then the pixels are the body.
    #[test]
    fn random_image_headers(
        magic in prop_oneof![4 => Just(IMAGES_MAGIC), 1 => Just(LABELS_MAGIC), 1 => any::<u32>()],
        dims in prop::collection::vec(dim(), 0..4),
        delta in prop_oneof![4 => Just(0i64), 1 => -3i64..4],
        gz in any::<bool>(),
    ) {
        let promised = dims.iter().map(|&d| u128::from(d)).product::<u128>();
        let len = if promised > 4096 { 64 } else { (promised as i64 + delta).max(0) as usize };
        let body: Vec<u8> = (0..len).map(|i| (i * 31) as u8).collect();
        let bytes = idx(magic, &dims, &body);
        let dir = TempDir::new().unwrap();
        let path = dir.path().join(if gz { "imgs.gz" } else { "imgs" });
        std::fs::write(&path, if gz { gzip(&bytes) } else { bytes }).unwrap();
        let result = read_images(&path);
        names_the_file(&result, &path)?;
        let valid = magic == IMAGES_MAGIC && dims.len() == 3 && promised == len as u128;
        prop_assert_eq!(result.is_ok(), valid, "{:?}", result.as_ref().err().map(|e| e.to_string()));
        if let Ok(images) = result {
            prop_assert_eq!((images.count, images.rows, images.cols), (dims[0] as usize, dims[1] as usize, dims[2] as usize));
            prop_assert_eq!(images.pixels, body);
        }
    }

    /// Labels: accepted exactly when the header is right, the length matches and every
    /// label is a digit.
    #[test]
    fn random_label_files(
        magic in prop_oneof![4 => Just(LABELS_MAGIC), 1 => any::<u32>()],
        count in dim(),
        labels in prop::collection::vec(prop_oneof![9 => 0u8..10, 1 => any::<u8>()], 0..8),
        extra in 0usize..3,
        gz in any::<bool>(),
    ) {
        let mut body = labels.clone();
        body.resize(labels.len() + extra, 1);
        let bytes = idx(magic, &[count], &body);
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("lbls");
        std::fs::write(&path, if gz { gzip(&bytes) } else { bytes }).unwrap();
        let result = read_labels(&path);
        names_the_file(&result, &path)?;
        let valid = magic == LABELS_MAGIC && count as usize == body.len() && body.iter().all(|&l| l < 10);
        prop_assert_eq!(result.is_ok(), valid, "{:?}", result.as_ref().err().map(|e| e.to_string()));
        if let Ok(read) = result {
            prop_assert_eq!(read, body);
        }
    }

    /// A valid file cut short anywhere, or with bytes after it, is an error, plain or gzip.
    #[test]
    fn truncated_or_trailing(cut in any::<prop::sample::Index>(), extra in prop::collection::vec(any::<u8>(), 0..5), gz in any::<bool>()) {
        let valid = idx(IMAGES_MAGIC, &[2, 3, 4], &[7; 24]);
        // Cut short, or whole with bytes after it.
        let mut bytes = if extra.is_empty() {
            valid[..cut.index(valid.len())].to_vec()
        } else {
            valid.clone()
        };
        bytes.extend(&extra);
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("imgs");
        std::fs::write(&path, if gz { gzip(&bytes) } else { bytes }).unwrap();
        let result = read_images(&path);
        names_the_file(&result, &path)?;
        prop_assert!(result.is_err());
    }

    /// `Mnist::load` on a folder whose files are replaced by random headers and bodies.
    #[test]
    fn mnist_with_a_hostile_file(
        which in 0usize..4,
        dims in prop::collection::vec(dim(), 1..4),
        body in prop::collection::vec(any::<u8>(), 0..32),
        gz in any::<bool>(),
    ) {
        let dir = TempDir::new().unwrap();
        let side = 28u32;
        let write = |name: &str, bytes: Vec<u8>| std::fs::write(dir.path().join(name), bytes).unwrap();
        write(data::TRAIN_IMAGES, idx(IMAGES_MAGIC, &[1, side, side], &[0; 784]));
        write(data::TRAIN_LABELS, idx(LABELS_MAGIC, &[1], &[3]));
        write(data::TEST_IMAGES, idx(IMAGES_MAGIC, &[1, side, side], &[0; 784]));
        write(data::TEST_LABELS, idx(LABELS_MAGIC, &[1], &[4]));
        prop_assert!(Mnist::load(dir.path()).is_ok());
        let name = data::FILES[which];
        let magic = if which % 2 == 0 { IMAGES_MAGIC } else { LABELS_MAGIC };
        let bytes = idx(magic, &dims, &body);
        std::fs::remove_file(dir.path().join(name)).unwrap();
        let (name, bytes) = if gz { (format!("{name}.gz"), gzip(&bytes)) } else { (name.to_string(), bytes) };
        write(&name, bytes);
        if let Err(e) = Mnist::load(dir.path()) {
            let msg = e.to_string();
            prop_assert!(msg.starts_with(&dir.path().join(&name).display().to_string()), "{}", msg);
        }
    }
}

/// A gzip bomb (a tiny header promise, 50 MB of zeros behind it) stops early and fast,
/// whichever reader and whichever promise.
#[test]
fn gzip_bombs_stop_early() {
    let dir = TempDir::new().unwrap();
    let mut inflated = idx(IMAGES_MAGIC, &[1, 2, 2], &[]);
    inflated.resize(50 << 20, 0);
    let path = dir.path().join("bomb-images.gz");
    std::fs::write(&path, gzip(&inflated)).unwrap();
    let start = std::time::Instant::now();
    let msg = read_images(&path).unwrap_err().to_string();
    assert!(
        msg.contains("trailing bytes") && msg.contains("more than 20 bytes"),
        "{msg}"
    );

    inflated[..8].copy_from_slice(&idx(LABELS_MAGIC, &[3], &[])[..8]);
    let path = dir.path().join("bomb-labels.gz");
    std::fs::write(&path, gzip(&inflated)).unwrap();
    let msg = read_labels(&path).unwrap_err().to_string();
    assert!(msg.contains("more than 11 bytes"), "{msg}");
    assert!(start.elapsed().as_secs_f64() < 2.0, "{:?}", start.elapsed());
}
