//! MNIST in the IDX format: finding, reading, validating and batching it.
//!
//! Files are read plain or gzip-compressed and checked against their own headers before
//! anything else sees them: a bad file is a [`DataError`] naming the file, the field, and
//! the expected and found values, never a panic or silently wrong data. Images stay `u8`
//! (47 MB for the training set) and are converted to `f32` one batch at a time.

use std::ffi::OsString;
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use autograd::io::regular_file;
use autograd::memory::machine_memory;
use byteorder::{BigEndian, ByteOrder};
use flate2::read::MultiGzDecoder;
use ndarray::Array4;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

/// Canonical name of the training images (60000 × 28 × 28).
pub const TRAIN_IMAGES: &str = "train-images-idx3-ubyte";
/// Canonical name of the training labels (60000).
pub const TRAIN_LABELS: &str = "train-labels-idx1-ubyte";
/// Canonical name of the test images (10000 × 28 × 28).
pub const TEST_IMAGES: &str = "t10k-images-idx3-ubyte";
/// Canonical name of the test labels (10000).
pub const TEST_LABELS: &str = "t10k-labels-idx1-ubyte";
/// The four files a MNIST directory must hold, each plain or as `<name>.gz`.
pub const FILES: [&str; 4] = [TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS];
/// Where `./data-fetch.sh` puts MNIST, relative to the workspace root.
pub const DEFAULT_DIR: &str = "data/mnist";

/// IDX magic: two zero bytes, element type 0x08 (u8), then the number of dimensions.
const IMAGES_MAGIC: u32 = 0x0000_0803;
const LABELS_MAGIC: u32 = 0x0000_0801;
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// MNIST's image side; [`read_images`] accepts any size, [`Mnist::load`] insists on this.
const MNIST_SIDE: usize = 28;
const NUM_CLASSES: u8 = 10;
/// The most a gzip body's buffer reserves before its bytes arrive (MNIST's largest file,
/// 47 MB, fits): a header's promise alone never reserves more.
const PREALLOCATE: u64 = 64 << 20;

/// Why MNIST could not be found or read.
#[derive(Debug)]
pub enum DataError {
    /// The file could not be opened, read or decompressed.
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's (or decompressor's) error.
        source: io::Error,
    },
    /// A header field or a stored value is not what it must be.
    Field {
        /// The file.
        path: PathBuf,
        /// The field, e.g. `magic` or `label[12]`.
        field: String,
        /// What it must be.
        expected: String,
        /// What the file holds.
        found: String,
    },
    /// The file's length differs from what its header implies (truncated or trailing bytes).
    Length {
        /// The file.
        path: PathBuf,
        /// Where `expected` comes from, e.g. "60000 images of 28×28".
        implied: String,
        /// Bytes the header implies.
        expected: u64,
        /// Bytes the file has.
        found: u64,
        /// Whether the lengths are of the decompressed data.
        gzip: bool,
        /// Whether reading stopped at `found` bytes, past `expected`: the file has more.
        stopped_early: bool,
    },
    /// The header promises more data than the memory available could hold.
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Where `promised` comes from, e.g. "header says 4294967295 labels".
        implied: String,
        /// Bytes the header promises (header included; wider than u64 when three u32
        /// dimensions say so).
        promised: u128,
        /// Bytes of memory available.
        available: u64,
        /// Whether the promise is of the decompressed data.
        gzip: bool,
    },
    /// No directory holding the four MNIST files.
    NotFound {
        /// Each place searched, with why it failed.
        searched: Vec<(PathBuf, String)>,
    },
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataError::Io { path, source } => {
                write!(f, "{}: cannot read: {source}", path.display())
            }
            DataError::Field {
                path,
                field,
                expected,
                found,
            } => write!(
                f,
                "{}: field \"{field}\": expected {expected}, found {found}",
                path.display()
            ),
            DataError::Length {
                path,
                implied,
                expected,
                found,
                gzip,
                stopped_early,
            } => {
                let problem = if found < expected {
                    "truncated"
                } else {
                    "trailing bytes"
                };
                let holder = if *gzip { "decompressed file" } else { "file" };
                let has = if *stopped_early {
                    format!("more than {expected} bytes (reading stopped there)")
                } else {
                    format!("{found} bytes")
                };
                write!(
                    f,
                    "{}: {problem}: {implied} ({expected} bytes), {holder} has {has}",
                    path.display()
                )
            }
            DataError::TooLarge {
                path,
                implied,
                promised,
                available,
                gzip,
            } => {
                let data = if *gzip { "decompressed data" } else { "data" };
                write!(
                    f,
                    "{}: too large: {implied} ({promised} bytes of {data}), more than the \
                     {available} bytes of memory available",
                    path.display()
                )
            }
            DataError::NotFound { searched } => {
                writeln!(f, "MNIST not found; searched:")?;
                for (dir, why) in searched {
                    writeln!(f, "  {}: {why}", dir.display())?;
                }
                write!(
                    f,
                    "run `./data-fetch.sh` to download MNIST into {DEFAULT_DIR}/, \
                     or point --data-dir or MNIST_DIR at a folder holding {}",
                    FILES.join(", ")
                )
            }
        }
    }
}

