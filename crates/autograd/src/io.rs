//! Named tensors and parameters saved and loaded as safetensors, the format PyTorch
//! users open with `safetensors.torch.load_file`.
//!
//! Files are written atomically (a temporary file in the same folder, then a rename), so
//! a crash leaves either the old file or the new one, never half of one.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use ndarray::IxDyn;
use safetensors::{Dtype, SafeTensors, tensor::TensorView};

use crate::{Parameter, Tensor};

/// What went wrong reading or writing a safetensors file; every variant names the file.
#[derive(Debug)]
pub enum IoError {
    /// The file could not be read or written.
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The file is not valid safetensors.
    Format {
        /// The file.
        path: PathBuf,
        /// What the parser found wrong.
        message: String,
    },
    /// A tensor is stored with a dtype other than F32.
    Dtype {
        /// The file.
        path: PathBuf,
        /// The tensor.
        name: String,
        /// The dtype found.
        found: String,
    },
    /// Parameters the model has but the file lacks.
    Missing {
        /// The file.
        path: PathBuf,
        /// The missing names.
        names: Vec<String>,
    },
    /// Two tensors to be written under one name (a file holds each name once).
    Duplicate {
        /// The file.
        path: PathBuf,
        /// The names given more than once.
        names: Vec<String>,
    },
    /// Tensors the file has but the model does not.
    Unexpected {
        /// The file.
        path: PathBuf,
        /// The names the model lacks.
        names: Vec<String>,
    },
    /// A tensor whose shape differs from the parameter's.
    Shape {
        /// The file.
        path: PathBuf,
        /// The tensor.
        name: String,
        /// The parameter's shape.
        expected: Vec<usize>,
        /// The file's shape.
        found: Vec<usize>,
    },
}

impl fmt::Display for IoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IoError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            IoError::Format { path, message } => {
                write!(
                    f,
                    "{}: not a valid safetensors file: {message}",
                    path.display()
                )
            }
            IoError::Dtype { path, name, found } => write!(
                f,
                "{}: tensor `{name}`: expected dtype F32, found {found}",
                path.display()
            ),
            IoError::Missing { path, names } => write!(
                f,
                "{}: missing tensors the model needs: {}",
                path.display(),
                names.join(", ")
            ),
            IoError::Duplicate { path, names } => write!(
                f,
                "{}: tensors named more than once: {}; give each parameter its own name",
                path.display(),
                names.join(", ")
            ),
            IoError::Unexpected { path, names } => write!(
                f,
                "{}: tensors the model does not have: {}",
                path.display(),
                names.join(", ")
            ),
            IoError::Shape {
                path,
                name,
                expected,
                found,
            } => write!(
                f,
                "{}: tensor `{name}`: expected shape {expected:?}, found {found:?}",
                path.display()
            ),
        }
    }
}

impl std::error::Error for IoError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            IoError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The tensors of a file, by name, and its string metadata.
#[derive(Debug, Default)]
pub struct TensorFile {
    /// Tensors by name.
    pub tensors: BTreeMap<String, Tensor>,
    /// The header's `__metadata__`.
    pub metadata: HashMap<String, String>,
}

impl TensorFile {
    /// The named tensor, or an error naming the file and the tensor.
    pub fn get(&self, path: &Path, name: &str) -> Result<&Tensor, IoError> {
        self.tensors.get(name).ok_or_else(|| IoError::Missing {
            path: path.to_path_buf(),
            names: vec![name.to_string()],
        })
    }
}

/// An error naming the names that occur more than once, if any.
fn refuse_duplicates<'a>(path: &Path, names: impl Iterator<Item = &'a str>) -> Result<(), IoError> {
    let mut seen = std::collections::BTreeSet::new();
    let twice: std::collections::BTreeSet<&str> = names.filter(|n| !seen.insert(*n)).collect();
    if twice.is_empty() {
        return Ok(());
    }
    Err(IoError::Duplicate {
        path: path.to_path_buf(),
        names: twice.into_iter().map(String::from).collect(),
    })
}

