//! The LIF kernels against their references, by hand, across time tiles and threads.

use std::f32::consts::FRAC_PI_2;

use super::trace::MAX_CHUNK;
use super::*;
use crate::testutil::{bits, on_threads, random_vec};
use proptest::prelude::*;

const RESETS: [Reset; 2] = [Reset::Zero, Reset::Subtract];
const FLOORS: [Floor; 3] = [Floor::None, Floor::Clamp, Floor::Authors];

fn surrogates(slope: f32) -> [Surrogate; 4] {
    [
        Surrogate::Membrane,
        Surrogate::FastSigmoid { slope },
        Surrogate::Arctan { slope },
        Surrogate::Triangle { slope },
    ]
}

/// Every reset × floor × surrogate combination around `leak`, `threshold`.
fn all_params(leak: f32, threshold: f32, slope: f32) -> Vec<LifParams> {
    let mut all = Vec::new();
    for reset in RESETS {
        for floor in FLOORS {
            for surrogate in surrogates(slope) {
                all.push(LifParams {
                    leak,
                    threshold,
                    reset,
                    floor,
                    surrogate,
                });
            }
        }
    }
    all
}

/// Runs fast and reference forward and backward on `current` and asserts they agree
/// bit for bit (traces, `c`, gradients); returns the fast outputs.
fn check(
    p: &LifParams,
    steps: usize,
    n: usize,
    current: &[f32],
    grads: [Option<&[f32]>; 2],
) -> (LifTrace, Vec<f32>, Vec<f32>) {
    let (mut c, mut c_ref) = (vec![f32::NAN; steps * n], vec![f32::NAN; steps * n]);
    let trace = lif_forward(p, steps, n, current, &mut c);
    let trace_ref = lif_forward_ref(p, steps, n, current, &mut c_ref);
    assert_eq!(bits(&c), bits(&c_ref), "c differs for {p:?}");
    assert!(trace == trace_ref, "trace differs for {p:?}");
    let mut counts = vec![f32::NAN; n];
    trace.counts_into(&mut counts);
    for (i, &count) in counts.iter().enumerate() {
        let want = (0..steps).filter(|&t| trace_ref.spike(t, i)).count();
        assert_eq!(count, want as f32, "count of neuron {i}");
    }
    // Asking for c[T−1] only gives the same last row and the same trace.
    let mut last = vec![f32::NAN; n];
    if steps > 0 {
        assert!(lif_forward(p, steps, n, current, &mut last) == trace_ref);
        assert_eq!(
            bits(&last),
            bits(&c_ref[(steps - 1) * n..]),
            "c[T−1] differs"
        );
    }
    let (mut gi, mut gi_ref) = (vec![f32::NAN; steps * n], vec![f32::NAN; steps * n]);
    lif_backward(p, &trace, grads[0], grads[1], &mut gi);
    lif_backward_ref(p, &trace_ref, grads[0], grads[1], &mut gi_ref);
    assert_eq!(bits(&gi), bits(&gi_ref), "grad_current differs for {p:?}");
    (trace, c, gi)
}

/// Random currents of the given scale around the threshold, and random gradients.
fn random_case(steps: usize, n: usize, scale: f32, seed: u64) -> [Vec<f32>; 3] {
    let current = random_vec(steps * n, seed)
        .into_iter()
        .map(|x| scale * x + 0.3)
        .collect();
    [
        current,
        random_vec(steps * n, seed + 1),
        random_vec(steps * n, seed + 2),
    ]
}

/// Spikes `[T·N]` of a trace as 0/1 bytes, to concatenate tiles.
fn spike_rows(trace: &LifTrace) -> Vec<u8> {
    let (steps, n) = (trace.steps(), trace.neurons());
    (0..steps * n)
        .map(|k| u8::from(trace.spike(k / n, k % n)))
        .collect()
}

