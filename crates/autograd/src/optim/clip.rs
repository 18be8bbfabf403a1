//! Gradient clipping, as `torch.nn.utils.clip_grad_norm_` and `clip_grad_value_`.

use crate::Parameter;

/// The global L2 norm of all gradients, `√Σ‖∇p‖²`.
pub fn grad_norm(params: &[Parameter]) -> f32 {
    let sq: f64 = params
        .iter()
        .filter_map(|p| {
            p.grad()
                .map(|g| g.iter().map(|&x| (x as f64).powi(2)).sum::<f64>())
        })
        .sum();
    sq.sqrt() as f32
}

/// Scales all gradients so their global L2 norm is at most `max_norm`, like
/// `torch.nn.utils.clip_grad_norm_`. Returns the norm before clipping.
pub fn clip_grad_norm(params: &[Parameter], max_norm: f32) -> f32 {
    let norm = grad_norm(params);
    if norm > max_norm {
        let scale = max_norm / (norm + 1e-6);
        params.iter().for_each(|p| p.update_grad(|g| *g *= scale));
    }
    norm
}

/// Limits every gradient element to `[−clip, clip]`, like `clip_grad_value_`.
pub fn clip_grad_value(params: &[Parameter], clip: f32) {
    params
        .iter()
        .for_each(|p| p.update_grad(|g| g.mapv_inplace(|x| x.clamp(-clip, clip))));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::tests::{quad_param, quadratic_grads};

    #[test]
    fn clipping() {
        let params = [quad_param()];
        quadratic_grads(&params); // g = [6, −4], ‖g‖ = √52
        let before = clip_grad_norm(&params, 1.0);
        assert!((before - 52f32.sqrt()).abs() < 1e-5);
        assert!((grad_norm(&params) - 1.0).abs() < 1e-4);
        clip_grad_value(&params, 0.1);
        assert!(params[0].grad().unwrap().iter().all(|g| g.abs() <= 0.1));
    }
}