impl std::error::Error for DataError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DataError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// A stack of greyscale images as stored in an IDX file.
#[derive(Clone, PartialEq, Eq)]
pub struct Images {
    /// Number of images.
    pub count: usize,
    /// Rows per image.
    pub rows: usize,
    /// Columns per image.
    pub cols: usize,
    /// Row-major pixels, `count · rows · cols` of them, image after image.
    pub pixels: Vec<u8>,
}

impl fmt::Debug for Images {
    // The pixels are tens of megabytes: show the shape only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Images({}×{}×{})", self.count, self.rows, self.cols)
    }
}

/// An IDX file's dimension sizes and body (the bytes after the header), read without
/// trusting the header: a plain file's length is compared with the header's promise
/// before the body is read, and a gzip stream is never inflated beyond that promise.
fn read_idx(
    path: &Path,
    magic: u32,
    describe: impl Fn(&[u32]) -> String,
) -> Result<(Vec<u32>, Vec<u8>), DataError> {
    let io_err = |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    // Checked before opening: a FIFO would block the open, a device would never end.
    regular_file(path).map_err(io_err)?;
    let file = File::open(path).map_err(io_err)?;
    let file_len = file.metadata().map_err(io_err)?.len();
    let mut file = BufReader::new(file);
    let gzip = file.fill_buf().map_err(io_err)?.starts_with(&GZIP_MAGIC);
    let mut reader: Box<dyn Read> = if gzip {
        Box::new(MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let length_err = |implied: String, expected: u64, found: u64| DataError::Length {
        path: path.to_path_buf(),
        implied,
        expected,
        found,
        gzip,
        stopped_early: false,
    };

    let head = read_at_most(&mut reader, 4).map_err(|e| io_err(gzip_context(e, gzip)))?;
    if head.len() < 4 {
        return Err(length_err(
            "an IDX file starts with a 4-byte magic number".into(),
            4,
            head.len() as u64,
        ));
    }
    let found = BigEndian::read_u32(&head);
    if found != magic {
        return Err(DataError::Field {
            path: path.to_path_buf(),
            field: "magic".into(),
            expected: format!("{magic:#010x}"),
            found: format!("{found:#010x}"),
        });
    }
    let ndims = (magic & 0xff) as usize;
    let header_len = 4 + 4 * ndims as u64;
    let dims_bytes =
        read_at_most(&mut reader, 4 * ndims as u64).map_err(|e| io_err(gzip_context(e, gzip)))?;
    if dims_bytes.len() < 4 * ndims {
        return Err(length_err(
            format!("an IDX file with {ndims} dimensions has a {header_len}-byte header"),
            header_len,
            4 + dims_bytes.len() as u64,
        ));
    }
    let dims: Vec<u32> = dims_bytes
        .chunks_exact(4)
        .map(BigEndian::read_u32)
        .collect();

    // u128 with checked steps: no header can make the promise wrap around.
    let body_len = dims
        .iter()
        .try_fold(1u128, |n, &d| n.checked_mul(u128::from(d)))
        .unwrap_or(u128::MAX);
    let promised_exactly = u128::from(header_len).saturating_add(body_len);
    let promised = u64::try_from(promised_exactly).unwrap_or(u64::MAX);
    if !gzip && promised != file_len {
        return Err(length_err(describe(&dims), promised, file_len));
    }
    // No memory figure, no check.
    let available = machine_memory().map(|m| m.available);
    if let Some(available) = available.filter(|&a| body_len > u128::from(a)) {
        return Err(DataError::TooLarge {
            path: path.to_path_buf(),
            implied: describe(&dims),
            promised: promised_exactly,
            available,
            gzip,
        });
    }
    // The reader stops one byte past the promise: a longer stream is found without
    // inflating the rest of it.
    let body_len = promised - header_len;
    let capacity = usize::try_from(body_len.min(PREALLOCATE)).unwrap_or(0);
    let mut body = Vec::with_capacity(capacity);
    reader
        .take(body_len.saturating_add(1))
        .read_to_end(&mut body)
        .map_err(|e| io_err(gzip_context(e, gzip)))?;
    let read = body.len() as u64;
    if read != body_len {
        return Err(DataError::Length {
            path: path.to_path_buf(),
            implied: describe(&dims),
            expected: promised,
            found: header_len + read,
            gzip,
            stopped_early: read > body_len,
        });
    }
    Ok((dims, body))
}

/// Reads up to `n` bytes, fewer only at the end of the stream.
fn read_at_most(reader: &mut dyn Read, n: u64) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    reader.take(n).read_to_end(&mut out)?;
    Ok(out)
}

/// Says that a read error came from the decompressor, when it did.
fn gzip_context(e: io::Error, gzip: bool) -> io::Error {
    if gzip {
        io::Error::new(e.kind(), format!("invalid gzip data: {e}"))
    } else {
        e
    }
}

/// Reads an IDX image file (magic 0x00000803: count, rows, cols, then u8 pixels), plain or
/// gzip. Any image size is accepted; the length must match the header exactly.
pub fn read_images(path: &Path) -> Result<Images, DataError> {
    let describe = |d: &[u32]| format!("header says {} images of {}×{}", d[0], d[1], d[2]);
    let (dims, pixels) = read_idx(path, IMAGES_MAGIC, describe)?;
    // Each u32 fits in usize, and the body has their product's bytes.
    Ok(Images {
        count: dims[0] as usize,
        rows: dims[1] as usize,
        cols: dims[2] as usize,
        pixels,
    })
}

/// Reads an IDX label file (magic 0x00000801: count, then u8 labels), plain or gzip.
/// The length must match the header exactly and every label must be a digit, 0..=9.
pub fn read_labels(path: &Path) -> Result<Vec<u8>, DataError> {
    let describe = |d: &[u32]| format!("header says {} labels", d[0]);
    let (_, labels) = read_idx(path, LABELS_MAGIC, describe)?;
    if let Some(i) = labels.iter().position(|&l| l >= NUM_CLASSES) {
        return Err(DataError::Field {
            path: path.to_path_buf(),
            field: format!("label[{i}]"),
            expected: format!("0..={}", NUM_CLASSES - 1),
            found: labels[i].to_string(),
        });
    }
    Ok(labels)
}

/// One split of MNIST: images (u8, kept compact) and labels.
#[derive(Clone, PartialEq, Eq)]
pub struct Split {
    /// The images, `labels.len()` of them.
    pub images: Images,
    /// One digit, 0..=9, per image.
    pub labels: Vec<u8>,
}

impl fmt::Debug for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Split({:?}, {} labels)", self.images, self.labels.len())
    }
}

