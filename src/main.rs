//! The `keel` binary: parse the command line, pick a mode, delegate. Nothing else lives here.

fn main() -> std::process::ExitCode {
    keel::cli::main()
}
