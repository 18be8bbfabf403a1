//! Hostile safetensors files: random bytes and mutated valid files never panic, abort or
//! hang `load_tensors` / `load`, and every error names the file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use autograd::io::{IoError, load, load_tensors};
use autograd::{Parameter, Tensor};
use ndarray::IxDyn;
use proptest::prelude::*;
use safetensors::{Dtype, tensor::TensorView};

/// A file path of its own for each test (the tests run in parallel, each case in turn).
fn case_path(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("autograd-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(format!("{tag}.safetensors"))
}

/// A valid file's bytes: F32 tensors `t0`, `t1`, … of the given shapes, and metadata.
fn valid_file(shapes: &[Vec<usize>]) -> Vec<u8> {
    let data: Vec<Vec<u8>> = shapes
        .iter()
        .map(|shape| {
            let n: usize = shape.iter().product();
            (0..n)
                .flat_map(|k| (k as f32 - 1.5).to_le_bytes())
                .collect()
        })
        .collect();
    let views = shapes
        .iter()
        .zip(&data)
        .enumerate()
        .map(|(i, (shape, data))| {
            let view = TensorView::new(Dtype::F32, shape.clone(), data).unwrap();
            (format!("t{i}"), view)
        });
    let meta = HashMap::from([("step".to_string(), "3".to_string())]);
    safetensors::serialize(views, Some(meta)).unwrap()
}

/// Parameters shaped like `valid_file(shapes)`'s tensors.
fn params(shapes: &[Vec<usize>]) -> Vec<Parameter> {
    shapes
        .iter()
        .enumerate()
        .map(|(i, s)| Parameter::new(format!("t{i}"), Tensor::zeros(IxDyn(s))))
        .collect()
}

/// Loads `bytes` from `path` both ways; any error must name the file.
fn check(path: &Path, bytes: &[u8], params: &[Parameter]) -> Result<(), TestCaseError> {
    std::fs::write(path, bytes).unwrap();
    let shown = path.display().to_string();
    if let Err(e) = load_tensors(path) {
        let msg = e.to_string();
        prop_assert!(msg.starts_with(&format!("{shown}: ")), "{}", msg);
    }
    if let Err(e) = load(path, params) {
        let msg = e.to_string();
        prop_assert!(msg.starts_with(&format!("{shown}: ")), "{}", msg);
    }
    Ok(())
}

fn shapes() -> impl Strategy<Value = Vec<Vec<usize>>> {
    prop::collection::vec(prop::collection::vec(0usize..5, 0..4), 1..4)
}

/// A header of one tensor with the given fields, then `data_len` bytes of data.
fn handmade(dtype: &str, shape: &[u64], offsets: [u64; 2], data_len: usize) -> Vec<u8> {
    let header = format!(
        r#"{{"t0":{{"dtype":"{dtype}","shape":{shape:?},"data_offsets":[{},{}]}}}}"#,
        offsets[0], offsets[1]
    );
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend(header.as_bytes());
    bytes.resize(bytes.len() + data_len, 0x3f);
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 200,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        check(&case_path("random"), &bytes, &params(&[vec![2]]))?;
    }

    #[test]
    fn flipped_bytes(shapes in shapes(), flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..), 1..4)) {
        let mut bytes = valid_file(&shapes);
        for (at, x) in flips {
            let i = at.index(bytes.len());
            bytes[i] ^= x;
        }
        check(&case_path("flipped"), &bytes, &params(&shapes))?;
    }

    #[test]
    fn truncated_or_extended(shapes in shapes(), cut in any::<prop::sample::Index>(), extra in prop::collection::vec(any::<u8>(), 0..16)) {
        let mut bytes = valid_file(&shapes);
        let keep = cut.index(bytes.len() + 1);
        bytes.truncate(keep);
        bytes.extend(extra);
        check(&case_path("cut"), &bytes, &params(&shapes))?;
    }

    #[test]
    fn header_length_prefix(shapes in shapes(), prefix in prop_oneof![any::<u64>(), u64::MAX - 16.., 0u64..200]) {
        let mut bytes = valid_file(&shapes);
        bytes[..8].copy_from_slice(&prefix.to_le_bytes());
        check(&case_path("prefix"), &bytes, &params(&shapes))?;
    }

    #[test]
    fn shape_offset_and_dtype_mismatches(
        dtype in prop::sample::select(vec!["F32", "F64", "F16", "BF16", "I32", "U8", "BOOL", "F8_E4M3", "nonsense"]),
        shape in prop::collection::vec(prop_oneof![0u64..6, Just(u64::MAX), Just(1 << 32), any::<u64>()], 0..4),
        offsets in prop_oneof![
            (0u64..64, 0u64..64).prop_map(|(a, b)| [a, b]),
            any::<[u64; 2]>(),
        ],
        data_len in 0usize..64,
    ) {
        let bytes = handmade(dtype, &shape, offsets, data_len);
        check(&case_path("handmade"), &bytes, &params(&[vec![2]]))?;
    }
}

#[test]
fn the_valid_file_loads() {
    let shapes = [vec![2, 3], vec![], vec![0, 4]];
    let path = case_path("valid");
    std::fs::write(&path, valid_file(&shapes)).unwrap();
    let params = params(&shapes);
    assert_eq!(load(&path, &params).unwrap()["step"], "3");
    assert_eq!(params[0].value()[[1, 2]], 3.5);
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn other_dtypes_are_named() {
    let path = case_path("dtype");
    for dtype in [Dtype::F64, Dtype::I32, Dtype::BF16, Dtype::U8] {
        let data = vec![0u8; 4 * dtype.bitsize() / 8];
        let view = TensorView::new(dtype, vec![2, 2], &data).unwrap();
        let bytes = safetensors::serialize([("w", view)], None).unwrap();
        std::fs::write(&path, bytes).unwrap();
        let err = load_tensors(&path).unwrap_err();
        assert!(matches!(err, IoError::Dtype { .. }), "{err}");
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!(
                "{}: tensor `w`: expected dtype F32",
                path.display()
            )),
            "{msg}"
        );
        assert!(msg.ends_with(&format!("found {dtype:?}")), "{msg}");
    }
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn a_huge_header_length_is_an_error_not_an_allocation() {
    let path = case_path("huge-prefix");
    let mut bytes = valid_file(&[vec![3]]);
    bytes[..8].copy_from_slice(&(u64::MAX - 7).to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    let err = load_tensors(&path).unwrap_err();
    assert!(matches!(err, IoError::Format { .. }), "{err}");
    assert!(err.to_string().starts_with(&path.display().to_string()));
    std::fs::remove_file(&path).unwrap();
}
