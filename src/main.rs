//! `cargo run --release` at the workspace root: the `sae` tool (`crates/sae`), which
//! without arguments trains the spiking auto-encoder with the quick preset. Arguments
//! pass through: `cargo run --release -- bench --steps 100`.

fn main() -> std::process::ExitCode {
    sae::cli::main()
}