/// Runs `current` in time tiles of the given lengths with the state carried, fast and
/// reference, and checks both against one call over all steps.
fn check_tiles(p: &LifParams, n: usize, current: &[f32], tiles: &[usize]) {
    let steps: usize = tiles.iter().sum();
    let mut c_whole = vec![f32::NAN; steps * n];
    let whole = lif_forward_ref(p, steps, n, current, &mut c_whole);
    let (mut state, mut state_ref) = (LifState::new(n), LifState::new(n));
    let (mut c_tiles, mut spikes, mut traces) = (Vec::new(), Vec::new(), Vec::new());
    let mut t0 = 0;
    for &len in tiles {
        let input = &current[t0 * n..(t0 + len) * n];
        let (mut c, mut c_ref) = (vec![f32::NAN; len * n], vec![f32::NAN; len * n]);
        let trace = lif_forward_from(p, len, n, input, &mut c, &mut state);
        let trace_ref = lif_forward_from_ref(p, len, n, input, &mut c_ref, &mut state_ref);
        assert_eq!(bits(&c), bits(&c_ref), "tile c differs for {p:?}");
        assert!(trace == trace_ref, "tile trace differs for {p:?}");
        assert_eq!(state, state_ref, "carried state differs for {p:?}");
        for t in 0..len {
            for i in 0..n {
                if let (Some(a), Some(b)) = (trace.potential(t, i), whole.potential(t0 + t, i)) {
                    assert_eq!(a.to_bits(), b.to_bits(), "v[{}] of {i}", t0 + t);
                }
            }
        }
        c_tiles.extend_from_slice(&c);
        spikes.extend(spike_rows(&trace));
        traces.push((t0, trace));
        t0 += len;
    }
    // Backward, last tile first, the adjoint carried: the same gradient as one call.
    let (gs, gc) = (random_vec(steps * n, 91), random_vec(steps * n, 92));
    let mut gi_whole = vec![f32::NAN; steps * n];
    lif_backward_ref(p, &whole, Some(&gs), Some(&gc), &mut gi_whole);
    let mut gi_tiles = vec![f32::NAN; steps * n];
    let (mut adjoint, mut adjoint_ref) = (LifAdjoint::new(n), LifAdjoint::new(n));
    for (t0, trace) in traces.iter().rev() {
        let rows = t0 * n..(t0 + trace.steps()) * n;
        let (gs, gc) = (&gs[rows.clone()], &gc[rows.clone()]);
        let mut gi_ref = vec![f32::NAN; rows.len()];
        let gi = &mut gi_tiles[rows];
        lif_backward_from(p, trace, Some(gs), Some(gc), gi, &mut adjoint);
        lif_backward_from_ref(p, trace, Some(gs), Some(gc), &mut gi_ref, &mut adjoint_ref);
        assert_eq!(bits(gi), bits(&gi_ref), "tile gradient differs for {p:?}");
        assert_eq!(adjoint, adjoint_ref, "carried adjoint differs for {p:?}");
    }
    assert_eq!(
        bits(&gi_tiles),
        bits(&gi_whole),
        "tiled gradient differs for {p:?}"
    );
    assert_eq!(bits(&c_tiles), bits(&c_whole), "tiled c differs for {p:?}");
    assert_eq!(spikes, spike_rows(&whole), "tiled spikes differ for {p:?}");
    if steps > 0 && n > 0 {
        let last = &c_whole[(steps - 1) * n..];
        assert_eq!(bits(state.cumulative()), bits(last));
    }
}

#[test]
fn time_tiles_with_the_state_and_adjoint_carried_match_one_call() {
    for p in all_params(0.9, 0.6, 2.0) {
        for (n, tiles) in [
            (13usize, &[3usize, 5, 1][..]),
            (8, &[4, 4]),
            (37, &[1, 0, 6]),
            (MAX_CHUNK + 9, &[2, 3]),
        ] {
            let steps: usize = tiles.iter().sum();
            let current: Vec<f32> = random_vec(steps * n, n as u64)
                .into_iter()
                .map(|x| 0.25 + 0.75 * x)
                .collect();
            check_tiles(&p, n, &current, tiles);
        }
    }
}

#[test]
#[should_panic(expected = "lif_backward_from: the adjoint holds 3 neurons, the layer 5")]
fn an_adjoint_of_another_layer_is_refused() {
    let p = all_params(0.9, 0.6, 2.0)[0];
    let mut c = vec![0.0; 5];
    let trace = lif_forward(&p, 1, 5, &[0.0; 5], &mut c);
    let mut gi = vec![0.0; 5];
    lif_backward_from(&p, &trace, None, None, &mut gi, &mut LifAdjoint::new(3));
}

