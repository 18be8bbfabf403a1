//! PyTorch's answers for the general convolutions and pools
//! (`tests/golden/convolution.py`): conv2d with per-axis stride and padding, dilation and
//! groups, conv_transpose2d likewise with output padding, conv1d, and padded pooling. Each
//! case's arguments are read from the file, where the script stored the ones it passed.

mod golden;

use autograd::Var;
use autograd::ops::conv::{Conv1dOptions, Conv2dOptions, ConvTranspose2dOptions};
use autograd::ops::pool::Pool2dOptions;
use golden::{Case, Op, check_family};

/// A per-axis argument `(height, width)`.
fn pair(case: &Case<'_>, key: &str) -> (usize, usize) {
    match case.indices(key)[..] {
        [h, w] => (h, w),
        ref v => panic!("{}.{key}: expected two values, got {v:?}", case.name),
    }
}

/// A one-value argument.
fn int(case: &Case<'_>, key: &str) -> usize {
    case.scalar(key) as usize
}

fn conv2d<'t>(case: &Case<'_>, x: &[Var<'t>]) -> Var<'t> {
    let opts = Conv2dOptions {
        stride: pair(case, "stride"),
        padding: pair(case, "padding"),
        dilation: pair(case, "dilation"),
        groups: int(case, "groups"),
    };
    x[0].conv2d_with(&x[1], x.get(2), &opts)
}

fn conv_transpose2d<'t>(case: &Case<'_>, x: &[Var<'t>]) -> Var<'t> {
    let opts = ConvTranspose2dOptions {
        stride: pair(case, "stride"),
        padding: pair(case, "padding"),
        output_padding: pair(case, "output_padding"),
        dilation: pair(case, "dilation"),
        groups: int(case, "groups"),
    };
    x[0].conv_transpose2d_with(&x[1], x.get(2), &opts)
}

fn conv1d<'t>(case: &Case<'_>, x: &[Var<'t>]) -> Var<'t> {
    let opts = Conv1dOptions {
        stride: int(case, "stride"),
        padding: int(case, "padding"),
        dilation: int(case, "dilation"),
        groups: int(case, "groups"),
    };
    x[0].conv1d(&x[1], x.get(2), &opts)
}

fn pool_options(case: &Case<'_>) -> Pool2dOptions {
    Pool2dOptions::new(pair(case, "kernel"))
        .stride(pair(case, "stride"))
        .padding(pair(case, "padding"))
        .ceil_mode(int(case, "ceil_mode") != 0)
}

fn avg_pool2d<'t>(case: &Case<'_>, x: &[Var<'t>]) -> Var<'t> {
    let include = int(case, "count_include_pad") != 0;
    x[0].avg_pool2d_with(&pool_options(case).count_include_pad(include))
}

fn max_pool2d<'t>(case: &Case<'_>, x: &[Var<'t>]) -> Var<'t> {
    x[0].max_pool2d_with(&pool_options(case))
}

#[test]
fn convolutions_and_pools_match_pytorch() {
    let ops: &[(&str, Op)] = &[
        ("conv2d_per_axis", conv2d),
        ("conv2d_dilated", conv2d),
        ("conv2d_groups", conv2d),
        ("conv2d_depthwise", conv2d),
        ("conv2d_depthwise_multiplier", conv2d),
        ("conv2d_grouped_dilated_strided", conv2d),
        ("conv2d_square", conv2d),
        ("conv_transpose2d_per_axis", conv_transpose2d),
        ("conv_transpose2d_dilated", conv_transpose2d),
        ("conv_transpose2d_groups", conv_transpose2d),
        (
            "conv_transpose2d_output_padding_below_dilation",
            conv_transpose2d,
        ),
        ("conv_transpose2d_depthwise", conv_transpose2d),
        ("conv_transpose2d_square", conv_transpose2d),
        ("conv1d_strided", conv1d),
        ("conv1d_dilated_groups", conv1d),
        ("conv1d_depthwise", conv1d),
        ("conv1d_plain", conv1d),
        ("avg_pool2d_padded_include_pad", avg_pool2d),
        ("avg_pool2d_padded_exclude_pad", avg_pool2d),
        ("avg_pool2d_ceil_include_pad", avg_pool2d),
        ("avg_pool2d_ceil_exclude_pad", avg_pool2d),
        ("avg_pool2d_per_axis", avg_pool2d),
        ("max_pool2d_padded", max_pool2d),
        ("max_pool2d_ceil", max_pool2d),
        ("max_pool2d_padded_negative", max_pool2d),
    ];
    check_family("convolution", ops);
}
