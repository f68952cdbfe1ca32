//! `harmony`: a thin shim over the library; the command tree lives in `cli`.

fn main() -> std::process::ExitCode {
    harmony::cli::main()
}