#[test]
#[should_panic(expected = "lif_forward_from: the state holds 4 neurons, the layer 5")]
fn a_state_of_another_layer_is_refused() {
    let p = all_params(0.9, 0.6, 2.0)[0];
    let mut c = vec![0.0; 5];
    lif_forward_from(&p, 1, 5, &[0.0; 5], &mut c, &mut LifState::new(4));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn matches_reference(
        steps in 1usize..12, n in 0usize..300, scale in 0.1f32..4.0,
        leak in prop_oneof![Just(0.0f32), Just(1.0f32), 0.5f32..1.0],
        threshold in 0.25f32..2.0, slope in 0.5f32..10.0,
        which_grads in 0usize..4, seed in any::<u64>(),
    ) {
        let [current, gs, gc] = random_case(steps, n, scale, seed);
        let gs = (which_grads & 1 != 0).then_some(&gs[..]);
        let gc = (which_grads & 2 != 0).then_some(&gc[..]);
        for p in all_params(leak, threshold, slope) {
            check(&p, steps, n, &current, [gs, gc]);
        }
    }
}

#[test]
fn large_layer_matches_reference_across_chunks_and_tails() {
    // 9 chunks of 1024 neurons, the last one 941 long: 117 lanes of 8 and a tail of 5.
    let (steps, n) = (7, 9133);
    let [current, gs, gc] = random_case(steps, n, 2.0, 11);
    for p in all_params(0.9, 1.0, 5.0) {
        check(&p, steps, n, &current, [Some(&gs), Some(&gc)]);
    }
    // Chunks capped at MAX_CHUNK, the last one 13 long.
    let (steps, n) = (2, 16 * MAX_CHUNK + 13);
    let [current, gs, gc] = random_case(steps, n, 2.0, 12);
    for p in all_params(0.9, 1.0, 5.0) {
        check(&p, steps, n, &current, [Some(&gs), Some(&gc)]);
    }
}

#[test]
fn edge_shapes() {
    let p = LifParams::PAPER;
    for (steps, n) in [
        (0, 0),
        (0, 5),
        (5, 0),
        (1, 1),
        (1, 8),
        (1, 9),
        (3, 1),
        (1, 1000),
    ] {
        let [current, gs, gc] = random_case(steps, n, 2.0, 5);
        let (trace, ..) = check(&p, steps, n, &current, [Some(&gs), Some(&gc)]);
        assert_eq!((trace.steps(), trace.neurons()), (steps, n));
    }
}

#[test]
fn zero_current_never_fires_and_huge_current_always_fires() {
    let (steps, n) = (9, 37);
    for p in all_params(0.95, 1.0, 4.0) {
        let (trace, c, _) = check(&p, steps, n, &vec![0.0; steps * n], [None, None]);
        assert_eq!(trace.total_spikes(), 0);
        assert!(c.iter().all(|&c| c == 0.0));

        let (trace, _, _) = check(&p, steps, n, &vec![1e6; steps * n], [None, None]);
        assert_eq!(trace.total_spikes(), (steps * n) as u64);
        let mut spikes = vec![0.0; steps * n];
        trace.spikes_into(&mut spikes);
        assert!(spikes.iter().all(|&s| s == 1.0));
    }
}

#[test]
fn no_upstream_gradient_gives_zero_gradient() {
    let (steps, n) = (6, 19);
    let [current, ..] = random_case(steps, n, 2.0, 3);
    for p in all_params(0.9, 1.0, 4.0) {
        let (_, _, gi) = check(&p, steps, n, &current, [None, None]);
        assert!(gi.iter().all(|&g| g == 0.0), "{p:?}");
    }
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let (steps, n) = (5, 12301);
    let [current, gs, gc] = random_case(steps, n, 2.0, 21);
    let run = |threads: usize, p: &LifParams| {
        on_threads(threads, || {
            let mut c = vec![0.0; steps * n];
            let trace = lif_forward(p, steps, n, &current, &mut c);
            let mut gi = vec![0.0; steps * n];
            lif_backward(p, &trace, Some(&gs), Some(&gc), &mut gi);
            (trace, bits(&c), bits(&gi))
        })
    };
    for p in [
        LifParams::PAPER,
        LifParams {
            reset: Reset::Subtract,
            floor: Floor::Clamp,
            surrogate: Surrogate::FastSigmoid { slope: 5.0 },
            ..LifParams::PAPER
        },
    ] {
        let (one, two) = (run(1, &p), run(2, &p));
        assert!(one.0 == two.0);
        assert_eq!((one.1, one.2), (two.1, two.2));
    }
}

