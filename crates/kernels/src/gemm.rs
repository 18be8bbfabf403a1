//! Single-precision general matrix multiply, `C ← α·A·B + β·C`, over strided slices.
//!
//! The heavy lifting is `matrixmultiply::sgemm` (packed panels, SIMD micro-kernels) with its
//! own threading left off; this module adds bounds-checked slice entry points and, for
//! large products, splits C into row blocks across rayon threads. Kernels that already run
//! inside a parallel loop (convolution over batch chunks) call [`sgemm_serial`] so that
//! threads never nest.

use rayon::prelude::*;

/// Products smaller than this many multiply-adds run on one thread: below it, rayon's
/// fork/join and the per-block repacking of B cost more than a second core saves.
const PAR_MIN_MACS: usize = 1 << 21;

/// Fewest rows of C one parallel block may hold; matrixmultiply packs A in panels of 64
/// rows, so thinner blocks waste most of a panel.
const PAR_MIN_ROWS: usize = 64;

/// `C ← α·A·B + β·C` for an `m×k` matrix A, a `k×n` matrix B and an `m×n` matrix C.
///
/// Element `(i, j)` of A is `a[i·rsa + j·csa]` (row and column strides in elements), and
/// likewise for B and C, so a transposed operand is the same slice with its strides
/// swapped. Strides must be non-negative along any dimension longer than one, every
/// element must lie inside its slice, and C's rows (or columns) must not overlap.
///
/// As in BLAS, `β = 0` means C is write-only: its old contents, even NaN, are ignored.
/// `k = 0` gives `C ← β·C`; `m = 0` or `n = 0` does nothing.
///
/// When C is row-major (`csc = 1`, rows not overlapping) and the product is large enough to
/// pay, blocks of rows of C run on the rayon pool, each one single-threaded
/// `matrixmultiply` call; otherwise this is [`sgemm_serial`].
///
/// # Panics
/// If an operand's elements do not fit in its slice, a stride is negative, or C's rows and
/// columns overlap.
// The argument list is BLAS's, kept so callers can translate from any BLAS-based code.
#[allow(clippy::too_many_arguments)]
pub fn sgemm(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: &[f32],
    rsa: isize,
    csa: isize,
    b: &[f32],
    rsb: isize,
    csb: isize,
    beta: f32,
    c: &mut [f32],
    rsc: isize,
    csc: isize,
) {
    let blocks =
        if csc == 1 && rsc >= n as isize && m.saturating_mul(k).saturating_mul(n) >= PAR_MIN_MACS {
            rayon::current_num_threads().min(m / PAR_MIN_ROWS)
        } else {
            1
        };
    if blocks <= 1 {
        return sgemm_serial(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc);
    }
    // Check everything up front so a bad call panics here, not inside a worker.
    let c_span = check(
        m,
        k,
        n,
        (a.len(), rsa, csa),
        (b.len(), rsb, csb),
        (c.len(), rsc, csc),
    );
    let rows = m.div_ceil(blocks);
    // With `csc = 1` and `rsc ≥ n`, chunk `i` of `rows·rsc` elements starts at row
    // `i·rows` and holds every element of that block's rows; the last chunk is cut short
    // at the end of C's span, just after its last row's `n` elements.
    c[..c_span]
        .par_chunks_mut(rows * rsc as usize)
        .enumerate()
        .for_each(|(i, c_block)| {
            let r0 = i * rows;
            let a_block = &a[r0 * rsa as usize..];
            let rows = rows.min(m - r0);
            sgemm_serial(
                rows, k, n, alpha, a_block, rsa, csa, b, rsb, csb, beta, c_block, rsc, 1,
            );
        });
}

/// [`sgemm`] on the calling thread only: the GEMM to call from inside a parallel loop.
///
/// Same contract as [`sgemm`].
#[allow(clippy::too_many_arguments)]
pub fn sgemm_serial(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: &[f32],
    rsa: isize,
    csa: isize,
    b: &[f32],
    rsb: isize,
    csb: isize,
    beta: f32,
    c: &mut [f32],
    rsc: isize,
    csc: isize,
) {
    check(
        m,
        k,
        n,
        (a.len(), rsa, csa),
        (b.len(), rsb, csb),
        (c.len(), rsc, csc),
    );
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: `check` has verified that every element matrixmultiply may touch,
    // `(i, j) ↦ i·rs + j·cs` over the stated dimensions, is inside its slice, and that C's
    // elements are distinct, as matrixmultiply requires; A and B are only read and C is
    // exclusively borrowed. With `k = 0` A and B are not read at all.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            alpha,
            a.as_ptr(),
            rsa,
            csa,
            b.as_ptr(),
            rsb,
            csb,
            beta,
            c.as_mut_ptr(),
            rsc,
            csc,
        );
    }
}

