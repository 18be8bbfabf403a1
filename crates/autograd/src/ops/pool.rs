//! Average and max pooling over 2-D windows (NCHW, no padding), over `kernels::pool`.

use ndarray::IxDyn;

use kernels::Pool2dShape;

use crate::Tensor;
use crate::tape::Var;

fn pool_shape(op: &str, x: &[usize], kernel: usize, stride: usize) -> Pool2dShape {
    let [n, c, h, w]: [usize; 4] = x
        .try_into()
        .unwrap_or_else(|_| panic!("{op}: input must be 4-D [N, C, H, W], got {x:?}"));
    assert!(
        kernel > 0 && stride > 0 && kernel <= h && kernel <= w,
        "{op}: kernel {kernel}, stride {stride} do not fit input {x:?}"
    );
    Pool2dShape {
        planes: n * c,
        h,
        w,
        kernel,
        stride,
    }
}

fn out_shape(x: &[usize], s: &Pool2dShape) -> [usize; 4] {
    [x[0], x[1], s.out_h(), s.out_w()]
}

fn slice(t: &Tensor) -> &[f32] {
    t.as_slice().expect("tensors on the tape are contiguous")
}

impl<'t> Var<'t> {
    /// Mean over `kernel × kernel` windows moved by `stride` (`F.avg_pool2d`).
    pub fn avg_pool2d(&self, kernel: usize, stride: usize) -> Var<'t> {
        let s = pool_shape("avg_pool2d", self.shape(), kernel, stride);
        let mut y = Tensor::zeros(IxDyn(&out_shape(self.shape(), &s)));
        kernels::avg_pool2d_forward(&s, slice(self.value()), y.as_slice_mut().expect("fresh"));
        let in_dim = self.value().raw_dim();
        self.unary_op("avg_pool2d", y, move |g, _| {
            let mut gx = Tensor::zeros(in_dim);
            kernels::avg_pool2d_backward(&s, slice(&g), gx.as_slice_mut().expect("fresh"));
            vec![Some(gx)]
        })
    }

    /// Maximum over `kernel × kernel` windows moved by `stride` (`F.max_pool2d`); the
    /// gradient goes to the first position of each window's maximum.
    pub fn max_pool2d(&self, kernel: usize, stride: usize) -> Var<'t> {
        let s = pool_shape("max_pool2d", self.shape(), kernel, stride);
        let mut y = Tensor::zeros(IxDyn(&out_shape(self.shape(), &s)));
        let mut argmax = vec![0u32; y.len()];
        kernels::max_pool2d_forward(
            &s,
            slice(self.value()),
            y.as_slice_mut().expect("fresh"),
            &mut argmax,
        );
        let in_dim = self.value().raw_dim();
        self.unary_op("max_pool2d", y, move |g, _| {
            let mut gx = Tensor::zeros(in_dim);
            kernels::max_pool2d_backward(&s, slice(&g), &argmax, gx.as_slice_mut().expect("fresh"));
            vec![Some(gx)]
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::gradcheck::{assert_gradients, random};

    #[test]
    fn pooling_gradients() {
        for (i, &(h, w, k, s)) in [(6, 6, 2, 2), (7, 5, 3, 2), (5, 4, 2, 1), (3, 3, 3, 3)]
            .iter()
            .enumerate()
        {
            let x = random(&[2, 3, h, w], -1.0, 1.0, i as u64);
            assert_gradients(vec![x.clone()], |v| v[0].avg_pool2d(k, s));
            // Distinct values spaced well above ε, so each window's maximum is clear.
            let n = x.len();
            let mut order: Vec<usize> = (0..n).collect();
            order.sort_by_key(|&j| (j * 7919) % n);
            let distinct = crate::Tensor::from_shape_vec(
                x.raw_dim(),
                order.iter().map(|&j| j as f32 * 0.1).collect(),
            )
            .unwrap();
            assert_gradients(vec![distinct], |v| v[0].max_pool2d(k, s));
        }
    }
}