#[test]
fn spike_readouts_agree() {
    let (steps, n) = (13, 4173);
    let [current, ..] = random_case(steps, n, 2.0, 8);
    let mut c = vec![0.0; steps * n];
    let trace = lif_forward(&LifParams::PAPER, steps, n, &current, &mut c);
    let mut spikes = vec![f32::NAN; steps * n];
    trace.spikes_into(&mut spikes);
    for t in 0..steps {
        for i in 0..n {
            let s = spikes[t * n + i];
            assert_eq!(s, f32::from(u8::from(trace.spike(t, i))));
        }
    }
    let total = spikes.iter().sum::<f32>();
    assert_eq!(trace.total_spikes() as f32, total);
    let mut counts = vec![f32::NAN; n];
    trace.counts_into(&mut counts);
    for (i, &count) in counts.iter().enumerate() {
        let want: f32 = (0..steps).map(|t| spikes[t * n + i]).sum();
        assert_eq!(count, want, "count of neuron {i}");
    }
    assert!(total > 0.0 && total < (steps * n) as f32);
}

/// The spikes as bits are the spikes' values packed, for layers of any width (not a
/// multiple of 8 or 64: rows start anywhere in a word) and several chunks.
#[test]
fn spike_words_pack_the_spikes() {
    for (steps, n) in [
        (1, 1),
        (3, 7),
        (5, 64),
        (4, 67),
        (7, 1000),
        (3, 4173),
        (2, 40_003),
        (4, 40_960),
    ] {
        let [current, ..] = random_case(steps, n, 2.0, n as u64);
        let mut c = vec![0.0; steps * n];
        let trace = lif_forward(&LifParams::PAPER, steps, n, &current, &mut c);
        let mut spikes = vec![f32::NAN; steps * n];
        trace.spikes_into(&mut spikes);
        let want = crate::bits::pack_binary(&spikes).expect("binary");
        assert_eq!(trace.spike_words(), want, "{steps} steps of {n} neurons");
    }
}

#[test]
fn trace_keeps_only_what_backward_needs() {
    let (steps, n): (usize, usize) = (10, 100);
    let bits = steps * n.div_ceil(8);
    let current = vec![0.5; steps * n];
    let mut c = vec![0.0; steps * n];
    let membrane = LifParams {
        floor: Floor::None,
        ..LifParams::PAPER
    };
    let trace = lif_forward(&membrane, steps, n, &current, &mut c);
    assert_eq!(trace.bytes(), bits);
    assert_eq!((trace.floored(0, 0), trace.potential(0, 0)), (None, None));
    let trace = lif_forward(&LifParams::PAPER, steps, n, &current, &mut c);
    assert_eq!(trace.bytes(), 2 * bits);
    let sigmoid = LifParams {
        surrogate: Surrogate::FastSigmoid { slope: 5.0 },
        ..LifParams::PAPER
    };
    let trace = lif_forward(&sigmoid, steps, n, &current, &mut c);
    assert_eq!(trace.bytes(), 2 * bits + 4 * steps * n);
    assert_eq!(trace.potential(0, 0), Some(0.5));
}

#[test]
#[should_panic(expected = "needs v[t]")]
fn backward_without_potential_panics() {
    let mut c = [0.0; 4];
    let trace = lif_forward(&LifParams::PAPER, 2, 2, &[1.0; 4], &mut c);
    let p = LifParams {
        surrogate: Surrogate::Arctan { slope: 2.0 },
        ..LifParams::PAPER
    };
    lif_backward(&p, &trace, Some(&[1.0; 4]), None, &mut [0.0; 4]);
}

#[test]
#[should_panic(expected = "trace recorded with")]
fn backward_with_other_floor_panics() {
    let mut c = [0.0; 4];
    let trace = lif_forward(&LifParams::PAPER, 2, 2, &[1.0; 4], &mut c);
    let p = LifParams {
        floor: Floor::None,
        ..LifParams::PAPER
    };
    lif_backward(&p, &trace, Some(&[1.0; 4]), None, &mut [0.0; 4]);
}

