//! Dense linear layer in `nn.Linear`'s layout: input `x[batch, fan_in]`, weight
//! `w[fan_out, fan_in]`, output `y[batch, fan_out]`. The forward pass and both gradients
//! are one [`sgemm`] each, the transposes taken through strides, so they have no `_ref`
//! twins of their own: the tests here check them by hand, and those of [`crate::event`]
//! against the event kernels' references. For sparse inputs the event kernels take over;
//! the `_auto` dispatchers of [`crate::event`] choose.

use crate::gemm::sgemm;

/// Panics with a clear message unless the slices fit a linear layer `fan_in → fan_out`
/// over `batch` rows: `x` (or the input) `batch·fan_in`, `w` `fan_out·fan_in`, `y`
/// `batch·fan_out`.
pub(crate) fn check_linear(kernel: &str, dims: [usize; 3], got: [usize; 3]) {
    let [batch, fan_in, fan_out] = dims;
    let want = [batch * fan_in, fan_out * fan_in, batch * fan_out];
    assert!(
        got == want,
        "{kernel}: slice lengths (x, w, y) = {got:?}, but batch {batch}, fan_in {fan_in}, \
         fan_out {fan_out} needs {want:?}"
    );
}

/// Dense linear forward pass, `y = x·wᵀ`: one [`sgemm`] with `w` transposed through its
/// strides. The path [`linear_forward_auto`](crate::event::linear_forward_auto) takes for
/// dense inputs.
///
/// # Panics
/// If a slice length does not match the dimensions.
pub fn linear_forward_dense(
    batch: usize,
    fan_in: usize,
    fan_out: usize,
    x: &[f32],
    w: &[f32],
    y: &mut [f32],
) {
    let dims = [batch, fan_in, fan_out];
    check_linear("linear_forward_dense", dims, [x.len(), w.len(), y.len()]);
    let (k, n) = (fan_in as isize, fan_out as isize);
    sgemm(batch, fan_in, fan_out, 1.0, x, k, 1, w, 1, k, 0.0, y, n, 1);
}

/// Dense linear weight gradient, `gw = gyᵀ·x`: one [`sgemm`] with `gy` transposed through
/// its strides. The path
/// [`linear_backward_weight_auto`](crate::event::linear_backward_weight_auto) takes for
/// dense inputs.
///
/// # Panics
/// If a slice length does not match the dimensions.
pub fn linear_backward_weight_dense(
    batch: usize,
    fan_in: usize,
    fan_out: usize,
    x: &[f32],
    gy: &[f32],
    gw: &mut [f32],
) {
    let dims = [batch, fan_in, fan_out];
    let got = [x.len(), gw.len(), gy.len()];
    check_linear("linear_backward_weight_dense", dims, got);
    let (k, n) = (fan_in as isize, fan_out as isize);
    sgemm(
        fan_out, batch, fan_in, 1.0, gy, 1, n, x, k, 1, 0.0, gw, k, 1,
    );
}

/// Dense linear input gradient, `gx = gy·w`: one [`sgemm`]. The path
/// [`linear_backward_input_auto`](crate::event::linear_backward_input_auto) takes for dense
/// inputs.
///
/// # Panics
/// If a slice length does not match the dimensions.
pub fn linear_backward_input_dense(
    batch: usize,
    fan_in: usize,
    fan_out: usize,
    gy: &[f32],
    w: &[f32],
    gx: &mut [f32],
) {
    let dims = [batch, fan_in, fan_out];
    check_linear(
        "linear_backward_input_dense",
        dims,
        [gx.len(), w.len(), gy.len()],
    );
    let (k, n) = (fan_out as isize, fan_in as isize);
    sgemm(
        batch, fan_out, fan_in, 1.0, gy, k, 1, w, n, 1, 0.0, gx, n, 1,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::run;

    #[test]
    fn linear_by_hand() {
        // x = [[0, 2, 0], [1, 0, 0]], w = [[1, 2, 3], [4, 5, 6]]: y = x·wᵀ = [[4, 10], [1, 4]].
        let (x, w) = (
            [0.0, 2.0, 0.0, 1.0, 0.0, 0.0],
            [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        );
        assert_eq!(
            run(4, |y| linear_forward_dense(2, 3, 2, &x, &w, y)),
            [4.0, 10.0, 1.0, 4.0]
        );
        // gy = [[1, 10], [100, 1000]]: gw = gyᵀ·x, gx = gy·w.
        let gy = [1.0, 10.0, 100.0, 1000.0];
        let gw = run(6, |g| linear_backward_weight_dense(2, 3, 2, &x, &gy, g));
        assert_eq!(gw, [100.0, 2.0, 0.0, 1000.0, 20.0, 0.0]);
        let gx = run(6, |g| linear_backward_input_dense(2, 3, 2, &gy, &w, g));
        assert_eq!(gx, [41.0, 52.0, 63.0, 4100.0, 5200.0, 6300.0]);
    }

    #[test]
    #[should_panic(expected = "linear_forward_dense: slice lengths")]
    fn wrong_length_panics() {
        linear_forward_dense(2, 3, 2, &[0.0; 5], &[0.0; 6], &mut [0.0; 4]);
    }
}