/// Reference for [`sgemm`]: the plain triple loop, accumulating each dot product in `f64`.
#[allow(clippy::too_many_arguments)]
pub fn sgemm_ref(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: &[f32],
    rsa: isize,
    csa: isize,
    b: &[f32],
    rsb: isize,
    csb: isize,
    beta: f32,
    c: &mut [f32],
    rsc: isize,
    csc: isize,
) {
    check(
        m,
        k,
        n,
        (a.len(), rsa, csa),
        (b.len(), rsb, csb),
        (c.len(), rsc, csc),
    );
    let at =
        |i: usize, j: usize, rs: isize, cs: isize| (i as isize * rs + j as isize * cs) as usize;
    for i in 0..m {
        for j in 0..n {
            let dot: f64 = (0..k)
                .map(|p| f64::from(a[at(i, p, rsa, csa)]) * f64::from(b[at(p, j, rsb, csb)]))
                .sum();
            let cij = &mut c[at(i, j, rsc, csc)];
            let old = if beta == 0.0 {
                0.0
            } else {
                f64::from(beta) * f64::from(*cij)
            };
            *cij = (f64::from(alpha) * dot + old) as f32;
        }
    }
}

/// Checks the operands of an `m×k` by `k×n` product, each given as (slice length, row
/// stride, column stride), and returns the number of elements C spans.
fn check(
    m: usize,
    k: usize,
    n: usize,
    (a_len, rsa, csa): (usize, isize, isize),
    (b_len, rsb, csb): (usize, isize, isize),
    (c_len, rsc, csc): (usize, isize, isize),
) -> usize {
    span("A", m, k, rsa, csa, a_len);
    span("B", k, n, rsb, csb, b_len);
    let c_span = span("C", m, n, rsc, csc, c_len);
    // Distinct elements of C must not share memory. Checking that the rows, or the
    // columns, are laid out one after another is exact for the layouts callers use and
    // cheap; it rejects only exotic interleavings.
    let (rows, cols) = (m as isize, n as isize);
    let separate = (m <= 1 || rsc > 0)
        && (n <= 1 || csc > 0)
        && (m <= 1 || n <= 1 || rsc >= cols * csc || csc >= rows * rsc);
    assert!(
        m == 0 || n == 0 || separate,
        "sgemm: C ({m}×{n}, strides {rsc}, {csc}) has overlapping rows or columns"
    );
    c_span
}