/// T = 3, N = 2 by hand, λ = 0.5, θ = 1, currents (time-major):
/// neuron 0: 0.8, 0.8, 1.2; neuron 1: −3, 0.5, 2.
fn by_hand(reset: Reset, floor: Floor, surrogate: Surrogate) -> (LifTrace, Vec<f32>) {
    let p = LifParams {
        leak: 0.5,
        threshold: 1.0,
        reset,
        floor,
        surrogate,
    };
    let current = [0.8, -3.0, 0.8, 0.5, 1.2, 2.0];
    let mut c = vec![0.0; 6];
    let trace = lif_forward(&p, 3, 2, &current, &mut c);
    let mut c_ref = vec![0.0; 6];
    lif_forward_ref(&p, 3, 2, &current, &mut c_ref);
    assert_eq!(c, c_ref);
    // c[t] = λ·(c[t−1] + I[t]) has no reset and no floor.
    let want_c = [0.4, -1.5, 0.6, -0.5, 0.9, 0.75];
    for (got, want) in c.iter().zip(want_c) {
        assert!((got - want).abs() < 1e-6, "c = {c:?}");
    }
    (trace, current.to_vec())
}

fn spikes_of(trace: &LifTrace) -> Vec<f32> {
    let mut s = vec![0.0; 6];
    trace.spikes_into(&mut s);
    s
}

fn backward_of(p: &LifParams, trace: &LifTrace, gs: &[f32], gc: &[f32]) -> Vec<f32> {
    let (mut gi, mut gi_ref) = (vec![0.0; 6], vec![0.0; 6]);
    lif_backward(p, trace, Some(gs), Some(gc), &mut gi);
    lif_backward_ref(p, trace, Some(gs), Some(gc), &mut gi_ref);
    assert_eq!(gi, gi_ref);
    gi
}

fn assert_near(got: &[f32], want: &[f32]) {
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-6, "got {got:?}, want {want:?}");
    }
}

#[test]
fn by_hand_reset_to_zero() {
    // Neuron 0: u = 0.8, 1.2 (fires, v̂ = 0), 1.2 (fires).
    // Neuron 1, no floor: u = −3, −1, 1.5 (fires).
    let (trace, _) = by_hand(Reset::Zero, Floor::None, Surrogate::Membrane);
    assert_eq!(spikes_of(&trace), [0.0, 0.0, 1.0, 0.0, 1.0, 1.0]);
    // Membrane: κ = 1, g = s/θ = s. With gs = 1 everywhere and gc = 0:
    // neuron 0: Av[2] = 1, Au = 1, gI[2] = 1; t = 1: Av = 1 + 1·1·(1 − 1) = 1;
    // t = 0: Av = 0 + 1·1·(1 − 0) = 1.
    // neuron 1: gI[2] = 1; t = 1: Av = 0 + 1·(1 − 0) = 1; t = 0: 1.
    let p = *trace.params();
    let gi = backward_of(&p, &trace, &[1.0; 6], &[0.0; 6]);
    assert_near(&gi, &[1.0; 6]);
    // gc alone: Ac[t] = gc[t] + Ac[t+1], gI = Au + Ac, no spike gradient.
    let gi = backward_of(&p, &trace, &[0.0; 6], &[1.0, 2.0, 1.0, 2.0, 1.0, 2.0]);
    assert_near(&gi, &[3.0, 6.0, 2.0, 4.0, 1.0, 2.0]);

    // Authors' floor: neuron 1's u[0] = −3 < −1 → v = 1 (no spike, floored);
    // u[1] = 0.5 + 0.5 = 1.0 (not > 1), u[2] = 0.5 + 2 = 2.5 (fires).
    let (trace, _) = by_hand(Reset::Zero, Floor::Authors, Surrogate::Membrane);
    assert_eq!(spikes_of(&trace), [0.0, 0.0, 1.0, 0.0, 1.0, 1.0]);
    assert_eq!(trace.floored(0, 1), Some(true));
    assert_eq!(trace.floored(1, 1), Some(false));
    let p = *trace.params();
    let gi = backward_of(&p, &trace, &[1.0; 6], &[0.0; 6]);
    // Neuron 1: gI[2] = 1, gI[1] = 0 + 1·1·1 = 1, gI[0] = 0 (floored).
    assert_near(&gi, &[1.0, 0.0, 1.0, 1.0, 1.0, 1.0]);

    // Clamp: u[0] = −3 → v = −1; u[1] = −0.5 + 0.5 = 0; u[2] = 2 (fires).
    let (trace, _) = by_hand(
        Reset::Zero,
        Floor::Clamp,
        Surrogate::FastSigmoid { slope: 1.0 },
    );
    assert_eq!(trace.potential(0, 1), Some(-1.0));
    assert_eq!(trace.potential(1, 1), Some(0.0));
    assert_eq!(trace.potential(2, 1), Some(2.0));
    // Fast sigmoid, κ = λ = 0.5, gs = 1 at t = 2 only:
    // neuron 0: v = (0.8, 1.2, 1.2): g[2] = 1/1.2² → gI[2] = 1/1.44;
    //   t = 1: Av = 0 + 0.5·(1/1.44)·(1 − 1) = 0; t = 0: 0.
    // neuron 1: g[2] = 1/(1 + 1)² = 0.25 → gI[2] = 0.25; t = 1: Av = 0.5·0.25·1 = 0.125;
    //   t = 0: floored → 0.
    let p = *trace.params();
    let gs = [0.0, 0.0, 0.0, 0.0, 1.0, 1.0];
    let gi = backward_of(&p, &trace, &gs, &[0.0; 6]);
    assert_near(&gi, &[0.0, 0.0, 0.0, 0.125, 1.0 / 1.44, 0.25]);
}