/// Writes named tensors (and optional string metadata) atomically.
pub fn save_tensors<'a>(
    path: impl AsRef<Path>,
    tensors: impl IntoIterator<Item = (String, &'a Tensor)>,
    metadata: Option<HashMap<String, String>>,
) -> Result<(), IoError> {
    let path = path.as_ref();
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .into_iter()
        .map(|(name, t)| {
            let data = t.iter().flat_map(|v| v.to_le_bytes()).collect();
            (name, t.shape().to_vec(), data)
        })
        .collect();
    refuse_duplicates(path, bytes.iter().map(|(name, _, _)| name.as_str()))?;
    let views = bytes
        .iter()
        .map(|(name, shape, data)| {
            TensorView::new(Dtype::F32, shape.clone(), data).map(|v| (name.as_str(), v))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format_err(path, e))?;
    let buffer = safetensors::serialize(views, metadata).map_err(|e| format_err(path, e))?;
    write_atomically(path, &buffer)
}

/// Reads every tensor of a file (all must be F32) and its metadata.
///
/// The path must be a regular file ([`regular_file`]): a FIFO is never opened (that would
/// hang) and a device like `/dev/zero` is never read.
pub fn load_tensors(path: impl AsRef<Path>) -> Result<TensorFile, IoError> {
    let path = path.as_ref();
    let io = |source| IoError::Io {
        path: path.to_path_buf(),
        source,
    };
    regular_file(path).map_err(io)?;
    let buffer = std::fs::read(path).map_err(io)?;
    let (_, header) = SafeTensors::read_metadata(&buffer).map_err(|e| format_err(path, e))?;
    let st = SafeTensors::deserialize(&buffer).map_err(|e| format_err(path, e))?;
    let mut file = TensorFile {
        metadata: header.metadata().clone().unwrap_or_default(),
        ..TensorFile::default()
    };
    for (name, view) in st.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(IoError::Dtype {
                path: path.to_path_buf(),
                name,
                found: format!("{:?}", view.dtype()),
            });
        }
        let data: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let t =
            Tensor::from_shape_vec(IxDyn(view.shape()), data).map_err(|e| format_err(path, e))?;
        file.tensors.insert(name, t);
    }
    Ok(file)
}

/// Saves parameters under their names ([`Parameter::name`]), atomically. Two of one
/// name are an error ([`IoError::Duplicate`]).
pub fn save(
    path: impl AsRef<Path>,
    params: &[Parameter],
    metadata: Option<HashMap<String, String>>,
) -> Result<(), IoError> {
    let values: Vec<_> = params.iter().map(|p| (p.name(), p.value())).collect();
    save_tensors(
        path,
        values.iter().map(|(n, v)| (n.to_string(), &**v)),
        metadata,
    )
}

/// Loads parameters by name. Strict: a parameter missing from the file, a tensor the
/// model lacks, a shape mismatch or two parameters of one name is an error, and then no
/// parameter is changed. Returns the file's metadata.
pub fn load(
    path: impl AsRef<Path>,
    params: &[Parameter],
) -> Result<HashMap<String, String>, IoError> {
    let path = path.as_ref();
    refuse_duplicates(path, params.iter().map(Parameter::name))?;
    let mut file = load_tensors(path)?;
    let missing: Vec<String> = params
        .iter()
        .filter(|p| !file.tensors.contains_key(p.name()))
        .map(|p| p.name().to_string())
        .collect();
    if !missing.is_empty() {
        return Err(IoError::Missing {
            path: path.to_path_buf(),
            names: missing,
        });
    }
    let extra: Vec<String> = file
        .tensors
        .keys()
        .filter(|k| !params.iter().any(|p| p.name() == k.as_str()))
        .cloned()
        .collect();
    if !extra.is_empty() {
        return Err(IoError::Unexpected {
            path: path.to_path_buf(),
            names: extra,
        });
    }
    for p in params {
        let found = file.tensors[p.name()].shape().to_vec();
        if found != p.shape() {
            return Err(IoError::Shape {
                path: path.to_path_buf(),
                name: p.name().to_string(),
                expected: p.shape(),
                found,
            });
        }
    }
    for p in params {
        p.set_value(file.tensors.remove(p.name()).expect("checked above"));
    }
    Ok(file.metadata)
}

