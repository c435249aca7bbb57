//! The command line. Every flag can also come from the configuration file or the environment;
//! flags win over both.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Helpline: a self-hosted help desk server, compatible with osTicket's API.
#[derive(Debug, Parser)]
#[command(name = "helpline", version, about, long_about = None)]
pub struct Cli {
    /// Configuration file (TOML). Settings: see docs/configuration.md.
    #[arg(long, global = true, env = "HELPLINE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Database URL: `sqlite://FILE` (created when missing) or `postgres://USER@HOST/DB`.
    /// [default: sqlite://helpline.db]
    #[arg(long, global = true, value_name = "URL")]
    pub database: Option<String>,

    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (migrates the database first).
    Serve(ServeArgs),
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// Manage API keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Manage departments.
    #[command(subcommand)]
    Dept(DeptCommand),
    /// Manage help topics.
    #[command(subcommand)]
    Topic(TopicCommand),
    /// Manage staff members.
    #[command(subcommand)]
    Staff(StaffCommand),
    /// Print the OpenAPI 3.1 document of /api/v1 (JSON).
    Openapi,
    /// Take one message on standard input from a mail server (Postfix, Exim): exit 0 once it is
    /// stored, 65 when it can never be accepted (empty), 75 when the database is unavailable
    /// (the mail server retries later).
    Pipe,
    /// Mail tools.
    #[command(subcommand)]
    Mail(MailCommand),
    /// Manage the mailboxes mail is fetched from (IMAP, POP3).
    #[command(subcommand)]
    Mailbox(MailboxCommand),
    /// The outbox of notification mails and webhook deliveries: show and retry jobs.
    #[command(subcommand)]
    Outbox(OutboxCommand),
    /// Manage webhook endpoints.
    #[command(subcommand)]
    Webhook(WebhookCommand),
    /// Import another help desk's data into this database.
    #[command(subcommand)]
    Import(ImportCommand),
}

/// `helpline import …`.
#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Import an osTicket installation (1.14 to 1.18) from its MySQL/MariaDB database:
    /// departments, help topics, statuses, priorities, SLAs, organisations, staff, users,
    /// tickets with their numbers, threads, attachments, collaborators, events and API keys.
    /// osTicket's database is only read. See docs/migrate-from-osticket.md.
    Osticket(OsticketImportArgs),
}

/// `helpline import osticket`.
#[derive(Debug, Args)]
pub struct OsticketImportArgs {
    /// osTicket's database: mysql://USER:PASS@HOST:PORT/DATABASE (percent-encode `@`, `:` and
    /// `/` in the password). The password is never printed.
    #[arg(long, value_name = "URL", env = "HELPLINE_OSTICKET_URL")]
    pub from: String,
    /// osTicket's table prefix (TABLE_PREFIX in include/ost-config.php).
    #[arg(long, value_name = "PREFIX", default_value = "ost_")]
    pub prefix: String,
    /// osTicket's SECRET_SALT (include/ost-config.php): replies to mail osTicket sent then keep
    /// threading onto their tickets.
    #[arg(long, value_name = "SALT", env = "HELPLINE_OSTICKET_SECRET_SALT")]
    pub secret_salt: Option<String>,
    /// Continue an earlier import into this database (after an interruption, or to bring over
    /// what osTicket received since): records already imported are skipped.
    #[arg(long)]
    pub resume: bool,
    /// Records written per transaction.
    #[arg(long, value_name = "N", default_value_t = helpline_import::osticket::DEFAULT_BATCH)]
    pub batch: usize,
}

/// `helpline mailbox …`.
#[derive(Debug, Subcommand)]
pub enum MailboxCommand {
    /// Add a mailbox: imap://USER:PASS@HOST:PORT/FOLDER, imaps://…, pop3://USER:PASS@HOST:PORT,
    /// pop3s://… (percent-encode `@` and `:` in the user or password).
    Add {
        /// The mailbox URL.
        url: String,
        /// IMAP: move fetched messages to this folder (created when missing).
        #[arg(long, value_name = "FOLDER", conflicts_with = "delete")]
        archive: Option<String>,
        /// Delete fetched messages (always so for POP3). IMAP's default is to flag them seen.
        #[arg(long)]
        delete: bool,
        /// Seconds between polls (IMAP with IDLE is told of new mail at once).
        #[arg(long, value_name = "SECONDS", default_value_t = 60)]
        interval: u32,
    },
    /// List mailboxes (passwords are never shown).
    List(JsonFlag),
    /// Remove a mailbox (mail already fetched stays).
    Remove {
        /// The mailbox's id (from `list`).
        id: i64,
    },
}