#[test]
fn by_hand_reset_by_subtraction() {
    // Neuron 0: u = 0.8; 0.4 + 0.8 = 1.2 (fires, v̂ = 0.2); 0.1 + 1.2 = 1.3 (fires).
    // Neuron 1: u = −3; −1.5 + 0.5 = −1; −0.5 + 2 = 1.5 (fires).
    let (trace, _) = by_hand(
        Reset::Subtract,
        Floor::None,
        Surrogate::Triangle { slope: 1.0 },
    );
    assert_eq!(spikes_of(&trace), [0.0, 0.0, 1.0, 0.0, 1.0, 1.0]);
    assert!((trace.potential(2, 0).unwrap() - 1.3).abs() < 1e-6);
    // Triangle k = 1: g = max(0, 1 − |v − 1|); κ = λ = 0.5, r = 1 (subtraction).
    // gs = 1 everywhere, gc = 0.
    // neuron 0: v = 0.8, 1.2, 1.3 → g = 0.8, 0.8, 0.7.
    //   Av[2] = 0.7; Av[1] = 0.8 + 0.5·0.7 = 1.15; Av[0] = 0.8 + 0.5·1.15 = 1.375.
    // neuron 1: v = −3, −1, 1.5 → g = 0, 0, 0.5.
    //   Av[2] = 0.5; Av[1] = 0 + 0.25 = 0.25; Av[0] = 0.125.
    let p = *trace.params();
    let gi = backward_of(&p, &trace, &[1.0; 6], &[0.0; 6]);
    assert_near(&gi, &[1.375, 0.125, 1.15, 0.25, 0.7, 0.5]);
    // With gc = 1 everywhere too: Ac = 1, 1.5, 1.75 (t = 2, 1, 0), adding κ·Ac.
    let gi = backward_of(&p, &trace, &[1.0; 6], &[1.0; 6]);
    assert_near(&gi, &[2.25, 1.0, 1.9, 1.0, 1.2, 1.0]);

    // Arctan k = 2 at neuron 1, t = 2: z = 0.5, g = 1 / (1 + (π/2)²).
    let (trace, _) = by_hand(
        Reset::Subtract,
        Floor::None,
        Surrogate::Arctan { slope: 2.0 },
    );
    let p = *trace.params();
    let gs = [0.0, 0.0, 0.0, 0.0, 0.0, 1.0];
    let gi = backward_of(&p, &trace, &gs, &[0.0; 6]);
    let g = 1.0 / (1.0 + FRAC_PI_2 * FRAC_PI_2);
    assert_near(&gi, &[0.0, 0.25 * g, 0.0, 0.5 * g, 0.0, g]);
}