/// Checks that a `rows×cols` matrix with strides `rs`, `cs` fits in a slice of length
/// `len` and returns the number of elements it spans from its first (0 when empty).
fn span(name: &str, rows: usize, cols: usize, rs: isize, cs: isize, len: usize) -> usize {
    if rows == 0 || cols == 0 {
        return 0;
    }
    assert!(
        (rows == 1 || rs >= 0) && (cols == 1 || cs >= 0),
        "sgemm: negative stride for {name} ({rows}×{cols}, strides {rs}, {cs})"
    );
    let last = |count: usize, stride: isize| (count - 1) * stride.max(0) as usize;
    let span = last(rows, rs) + last(cols, cs) + 1;
    assert!(
        span <= len,
        "sgemm: {name} ({rows}×{cols}, strides {rs}, {cs}) needs {span} elements, slice has {len}"
    );
    span
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{assert_close, random_vec};
    use proptest::prelude::*;

    /// Strides and slice length for a `rows×cols` matrix stored row-major, or column-major
    /// when `transposed`, with `pad` unused elements after each stored row (or column).
    fn layout(rows: usize, cols: usize, transposed: bool, pad: usize) -> (isize, isize, usize) {
        let (outer, inner) = if transposed {
            (cols, rows)
        } else {
            (rows, cols)
        };
        let ld = inner + pad;
        let len = outer * ld;
        if transposed {
            (1, ld as isize, len)
        } else {
            (ld as isize, 1, len)
        }
    }

    /// Runs `sgemm` and `sgemm_ref` on the same random operands and compares C.
    #[allow(clippy::too_many_arguments)]
    fn check(
        m: usize,
        k: usize,
        n: usize,
        alpha: f32,
        beta: f32,
        trans: [bool; 3],
        pad: [usize; 3],
        seed: u64,
    ) {
        let (rsa, csa, la) = layout(m, k, trans[0], pad[0]);
        let (rsb, csb, lb) = layout(k, n, trans[1], pad[1]);
        let (rsc, csc, lc) = layout(m, n, trans[2], pad[2]);
        let a = random_vec(la, seed);
        let b = random_vec(lb, seed + 1);
        let c0 = random_vec(lc, seed + 2);
        let mut want = c0.clone();
        sgemm_ref(
            m, k, n, alpha, &a, rsa, csa, &b, rsb, csb, beta, &mut want, rsc, csc,
        );
        let mut got = c0.clone();
        sgemm(
            m, k, n, alpha, &a, rsa, csa, &b, rsb, csb, beta, &mut got, rsc, csc,
        );
        assert_close(&got, &want, 1e-4);
        let mut serial = c0;
        sgemm_serial(
            m,
            k,
            n,
            alpha,
            &a,
            rsa,
            csa,
            &b,
            rsb,
            csb,
            beta,
            &mut serial,
            rsc,
            csc,
        );
        assert_close(&serial, &want, 1e-4);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn matches_reference(
            m in 0usize..24, k in 0usize..24, n in 0usize..24,
            alpha in -2.0f32..2.0, beta in prop_oneof![Just(0.0f32), Just(1.0), -2.0f32..2.0],
            trans in any::<[bool; 3]>(), pad in [0usize..3, 0usize..3, 0usize..3],
            seed in any::<u64>(),
        ) {
            check(m, k, n, alpha, beta, trans, pad, seed);
        }
    }

    #[test]
    fn large_products_match_reference_on_two_threads() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        pool.install(|| {
            // Row-major C, so these take the parallel path; one with a padded C.
            check(300, 90, 130, 1.0, 0.0, [false; 3], [0; 3], 1);
            check(257, 64, 200, 0.5, 2.0, [true, false, false], [1, 0, 3], 2);
            // Column-major C stays serial but must still be right.
            check(200, 100, 150, 1.0, 0.5, [false, true, true], [0, 2, 0], 3);
        });
    }

    #[test]
    fn small_product_by_hand() {
        // [1 2 3; 4 5 6] · [1 0; 0 1; 1 1] = [4 5; 10 11]; then 2·that + 1·C.
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let b = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0];
        let mut c = [1.0, 1.0, 1.0, 1.0];
        sgemm(2, 3, 2, 2.0, &a, 3, 1, &b, 2, 1, 1.0, &mut c, 2, 1);
        assert_eq!(c, [9.0, 11.0, 21.0, 23.0]);
        // The same A read transposed (csa = 3): Aᵀ is 3×2, times the 2×2 identity.
        let eye = [1.0, 0.0, 0.0, 1.0];
        let mut at = [0.0; 6];
        sgemm(3, 2, 2, 1.0, &a, 1, 3, &eye, 2, 1, 0.0, &mut at, 2, 1);
        assert_eq!(at, [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    }

    #[test]
    fn zero_beta_ignores_nan_in_c() {
        let a = random_vec(6 * 5, 7);
        let b = random_vec(5 * 4, 8);
        let mut c = vec![f32::NAN; 6 * 4];
        sgemm(6, 5, 4, 1.0, &a, 5, 1, &b, 4, 1, 0.0, &mut c, 4, 1);
        let mut want = vec![f32::NAN; 6 * 4];
        sgemm_ref(6, 5, 4, 1.0, &a, 5, 1, &b, 4, 1, 0.0, &mut want, 4, 1);
        assert!(want.iter().all(|v| v.is_finite()));
        assert_close(&c, &want, 1e-5);
    }

    #[test]
    fn empty_inner_dimension_scales_c() {
        let mut c = [1.0, -2.0, 3.0];
        sgemm(3, 0, 1, 1.0, &[], 0, 1, &[], 1, 1, 0.5, &mut c, 1, 1);
        assert_eq!(c, [0.5, -1.0, 1.5]);
        sgemm(3, 0, 1, 1.0, &[], 0, 1, &[], 1, 1, 0.0, &mut c, 1, 1);
        assert_eq!(c, [0.0; 3]);
    }

    #[test]
    #[should_panic(expected = "overlapping rows or columns")]
    fn aliased_c_panics() {
        let mut c = [0.0; 4];
        sgemm(
            2, 1, 2, 1.0, &[1.0; 2], 1, 1, &[1.0; 2], 1, 1, 0.0, &mut c, 1, 1,
        );
    }

    #[test]
    #[should_panic(expected = "needs 6 elements")]
    fn short_slice_panics() {
        let mut c = [0.0; 4];
        sgemm(
            2, 3, 2, 1.0, &[0.0; 5], 3, 1, &[0.0; 6], 2, 1, 0.0, &mut c, 2, 1,
        );
    }
}