/// The length of `path` if it is a regular file (symbolic links followed), else an error
/// saying what it is instead: "does not exist", "is a directory, not a file", "is a named
/// pipe (FIFO), not a regular file", a symbolic link loop, "permission denied", ….
///
/// Only `stat`s the path, never opens it: opening a FIFO blocks until a writer comes, and
/// a device such as `/dev/zero` reads forever. The message leaves the path to the caller,
/// which writes `<path>: <message>`.
pub fn regular_file(path: &Path) -> std::io::Result<u64> {
    use std::io::{Error, ErrorKind};
    let meta = std::fs::metadata(path).map_err(describe_stat_error)?;
    let kind = meta.file_type();
    if kind.is_file() {
        return Ok(meta.len());
    }
    if kind.is_dir() {
        return Err(Error::new(
            ErrorKind::IsADirectory,
            "is a directory, not a file",
        ));
    }
    let what = special_file_kind(&kind).unwrap_or("is not a regular file");
    Err(Error::new(ErrorKind::InvalidInput, what))
}

/// What a file that is neither a regular file nor a directory is, on Unix.
#[cfg(unix)]
fn special_file_kind(kind: &std::fs::FileType) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    [
        (kind.is_fifo(), "is a named pipe (FIFO), not a regular file"),
        (
            kind.is_char_device(),
            "is a character device, not a regular file",
        ),
        (
            kind.is_block_device(),
            "is a block device, not a regular file",
        ),
        (kind.is_socket(), "is a socket, not a regular file"),
    ]
    .into_iter()
    .find_map(|(is, what)| is.then_some(what))
}

#[cfg(not(unix))]
fn special_file_kind(_: &std::fs::FileType) -> Option<&'static str> {
    None
}

/// `stat`'s error in words, keeping its kind; errors without a plainer wording are kept.
fn describe_stat_error(e: std::io::Error) -> std::io::Error {
    use std::io::{Error, ErrorKind};
    /// ELOOP on Linux: too many levels of symbolic links.
    const ELOOP: i32 = 40;
    let what = match e.kind() {
        ErrorKind::NotFound => "does not exist",
        ErrorKind::PermissionDenied => "permission denied",
        ErrorKind::NotADirectory => "a component of the path is not a directory",
        _ if cfg!(target_os = "linux") && e.raw_os_error() == Some(ELOOP) => {
            "is a symbolic link loop (too many levels of symbolic links)"
        }
        _ => return e,
    };
    Error::new(e.kind(), what)
}