impl Split {
    /// Number of examples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the split holds no examples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The given examples as a [n, 1, rows, cols] f32 array with pixels scaled to [0, 1].
    ///
    /// Panics if an index is out of range (a caller bug, not a data problem).
    pub fn images_f32(&self, indices: &[usize]) -> Array4<f32> {
        let Images { rows, cols, .. } = self.images;
        let size = rows * cols;
        let mut out = Vec::with_capacity(indices.len() * size);
        for &i in indices {
            assert!(
                i < self.len(),
                "example {i} out of range for {} examples",
                self.len()
            );
            let image = &self.images.pixels[i * size..(i + 1) * size];
            out.extend(image.iter().map(|&p| f32::from(p) / 255.0));
        }
        Array4::from_shape_vec((indices.len(), 1, rows, cols), out)
            .expect("n · rows · cols values were pushed")
    }

    /// The labels of the given examples, in order. Panics if an index is out of range.
    pub fn labels_of(&self, indices: &[usize]) -> Vec<u8> {
        indices.iter().map(|&i| self.labels[i]).collect()
    }

    /// The first n examples (for quick runs and tests); n larger than len is clamped.
    pub fn take(&self, n: usize) -> Split {
        self.range(0, n)
    }

    /// The examples `start..start + n`, clamped to the split (e.g. a validation subset
    /// from the end of the training split).
    pub fn range(&self, start: usize, n: usize) -> Split {
        let start = start.min(self.len());
        let end = start + n.min(self.len() - start);
        let Images { rows, cols, .. } = self.images;
        let size = rows * cols;
        Split {
            images: Images {
                count: end - start,
                rows,
                cols,
                pixels: self.images.pixels[start * size..end * size].to_vec(),
            },
            labels: self.labels[start..end].to_vec(),
        }
    }
}

/// MNIST's two splits, validated: 60000 training and 10000 test examples of 28×28.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mnist {
    /// The training split.
    pub train: Split,
    /// The test split.
    pub test: Split,
}

impl Mnist {
    /// Loads the four canonical files from `dir` (each may also be present as `<name>.gz`).
    ///
    /// Checks each file (see [`read_images`], [`read_labels`]), that images are 28×28 and
    /// that each split has as many labels as images.
    pub fn load(dir: &Path) -> Result<Mnist, DataError> {
        if let Some(why) = lacks_files(dir) {
            return Err(DataError::NotFound {
                searched: vec![(dir.to_path_buf(), why)],
            });
        }
        Ok(Mnist {
            train: load_split(dir, TRAIN_IMAGES, TRAIN_LABELS)?,
            test: load_split(dir, TEST_IMAGES, TEST_LABELS)?,
        })
    }
}

/// `dir/name` if it is a regular file, else `dir/name.gz` if that is.
pub(crate) fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    locate(dir, name).ok()
}

/// `dir/name` if it is a regular file, else `dir/name.gz` if that is; else why not:
/// `None` when neither exists, or what stands in their place ("<path>: is a directory, not
/// a file").
fn locate(dir: &Path, name: &str) -> Result<PathBuf, Option<String>> {
    let mut why = None;
    for path in [dir.join(name), dir.join(format!("{name}.gz"))] {
        match regular_file(&path) {
            Ok(_) => return Ok(path),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                why.get_or_insert_with(|| format!("{}: {e}", path.display()));
            }
        }
    }
    Err(why)
}

/// Why `dir` cannot serve as a MNIST directory, or `None` if it holds all four files.
fn lacks_files(dir: &Path) -> Option<String> {
    match regular_file(dir) {
        Err(e) if e.kind() == io::ErrorKind::IsADirectory => {}
        Ok(_) => return Some("is a file, not a directory".into()),
        Err(e) => return Some(e.to_string()),
    }
    let mut missing = Vec::new();
    let mut problems = Vec::new();
    for name in FILES {
        match locate(dir, name) {
            Ok(_) => {}
            Err(None) => missing.push(name),
            Err(Some(why)) => problems.push(why),
        }
    }
    if !missing.is_empty() {
        problems.insert(0, format!("missing {} (plain or .gz)", missing.join(", ")));
    }
    (!problems.is_empty()).then(|| problems.join("; "))
}