/// `helpline mail …`.
#[derive(Debug, Subcommand)]
pub enum MailCommand {
    /// Explain one raw message as JSON: its class, threading headers, addresses, the text shown
    /// on the thread, attachments — and, with a database, where it would land and why.
    Inspect {
        /// The raw message (.eml).
        file: PathBuf,
    },
    /// Messages that could not be processed, kept with their error.
    #[command(subcommand)]
    Quarantine(QuarantineCommand),
    /// Run one fetch round over every mailbox, then exit.
    Fetch,
    /// Send a test message through the configured mail server (smtp_url, mail_from) to ADDRESS
    /// and report what the server said.
    TestSend {
        /// Where to send it.
        address: String,
    },
}

/// `helpline outbox …`.
#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// List jobs, newest first (dead ones by default).
    List {
        /// `dead` (default), `pending`, `done` or `all`.
        #[arg(long, default_value = "dead")]
        state: String,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Put dead jobs back in the queue (their attempts start again).
    Retry {
        /// Job ids (from `list`).
        ids: Vec<i64>,
        /// Every dead job.
        #[arg(long, conflicts_with = "ids")]
        all_dead: bool,
    },
    /// Run the outbox until no job is due, then exit (for set-ups without `serve`).
    Run,
}

/// `helpline webhook …`.
#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// Add an endpoint and print its signing secret (shown this once only).
    Add {
        /// Where deliveries are POSTed (http:// or https://).
        url: String,
        /// An event to deliver (repeat): ticket.created, ticket.updated, message.created,
        /// reply.created, note.created, status.changed.
        #[arg(long = "event", required = true)]
        events: Vec<String>,
        /// A note for operators.
        #[arg(long)]
        description: Option<String>,
        /// Print `{"id":…,"secret":"whsec_…"}` instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List endpoints (secrets are never shown again).
    List(JsonFlag),
    /// Remove an endpoint and its delivery log.
    Remove {
        /// The endpoint's id (from `list`).
        id: i64,
    },
}

/// `helpline mail quarantine …`.
#[derive(Debug, Subcommand)]
pub enum QuarantineCommand {
    /// List quarantined messages with their error.
    List(JsonFlag),
    /// Show one message: its record and its raw headers.
    Show {
        /// The message's id (from `list`).
        id: i64,
    },
    /// Process a quarantined message again.
    Retry {
        /// The message's id (from `list`).
        id: i64,
    },
}

/// `helpline serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on. [default: 127.0.0.1:8080]
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
}

/// `helpline key …`.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create a key and print its secret (shown this once only).
    Create(KeyCreateArgs),
    /// List keys (secrets are never shown again).
    List(JsonFlag),
    /// Revoke a key; running servers refuse it within `api_key_cache_seconds` (2 s by default).
    Revoke {
        /// The key's id (from `key list`).
        id: i64,
    },
}

/// `helpline key create`.
#[derive(Debug, Args)]
pub struct KeyCreateArgs {
    /// Address or CIDR block the key may be used from (repeatable; `0.0.0.0/0` and `::/0` allow
    /// any address).
    #[arg(long = "ip", value_name = "ADDR_OR_CIDR", required = true, num_args = 1..)]
    pub ips: Vec<String>,
    /// What the key may do (repeatable): tickets:create, tickets:read, tickets:update,
    /// messages:create, replies:create, notes:create, users:read, users:write, cron:run, admin.
    #[arg(long = "scope", value_name = "SCOPE", required = true, num_args = 1..)]
    pub scopes: Vec<String>,
    /// A note for operators ("Zabbix", "website form").
    #[arg(long)]
    pub note: Option<String>,
    /// Use this secret instead of a generated one, e.g. an existing osTicket key (32 hex
    /// characters) so its integrations keep working.
    #[arg(long, value_name = "SECRET")]
    pub secret: Option<String>,
    /// Print `{"id":…,"key":"…"}` instead of text.
    #[arg(long)]
    pub json: bool,
}

/// A `--json` switch for list commands.
#[derive(Debug, Args)]
pub struct JsonFlag {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `helpline dept …`.
#[derive(Debug, Subcommand)]
pub enum DeptCommand {
    /// Add a department.
    Add {
        /// Its name (unique).
        name: String,
    },
    /// List departments.
    List(JsonFlag),
}

/// `helpline topic …`.
#[derive(Debug, Subcommand)]
pub enum TopicCommand {
    /// Add a help topic.
    Add {
        /// Its name (unique).
        name: String,
        /// Department (id or name) its tickets go to. [default: the default department]
        #[arg(long)]
        department: Option<String>,
        /// Priority (id or name) its tickets get.
        #[arg(long)]
        priority: Option<String>,
    },
    /// List help topics.
    List(JsonFlag),
}

/// `helpline staff …`.
#[derive(Debug, Subcommand)]
pub enum StaffCommand {
    /// Add a staff member.
    Add {
        /// Login name (unique).
        #[arg(long)]
        username: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// Email address (unique among staff).
        #[arg(long)]
        email: String,
        /// Primary department (id or name). [default: the default department]
        #[arg(long)]
        department: Option<String>,
    },
    /// List staff members.
    List(JsonFlag),
}