fn format_err(path: &Path, e: impl fmt::Display) -> IoError {
    IoError::Format {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// What names [`write_atomically`]'s temporary files: `.<name>.tmp<pid>`.
const TMP_TAG: &str = ".tmp";

/// Whether `name` is one of [`write_atomically`]'s temporary files.
fn is_temporary(name: &str) -> bool {
    name.starts_with('.')
        && name.rsplit_once(TMP_TAG).is_some_and(|(stem, pid)| {
            stem.len() > 1 && !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit())
        })
}

/// Removes the temporary files that [`write_atomically`] leaves in `dir` when its process
/// is killed mid-write; returns how many. Call it only while no other process writes
/// into `dir` (e.g. under a lock on the folder).
pub fn remove_stale_temporaries(dir: &Path) -> std::io::Result<usize> {
    let mut removed = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_str().is_some_and(is_temporary) && entry.file_type()?.is_file() {
            std::fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Writes `bytes` to a temporary file beside `path`, syncs it, renames it over `path` and
/// syncs the folder.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), IoError> {
    write_atomically_with(path, |tmp| {
        let mut f = std::fs::File::create(tmp)?;
        f.write_all(bytes)
    })
}

/// Lets `write` make a file at a temporary path beside `path` (for writers that open the
/// file themselves, such as HDF5), then syncs it, renames it over `path` and syncs the
/// folder; the temporary file is removed if anything fails.
pub fn write_atomically_with(
    path: &Path,
    write: impl FnOnce(&Path) -> std::io::Result<()>,
) -> Result<(), IoError> {
    let io = |source| IoError::Io {
        path: path.to_path_buf(),
        source,
    };
    let name = path.file_name().ok_or_else(|| {
        io(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a file path",
        ))
    })?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!("{TMP_TAG}{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let result = (|| {
        write(&tmp)?;
        std::fs::OpenOptions::new()
            .write(true)
            .open(&tmp)?
            .sync_all()?;
        std::fs::rename(&tmp, path)?;
        // The rename itself survives a power cut once the folder is synced.
        #[cfg(unix)]
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param(name: &str, shape: &[usize]) -> Parameter {
        let n: usize = shape.iter().product();
        let data = (0..n).map(|i| i as f32 * 0.5 - 1.0).collect();
        Parameter::new(name, Tensor::from_shape_vec(IxDyn(shape), data).unwrap())
    }

    fn tmp_path(tag: &str) -> PathBuf {
        std::env::temp_dir().join(format!(
            "autograd-io-{tag}-{}.safetensors",
            std::process::id()
        ))
    }

    #[test]
    fn round_trip_with_metadata() {
        let path = tmp_path("roundtrip");
        let a = param("enc.w", &[3, 2]);
        let b = param("dec.b", &[4]);
        let meta = HashMap::from([("step".to_string(), "7".to_string())]);
        save(&path, &[a.clone(), b.clone()], Some(meta)).unwrap();
        let a2 = Parameter::new("enc.w", Tensor::zeros(IxDyn(&[3, 2])));
        let b2 = Parameter::new("dec.b", Tensor::zeros(IxDyn(&[4])));
        let meta = load(&path, &[a2.clone(), b2.clone()]).unwrap();
        assert_eq!(meta["step"], "7");
        assert_eq!(*a2.value(), *a.value());
        assert_eq!(*b2.value(), *b.value());
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn two_parameters_of_one_name_are_an_error_not_a_panic() {
        let path = tmp_path("duplicate");
        let err = save(
            &path,
            &[param("w", &[2]), param("b", &[1]), param("w", &[3])],
            None,
        )
        .unwrap_err();
        assert!(
            matches!(&err, IoError::Duplicate { names, .. } if names == &["w"]),
            "{err}"
        );
        assert!(err.to_string().contains("named more than once: w"), "{err}");
        assert!(!path.exists(), "nothing is written");
    }

    #[test]
    fn renamed_handles_save_and_load_under_their_names() {
        let path = tmp_path("named");
        let w = param("weight", &[2, 3]);
        save(&path, &[w.renamed("encoder.fc.weight")], None).unwrap();
        assert!(
            load_tensors(&path)
                .unwrap()
                .tensors
                .contains_key("encoder.fc.weight")
        );
        let back = Parameter::new("weight", Tensor::zeros(IxDyn(&[2, 3])));
        load(&path, &[back.renamed("encoder.fc.weight")]).unwrap();
        assert_eq!(*back.value(), *w.value());
        let twice = [back.renamed("a"), back.renamed("a")];
        let err = load(&path, &twice).unwrap_err();
        assert!(
            matches!(&err, IoError::Duplicate { names, .. } if names == &["a"]),
            "{err}"
        );
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn strict_load_names_what_is_wrong() {
        let path = tmp_path("strict");
        save(&path, &[param("w", &[2, 2]), param("extra", &[1])], None).unwrap();

        let err = load(&path, &[param("w", &[2, 2]), param("b", &[2])]).unwrap_err();
        assert!(
            matches!(&err, IoError::Missing { names, .. } if names == &["b"]),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains("missing tensors the model needs: b")
        );

        let err = load(&path, &[param("w", &[2, 2])]).unwrap_err();
        assert!(
            err.to_string()
                .contains("tensors the model does not have: extra"),
            "{err}"
        );

        let w = param("w", &[4]);
        let before = w.value();
        let err = load(&path, &[w.clone(), param("extra", &[1])]).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("`w`") && msg.contains("[4]") && msg.contains("[2, 2]"),
            "{msg}"
        );
        assert_eq!(*w.value(), *before, "a failed load changes nothing");
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn temporaries_left_by_a_killed_writer_are_removed() {
        let dir = std::env::temp_dir().join(format!("autograd-io-tmp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for name in [
            ".checkpoint.safetensors.tmp4242",
            ".eval.json.tmp1",
            "keep.tmp12",
            ".keep.tmp",
            ".keep.tmpx1",
            "checkpoint.safetensors",
        ] {
            std::fs::write(dir.join(name), b"x").unwrap();
        }
        assert_eq!(remove_stale_temporaries(&dir).unwrap(), 2);
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                ".keep.tmp",
                ".keep.tmpx1",
                "checkpoint.safetensors",
                "keep.tmp12"
            ]
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn corrupt_and_missing_files_are_errors() {
        let path = tmp_path("corrupt");
        std::fs::write(&path, b"not safetensors").unwrap();
        let err = load_tensors(&path).unwrap_err();
        assert!(matches!(err, IoError::Format { .. }), "{err}");
        assert!(err.to_string().contains(&*path.to_string_lossy()));
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(
            load_tensors(&path).unwrap_err(),
            IoError::Io { .. }
        ));
    }

    /// A fresh empty folder for one test.
    fn tmp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("autograd-io-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// `load_tensors`'s message for `path`, which must name the path and `what`.
    fn assert_load_says(path: &Path, what: &str) {
        let msg = load_tensors(path).unwrap_err().to_string();
        assert!(
            msg.starts_with(&format!("{}: ", path.display())) && msg.contains(what),
            "{msg}"
        );
    }

    #[test]
    fn regular_file_says_what_a_path_is_instead() {
        use std::io::ErrorKind;
        let dir = tmp_dir("kinds");
        let file = dir.join("file");
        std::fs::write(&file, b"12345").unwrap();
        assert_eq!(regular_file(&file).unwrap(), 5);

        let err = regular_file(&dir.join("absent")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert_eq!(err.to_string(), "does not exist");
        assert_load_says(&dir.join("absent"), "does not exist");

        let err = regular_file(&dir).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::IsADirectory);
        assert_eq!(err.to_string(), "is a directory, not a file");
        assert_load_says(&dir, "is a directory, not a file");

        let err = regular_file(&file.join("below")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotADirectory);

        #[cfg(unix)]
        {
            let (a, b) = (dir.join("loop-a"), dir.join("loop-b"));
            std::os::unix::fs::symlink(&a, &b).unwrap();
            std::os::unix::fs::symlink(&b, &a).unwrap();
            let msg = regular_file(&a).unwrap_err().to_string();
            assert!(msg.contains("symbolic link"), "{msg}");
            if cfg!(target_os = "linux") {
                assert_load_says(&a, "is a symbolic link loop");
            }

            let link = dir.join("link");
            std::os::unix::fs::symlink(&file, &link).unwrap();
            assert_eq!(regular_file(&link).unwrap(), 5, "links are followed");
        }

        #[cfg(target_os = "linux")]
        {
            let err = regular_file(Path::new("/dev/zero")).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput);
            assert_eq!(err.to_string(), "is a character device, not a regular file");
            assert_load_says(Path::new("/dev/zero"), "is a character device");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// A FIFO is reported, and never opened: opening one blocks until a writer comes, so
    /// this test would hang if `load_tensors` opened it.
    #[cfg(unix)]
    #[test]
    fn a_fifo_is_never_opened() {
        let dir = tmp_dir("fifo");
        let fifo = dir.join("weights.safetensors");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if !made.is_ok_and(|s| s.success()) {
            eprintln!("skipped: mkfifo is not available");
            return;
        }
        let err = regular_file(&fifo).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        assert_eq!(
            err.to_string(),
            "is a named pipe (FIFO), not a regular file"
        );
        assert_load_says(&fifo, "is a named pipe (FIFO)");
        let params = [param("w", &[1])];
        let msg = load(&fifo, &params).unwrap_err().to_string();
        assert!(msg.contains("named pipe"), "{msg}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