fn load_split(dir: &Path, images_name: &str, labels_name: &str) -> Result<Split, DataError> {
    let find = |name: &str| {
        locate(dir, name).map_err(|why| DataError::NotFound {
            searched: vec![(
                dir.to_path_buf(),
                why.unwrap_or_else(|| format!("missing {name} (plain or .gz)")),
            )],
        })
    };
    let images_path = find(images_name)?;
    let images = read_images(&images_path)?;
    for (field, found) in [("rows", images.rows), ("cols", images.cols)] {
        if found != MNIST_SIDE {
            return Err(DataError::Field {
                path: images_path,
                field: field.into(),
                expected: MNIST_SIDE.to_string(),
                found: found.to_string(),
            });
        }
    }
    let labels_path = find(labels_name)?;
    let labels = read_labels(&labels_path)?;
    if labels.len() != images.count {
        return Err(DataError::Field {
            path: labels_path,
            field: "count".into(),
            expected: format!(
                "{} (the image count of {})",
                images.count,
                images_path.display()
            ),
            found: labels.len().to_string(),
        });
    }
    Ok(Split { images, labels })
}

/// Where MNIST is: `explicit` (the --data-dir flag) if given, else the MNIST_DIR environment
/// variable, else `data/mnist/`.
///
/// The first candidate given wins: an explicit dir or MNIST_DIR that lacks the files is an
/// error naming it, not a silent fallback to the next one.
pub fn resolve_dir(explicit: Option<&Path>) -> Result<PathBuf, DataError> {
    resolve_from(
        explicit,
        std::env::var_os("MNIST_DIR"),
        Path::new(DEFAULT_DIR),
    )
}

/// [`resolve_dir`] with the environment passed in, so tests need not mutate it.
fn resolve_from(
    explicit: Option<&Path>,
    env: Option<OsString>,
    default: &Path,
) -> Result<PathBuf, DataError> {
    let (dir, origin) = match (explicit, env.filter(|e| !e.is_empty())) {
        (Some(dir), _) => (dir.to_path_buf(), "from --data-dir"),
        (None, Some(env)) => (PathBuf::from(env), "from MNIST_DIR"),
        (None, None) => (default.to_path_buf(), "the default"),
    };
    match lacks_files(&dir) {
        None => Ok(dir),
        Some(why) => Err(DataError::NotFound {
            searched: vec![(dir, format!("{origin}; {why}"))],
        }),
    }
}

