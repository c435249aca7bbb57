//! `helpline import …`: another help desk's data into this database, with a progress bar on
//! standard error (when it is a terminal) and the summary on standard output.

use crate::cli::ImportCommand;
use crate::config::Config;
use crate::database;
use anyhow::Result;
use helpline_import::Progress;
use helpline_import::osticket::{self, Options};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Mutex;

/// Runs an import command.
pub async fn run(config: &Config, command: ImportCommand) -> Result<()> {
    let ImportCommand::Osticket(args) = command;
    // A wrong source is refused before the target is opened: opening creates a database that
    // does not exist yet.
    osticket::check_source(&args.from, &args.prefix).await?;
    let store = database::open(&config.database_url).await?;
    let bar = Bar::new();
    let options = Options {
        secret_salt: args.secret_salt,
        resume: args.resume,
        batch_size: args.batch,
    };
    let outcome = osticket::import(&args.from, &args.prefix, &options, &*store, &bar).await;
    bar.clear();
    let report = outcome?;
    print!("{report}");
    eprintln!(
        "imported into {} ({})",
        database::redact(&config.database_url),
        store.backend()
    );
    Ok(())
}

/// One bar, restarted for each phase; a line per finished phase above it.
struct Bar {
    bar: ProgressBar,
    phase: Mutex<Option<String>>,
}

impl Bar {
    fn new() -> Self {
        let target = if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(Some(0), target);
        let style = ProgressStyle::with_template(
            "{prefix:>15} [{bar:40.cyan/blue}] {pos:>7}/{len:7} {rate:>10} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key(
            "rate",
            |state: &indicatif::ProgressState, out: &mut dyn std::fmt::Write| {
                let _ = write!(out, "{:.0}/s", state.per_sec());
            },
        )
        .progress_chars("=> ");
        bar.set_style(style);
        Self {
            bar,
            phase: Mutex::new(None),
        }
    }

    fn finish_phase(&self) {
        let previous = self.phase.lock().map(|mut p| p.take()).unwrap_or_default();
        if let Some(name) = previous {
            self.bar
                .println(format!("{name:>15}: {} done", self.bar.position()));
        }
    }

    fn clear(&self) {
        self.bar.finish_and_clear();
    }
}

impl Progress for Bar {
    fn phase(&self, name: &str, total: u64) {
        self.finish_phase();
        if let Ok(mut phase) = self.phase.lock() {
            *phase = Some(name.to_owned());
        }
        self.bar.reset();
        self.bar.set_length(total);
        self.bar.set_prefix(name.to_owned());
    }

    fn advance(&self, n: u64) {
        self.bar.inc(n);
    }

    fn finish(&self) {
        self.finish_phase();
    }
}
