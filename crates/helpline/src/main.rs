//! `helpline`: the help desk server and its administration commands.

mod cli;
mod commands;
mod config;
mod database;
mod import;
mod outbound;

use clap::Parser;

/// mimalloc, for Rust and — through its `override` feature — for the bundled SQLite's own
/// allocations. SQLite allocates for every statement it runs, and with glibc's allocator `malloc`
/// and `free` were about a sixth of the store writer's time; the writer bounds the write rate.
/// Interleaved runs of the compatible create (docs/benchmarks.md, item 17): +8 % and +12 %.
/// mimalloc for Rust's allocations alone changed nothing measurable. See [`small_pages_only`] for
/// its memory.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    small_pages_only();
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Turns transparent huge pages off for this process (and the programs it starts), before the
/// runtime's first allocations. mimalloc's arenas are large aligned regions: backed by 2 MiB
/// pages they made the server's peak memory 47–53 MB instead of 27–31 MB. The mimalloc feature
/// `no_thp` keeps mimalloc from asking for huge pages (kernels in `madvise` mode, Debian's
/// default); this covers kernels that hand them out unasked (`always`). A kernel without the
/// switch only costs memory, so a failure is ignored.
fn small_pages_only() {
    #[cfg(target_os = "linux")]
    let _ = rustix::thread::disable_transparent_huge_pages(true);
}
