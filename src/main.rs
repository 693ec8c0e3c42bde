//! The `keel` binary: parse the command line, pick a mode, delegate. Nothing else lives here.

/// mimalloc instead of the system allocator: a request allocates on one thread and the trace
/// writer frees on another, which glibc's arenas serialise behind a lock.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    keel::cli::main()
}
