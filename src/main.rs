//! The `pai` binary: a thin front over the library (see `pai::cli`).

fn main() -> std::process::ExitCode {
    pai::cli::main()
}
