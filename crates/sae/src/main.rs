//! The `sae` tool: train, evaluate, analyze and benchmark spiking auto-encoders.
//! See `sae --help` and [`sae::cli`].

fn main() -> std::process::ExitCode {
    sae::cli::main()
}