/// MNIST for the tests that need it; those are marked
/// `#[ignore = "needs MNIST (./data-fetch.sh or MNIST_DIR)"]` and run with `--include-ignored`.
///
/// MNIST_DIR if it is set and not empty, else `data/mnist/` from the current directory, then
/// from the workspace root. Panics if that finds no folder holding the four files: a test
/// asked to run must never pass without its data. A MNIST_DIR that lacks them is named with
/// its value and what it lacks, with no fallback; otherwise the message names the places
/// searched and says to run `./data-fetch.sh` or set MNIST_DIR.
pub fn mnist_for_tests() -> PathBuf {
    if let Some(env) = std::env::var_os("MNIST_DIR").filter(|e| !e.is_empty()) {
        let dir = PathBuf::from(env);
        if let Some(why) = lacks_files(&dir) {
            panic!(
                "MNIST_DIR={}: {why}; point it at a folder holding the four MNIST files, \
                 or unset it to use {DEFAULT_DIR}/ (filled by ./data-fetch.sh)",
                dir.display()
            );
        }
        return dir.canonicalize().unwrap_or(dir);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let root = root.canonicalize().unwrap_or(root);
    let mut searched = Vec::new();
    for dir in [PathBuf::from(DEFAULT_DIR), root.join(DEFAULT_DIR)] {
        match lacks_files(&dir) {
            None => return dir.canonicalize().unwrap_or(dir),
            Some(why) => searched.push(format!("{}: {why}", dir.display())),
        }
    }
    panic!(
        "MNIST not found ({}); run ./data-fetch.sh to download it into {DEFAULT_DIR}/, \
         or set MNIST_DIR to a folder holding {}",
        searched.join("; "),
        FILES.join(", ")
    );
}

/// Deterministic shuffled mini-batch order for an epoch: a permutation of 0..n from a seed.
///
/// A Fisher–Yates shuffle driven by `StdRng::seed_from_u64(seed)`: the same (n, seed) gives
/// the same order for a given `rand` version; use a different seed per epoch.
pub fn epoch_order(n: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut StdRng::seed_from_u64(seed));
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use std::io::Write;
    use tempfile::TempDir;

    fn images_bytes(count: u32, rows: u32, cols: u32, pixels: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        for v in [IMAGES_MAGIC, count, rows, cols] {
            b.extend(v.to_be_bytes());
        }
        b.extend(pixels);
        b
    }

    fn labels_bytes(labels: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend(LABELS_MAGIC.to_be_bytes());
        b.extend((labels.len() as u32).to_be_bytes());
        b.extend(labels);
        b
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    fn write(dir: &TempDir, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// The error message of a call that must fail.
    fn err_text<T>(result: Result<T, DataError>) -> String {
        match result {
            Ok(_) => panic!("expected an error"),
            Err(e) => e.to_string(),
        }
    }

    /// `n` varied pixel values (a stride-37 ramp mod 256, so neighbours differ).
    fn ramp(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 37 % 256) as u8).collect()
    }

    /// A MNIST directory with `n_train` / `n_test` 28×28 examples; the test files are gzip.
    fn tiny_mnist(n_train: usize, n_test: usize) -> TempDir {
        let dir = TempDir::new().unwrap();
        let side = MNIST_SIDE as u32;
        let px = |n: usize| ramp(n * MNIST_SIDE * MNIST_SIDE);
        let digits = |n: usize| (0..n).map(|i| (i % 10) as u8).collect::<Vec<_>>();
        write(
            &dir,
            TRAIN_IMAGES,
            &images_bytes(n_train as u32, side, side, &px(n_train)),
        );
        write(&dir, TRAIN_LABELS, &labels_bytes(&digits(n_train)));
        let test_images = images_bytes(n_test as u32, side, side, &px(n_test));
        write(&dir, &format!("{TEST_IMAGES}.gz"), &gzip(&test_images));
        write(
            &dir,
            &format!("{TEST_LABELS}.gz"),
            &gzip(&labels_bytes(&digits(n_test))),
        );
        dir
    }

    #[test]
    fn images_round_trip() {
        let dir = TempDir::new().unwrap();
        let pixels = ramp(3 * 2 * 4);
        let path = write(&dir, "imgs", &images_bytes(3, 2, 4, &pixels));
        let images = read_images(&path).unwrap();
        assert_eq!((images.count, images.rows, images.cols), (3, 2, 4));
        assert_eq!(images.pixels, pixels);
    }

    #[test]
    fn labels_round_trip() {
        let dir = TempDir::new().unwrap();
        let labels = [0, 9, 3, 3, 7];
        let path = write(&dir, "lbls", &labels_bytes(&labels));
        assert_eq!(read_labels(&path).unwrap(), labels);
    }

    #[test]
    fn gzip_is_read_by_name_or_by_magic() {
        let dir = TempDir::new().unwrap();
        let pixels = ramp(2 * 3 * 3);
        let raw = images_bytes(2, 3, 3, &pixels);
        for name in ["imgs.gz", "imgs-without-suffix"] {
            let path = write(&dir, name, &gzip(&raw));
            let images = read_images(&path).unwrap();
            assert_eq!((images.count, images.rows, images.cols), (2, 3, 3));
            assert_eq!(images.pixels, pixels);
        }
        let path = write(&dir, "lbls.gz", &gzip(&labels_bytes(&[4, 2])));
        assert_eq!(read_labels(&path).unwrap(), [4, 2]);
    }

    #[test]
    fn corrupt_gzip_is_an_error() {
        let dir = TempDir::new().unwrap();
        let mut bytes = gzip(&labels_bytes(&[1, 2, 3]));
        bytes.truncate(12);
        let path = write(&dir, "lbls.gz", &bytes);
        let msg = err_text(read_labels(&path));
        assert!(
            msg.contains("lbls.gz") && msg.contains("cannot read"),
            "{msg}"
        );
    }

    #[test]
    fn truncated_images() {
        let dir = TempDir::new().unwrap();
        let mut bytes = images_bytes(3, 2, 4, &ramp(24));
        bytes.truncate(30);
        let path = write(&dir, "train-images-idx3-ubyte", &bytes);
        let msg = err_text(read_images(&path));
        assert!(msg.contains("train-images-idx3-ubyte: truncated"), "{msg}");
        assert!(
            msg.contains("header says 3 images of 2×4 (40 bytes)"),
            "{msg}"
        );
        assert!(msg.contains("file has 30 bytes"), "{msg}");
    }

    #[test]
    fn truncated_gzip_labels_report_the_decompressed_length() {
        let dir = TempDir::new().unwrap();
        let mut bytes = labels_bytes(&[1, 2, 3, 4]);
        bytes.truncate(10);
        let path = write(&dir, "lbls.gz", &gzip(&bytes));
        let msg = err_text(read_labels(&path));
        assert!(msg.contains("lbls.gz: truncated"), "{msg}");
        assert!(msg.contains("header says 4 labels (12 bytes)"), "{msg}");
        assert!(msg.contains("decompressed file has 10 bytes"), "{msg}");
    }

    #[test]
    fn truncated_header() {
        let dir = TempDir::new().unwrap();
        let path = write(&dir, "imgs", &images_bytes(1, 2, 2, &[])[..10]);
        let msg = err_text(read_images(&path));
        assert!(msg.contains("imgs: truncated"), "{msg}");
        assert!(msg.contains("16-byte header"), "{msg}");
        assert!(msg.contains("file has 10 bytes"), "{msg}");
    }

    #[test]
    fn trailing_bytes() {
        let dir = TempDir::new().unwrap();
        let mut bytes = images_bytes(1, 2, 2, &[1, 2, 3, 4]);
        bytes.push(0);
        let path = write(&dir, "imgs", &bytes);
        let msg = err_text(read_images(&path));
        assert!(msg.contains("imgs: trailing bytes"), "{msg}");
        assert!(msg.contains("(20 bytes), file has 21 bytes"), "{msg}");

        let mut bytes = labels_bytes(&[1, 2]);
        bytes.extend([0, 0]);
        let path = write(&dir, "lbls", &bytes);
        let msg = err_text(read_labels(&path));
        assert!(msg.contains("lbls: trailing bytes"), "{msg}");
        assert!(
            msg.contains("header says 2 labels (10 bytes), file has 12 bytes"),
            "{msg}"
        );
    }

    #[test]
    fn wrong_magic() {
        let dir = TempDir::new().unwrap();
        let path = write(&dir, "t10k-labels-idx1-ubyte", &images_bytes(1, 1, 1, &[0]));
        let msg = err_text(read_labels(&path));
        assert!(
            msg.ends_with(
                "t10k-labels-idx1-ubyte: field \"magic\": expected 0x00000801, found 0x00000803"
            ),
            "{msg}"
        );
        let path = write(&dir, "imgs", &labels_bytes(&[1]));
        let msg = err_text(read_images(&path));
        assert!(
            msg.contains("imgs: field \"magic\": expected 0x00000803, found 0x00000801"),
            "{msg}"
        );
    }

    #[test]
    fn label_out_of_range() {
        let dir = TempDir::new().unwrap();
        let path = write(&dir, "lbls", &labels_bytes(&[1, 10, 2]));
        let msg = err_text(read_labels(&path));
        assert!(
            msg.contains("lbls: field \"label[1]\": expected 0..=9, found 10"),
            "{msg}"
        );
    }

    #[test]
    fn empty_file() {
        let dir = TempDir::new().unwrap();
        let path = write(&dir, "empty", &[]);
        for msg in [err_text(read_images(&path)), err_text(read_labels(&path))] {
            assert!(msg.contains("empty: truncated"), "{msg}");
            assert!(msg.contains("file has 0 bytes"), "{msg}");
        }
    }

    #[test]
    fn header_only_with_zero_items_is_valid_and_empty() {
        let dir = TempDir::new().unwrap();
        let images = read_images(&write(&dir, "imgs", &images_bytes(0, 28, 28, &[]))).unwrap();
        assert_eq!((images.count, images.rows, images.cols), (0, 28, 28));
        assert!(images.pixels.is_empty());
        let labels = read_labels(&write(&dir, "lbls", &labels_bytes(&[]))).unwrap();
        assert!(labels.is_empty());
        let split = Split { images, labels };
        assert!(split.is_empty());
        assert_eq!(split.images_f32(&[]).shape(), [0, 1, 28, 28]);
    }

    #[test]
    fn missing_file() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("no-such-file");
        for msg in [err_text(read_images(&path)), err_text(read_labels(&path))] {
            assert!(msg.contains("no-such-file: cannot read"), "{msg}");
        }
        // A MNIST directory missing a file names it and says how to get MNIST.
        let mnist = tiny_mnist(2, 2);
        std::fs::remove_file(mnist.path().join(TRAIN_LABELS)).unwrap();
        let msg = err_text(Mnist::load(mnist.path()));
        assert!(msg.contains(&mnist.path().display().to_string()), "{msg}");
        assert!(msg.contains(&format!("missing {TRAIN_LABELS} ")), "{msg}");
        assert!(msg.contains("./data-fetch.sh"), "{msg}");
    }

    #[test]
    fn mnist_loads_plain_and_gzip_files() {
        let mnist = tiny_mnist(5, 3);
        let mnist = Mnist::load(mnist.path()).unwrap();
        assert_eq!((mnist.train.len(), mnist.test.len()), (5, 3));
        assert_eq!(mnist.train.labels, [0, 1, 2, 3, 4]);
        assert_eq!(mnist.test.images.count, 3);

        let batch = mnist.train.images_f32(&[4, 0]);
        assert_eq!(batch.shape(), [2, 1, 28, 28]);
        let size = 28 * 28;
        let px = &mnist.train.images.pixels;
        assert_eq!(batch[[0, 0, 0, 0]], f32::from(px[4 * size]) / 255.0);
        assert_eq!(batch[[1, 0, 27, 27]], f32::from(px[size - 1]) / 255.0);
        assert!(batch.iter().all(|&v| (0.0..=1.0).contains(&v)));
        assert_eq!(mnist.train.labels_of(&[4, 0, 2]), [4, 0, 2]);

        let head = mnist.train.take(2);
        assert_eq!(head.len(), 2);
        assert_eq!(head.images.pixels, px[..2 * size]);
        assert_eq!(mnist.train.take(100), mnist.train);
    }

    #[test]
    fn wrong_image_label_count() {
        let mnist = tiny_mnist(3, 2);
        let labels = write(&mnist, TRAIN_LABELS, &labels_bytes(&[1, 2]));
        let msg = err_text(Mnist::load(mnist.path()));
        assert!(msg.starts_with(&labels.display().to_string()), "{msg}");
        assert!(
            msg.contains("field \"count\": expected 3 (the image count of"),
            "{msg}"
        );
        assert!(msg.ends_with("found 2"), "{msg}");
    }

    #[test]
    fn mnist_requires_28_by_28() {
        let mnist = tiny_mnist(1, 1);
        let path = write(
            &mnist,
            TRAIN_IMAGES,
            &images_bytes(1, 27, 28, &ramp(27 * 28)),
        );
        let msg = err_text(Mnist::load(mnist.path()));
        assert!(msg.starts_with(&path.display().to_string()), "{msg}");
        assert!(
            msg.ends_with("field \"rows\": expected 28, found 27"),
            "{msg}"
        );
    }

    #[test]
    fn resolve_dir_with_an_explicit_dir_lacking_files_is_an_error() {
        let empty = TempDir::new().unwrap();
        let msg = err_text(resolve_dir(Some(empty.path())));
        assert!(msg.contains(&empty.path().display().to_string()), "{msg}");
        assert!(msg.contains("from --data-dir"), "{msg}");
        assert!(msg.contains("missing train-images-idx3-ubyte"), "{msg}");
        assert!(msg.contains("run `./data-fetch.sh`"), "{msg}");

        let msg = err_text(resolve_dir(Some(&empty.path().join("absent"))));
        assert!(
            msg.contains("absent: from --data-dir; does not exist"),
            "{msg}"
        );
    }

    #[test]
    fn resolve_dir_picks_explicit_then_env_then_default_without_fallback() {
        let good = tiny_mnist(1, 1);
        let empty = TempDir::new().unwrap();
        let env = |p: &Path| Some(p.as_os_str().to_owned());
        // An explicit dir wins over MNIST_DIR and the default.
        let dir = resolve_from(Some(good.path()), env(empty.path()), empty.path()).unwrap();
        assert_eq!(dir, good.path());
        // MNIST_DIR wins over the default.
        let dir = resolve_from(None, env(good.path()), empty.path()).unwrap();
        assert_eq!(dir, good.path());
        // An empty MNIST_DIR counts as unset.
        let dir = resolve_from(None, Some(OsString::new()), good.path()).unwrap();
        assert_eq!(dir, good.path());
        // A given dir lacking the files is an error, even when the default would do.
        let msg = err_text(resolve_from(Some(empty.path()), None, good.path()));
        assert!(msg.contains("from --data-dir"), "{msg}");
        let msg = err_text(resolve_from(None, env(empty.path()), good.path()));
        assert!(msg.contains(&empty.path().display().to_string()), "{msg}");
        assert!(msg.contains("from MNIST_DIR"), "{msg}");
        let msg = err_text(resolve_from(None, None, empty.path()));
        assert!(msg.contains("the default"), "{msg}");
    }

    #[test]
    fn epoch_order_is_a_seeded_permutation() {
        let order = epoch_order(1000, 7);
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..1000).collect::<Vec<_>>());
        assert_eq!(order, epoch_order(1000, 7));
        assert_ne!(order, epoch_order(1000, 8));
        assert_ne!(order, sorted);
        assert!(epoch_order(0, 1).is_empty());
    }

    #[test]
    fn gzip_is_inflated_no_further_than_its_header_promises() {
        let dir = TempDir::new().unwrap();
        // A bomb: the header promises 2 labels, the stream inflates to 50 MB of zeros.
        let mut bomb = labels_bytes(&[1, 2]);
        bomb.resize(50 << 20, 0);
        let path = write(&dir, "bomb.gz", &gzip(&bomb));
        let start = std::time::Instant::now();
        let msg = err_text(read_labels(&path));
        assert!(start.elapsed().as_secs_f64() < 1.0, "{:?}", start.elapsed());
        assert!(
            msg.contains("bomb.gz: trailing bytes: header says 2 labels (10 bytes)"),
            "{msg}"
        );
        assert!(
            msg.ends_with("decompressed file has more than 10 bytes (reading stopped there)"),
            "{msg}"
        );
        // One byte too many is found just the same.
        let mut bytes = images_bytes(1, 1, 2, &[7, 8]);
        bytes.push(9);
        let path = write(&dir, "imgs.gz", &gzip(&bytes));
        let msg = err_text(read_images(&path));
        assert!(msg.contains("imgs.gz: trailing bytes"), "{msg}");
        assert!(msg.contains("more than 18 bytes"), "{msg}");
    }

    #[test]
    fn a_promise_beyond_the_available_memory_is_refused_before_inflating() {
        if machine_memory().is_none() {
            return; // no memory figure, no check
        }
        let dir = TempDir::new().unwrap();
        let max = u32::MAX;
        let path = write(
            &dir,
            "huge.gz",
            &gzip(&images_bytes(max, max, max, &[0; 64])),
        );
        let msg = err_text(read_images(&path));
        let promised = 16 + u128::from(max).pow(3);
        assert!(msg.starts_with(&path.display().to_string()), "{msg}");
        assert!(
            msg.contains(&format!("too large: header says {max} images")),
            "{msg}"
        );
        assert!(
            msg.contains(&format!("({promised} bytes of decompressed data)")),
            "{msg}"
        );
        assert!(msg.contains("bytes of memory available"), "{msg}");
        // A plain file's promise is checked against its length first.
        let path = write(&dir, "huge", &labels_bytes(&[]));
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[4..8].copy_from_slice(&max.to_be_bytes());
        std::fs::write(&path, &bytes).unwrap();
        let msg = err_text(read_labels(&path));
        assert!(
            msg.contains("huge: truncated: header says 4294967295 labels"),
            "{msg}"
        );
    }

    /// Each kind of path that is not a regular file, by name: what the IDX readers and
    /// `Mnist::load` say of it.
    #[cfg(unix)]
    #[test]
    fn paths_that_are_not_files_are_named_as_what_they_are() {
        let dir = TempDir::new().unwrap();
        let absent = dir.path().join("absent");
        let msg = err_text(read_images(&absent));
        assert!(
            msg.ends_with("absent: cannot read: does not exist"),
            "{msg}"
        );

        let folder = dir.path().join(TRAIN_IMAGES);
        std::fs::create_dir(&folder).unwrap();
        let msg = err_text(read_images(&folder));
        assert!(
            msg.ends_with(&format!(
                "{TRAIN_IMAGES}: cannot read: is a directory, not a file"
            )),
            "{msg}"
        );

        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::os::unix::fs::symlink(&a, &b).unwrap();
        std::os::unix::fs::symlink(&b, &a).unwrap();
        let msg = err_text(read_labels(&a));
        assert!(
            msg.contains("a: cannot read: is a symbolic link loop"),
            "{msg}"
        );

        #[cfg(target_os = "linux")]
        for msg in [
            err_text(read_images(Path::new("/dev/zero"))),
            err_text(read_labels(Path::new("/dev/zero"))),
        ] {
            assert!(
                msg.ends_with("/dev/zero: cannot read: is a character device, not a regular file"),
                "{msg}"
            );
        }

        let fifo = dir.path().join("fifo");
        if mkfifo(&fifo) {
            // Opening a FIFO blocks until a writer comes: this would hang if it were opened.
            let msg = err_text(read_labels(&fifo));
            assert!(
                msg.ends_with("fifo: cannot read: is a named pipe (FIFO), not a regular file"),
                "{msg}"
            );
        }

        let file = write(&dir, "file", b"");
        let msg = err_text(Mnist::load(&file));
        assert!(msg.contains("file: is a file, not a directory"), "{msg}");
    }

    /// Makes a FIFO at `path`; false (the test skips that part) where `mkfifo` is missing.
    #[cfg(unix)]
    fn mkfifo(path: &Path) -> bool {
        let made = std::process::Command::new("mkfifo").arg(path).status();
        made.is_ok_and(|s| s.success())
    }

    #[cfg(unix)]
    #[test]
    fn a_mnist_file_replaced_by_a_folder_or_fifo_is_named_not_missing() {
        let mnist = tiny_mnist(1, 1);
        let images = mnist.path().join(TRAIN_IMAGES);
        std::fs::remove_file(&images).unwrap();
        std::fs::create_dir(&images).unwrap();
        let msg = err_text(Mnist::load(mnist.path()));
        assert!(
            msg.contains(&format!("{}: is a directory, not a file", images.display())),
            "{msg}"
        );
        assert!(!msg.contains("missing"), "{msg}");
        let msg = err_text(resolve_dir(Some(mnist.path())));
        assert!(msg.contains("is a directory, not a file"), "{msg}");

        let labels = mnist.path().join(format!("{TEST_LABELS}.gz"));
        std::fs::remove_file(&labels).unwrap();
        if mkfifo(&labels) {
            let msg = err_text(Mnist::load(mnist.path()));
            assert!(
                msg.contains(&format!("{}: is a named pipe (FIFO)", labels.display())),
                "{msg}"
            );
        }
        // A regular file beside the folder is still found.
        write(
            &mnist,
            &format!("{TRAIN_IMAGES}.gz"),
            &gzip(&images_bytes(1, 28, 28, &ramp(784))),
        );
        assert_eq!(
            find_file(mnist.path(), TRAIN_IMAGES),
            Some(mnist.path().join(format!("{TRAIN_IMAGES}.gz")))
        );
    }

    #[test]
    #[ignore = "needs MNIST (./data-fetch.sh or MNIST_DIR)"]
    fn real_mnist() {
        let dir = mnist_for_tests();
        let mnist = Mnist::load(&dir).unwrap_or_else(|e| panic!("{e}"));
        for (split, n) in [(&mnist.train, 60_000), (&mnist.test, 10_000)] {
            assert_eq!(split.len(), n);
            assert_eq!(split.images.count, n);
            assert_eq!((split.images.rows, split.images.cols), (28, 28));
            assert!(split.labels.iter().all(|&l| l <= 9));
            // Every digit occurs, at least 8% of the time.
            for digit in 0..10 {
                let k = split.labels.iter().filter(|&&l| l == digit).count();
                assert!(k * 100 > n * 8, "digit {digit}: {k} of {n}");
            }
            let indices: Vec<usize> = (0..n).step_by(97).collect();
            let batch = split.images_f32(&indices);
            assert_eq!(batch.shape(), [indices.len(), 1, 28, 28]);
            assert!(batch.iter().all(|&v| (0.0..=1.0).contains(&v)));
            assert!(batch.iter().any(|&v| v == 1.0) && batch.iter().any(|&v| v == 0.0));
        }
        // The well-known first labels of each split.
        assert_eq!(mnist.train.labels[..5], [5, 0, 4, 1, 9]);
        assert_eq!(mnist.test.labels[..5], [7, 2, 1, 0, 4]);
    }
}
