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
/// mimalloc for Rust's allocations alone changed nothing measurable. Transparent huge pages are
/// off for its arenas (`.cargo/config.toml`), which keeps the peak memory near glibc's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    match commands::run(cli).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
