//! What each command does. The commands call the same core services as the HTTP API.

use crate::cli::{
    Cli, Command, DeptCommand, KeyCommand, KeyCreateArgs, MailCommand, MailboxCommand,
    QuarantineCommand, StaffCommand, TopicCommand,
};
use crate::config::Config;
use crate::database;
use anyhow::{Context, Result, anyhow, bail};
use helpline_api::AppState;
use helpline_core::apikey::{IpRule, KeySecret, NewApiKey, Scope};
use helpline_core::catalog::{NewStaff, NewTopic};
use helpline_core::email::EmailAddress;
use helpline_core::event::Actor;
use helpline_core::ids::{ApiKeyId, DepartmentId, PriorityId};
use helpline_core::inbound::{InboundStatus, NewInbound};
use helpline_core::service::{catalog, keys};
use helpline_core::store::Store;
use helpline_mail::pipeline::{self, IntakeSettings};
use serde_json::json;
use std::process::ExitCode;
use std::sync::Arc;

/// Runs the parsed command line; the exit code is 0 unless a command chooses another.
pub async fn run(cli: Cli) -> Result<ExitCode> {
    let mut config = Config::load(cli.config.as_deref())?;
    let explicit_database =
        cli.database.is_some() || std::env::var_os("HELPLINE_DATABASE_URL").is_some();
    if let Some(url) = cli.database {
        config.database_url = url;
    }
    init_logging(&config.log);
    if let Command::Pipe = cli.command {
        return Ok(pipe(&config).await);
    }
    if let Command::Mail(MailCommand::Inspect { file }) = &cli.command {
        return inspect(&config, file, explicit_database)
            .await
            .map(|()| ExitCode::SUCCESS);
    }
    if let Command::Mail(MailCommand::Fetch) = cli.command {
        return fetch(&config).await.map(|()| ExitCode::SUCCESS);
    }
    if let Command::Mail(MailCommand::TestSend { address }) = &cli.command {
        return crate::outbound::test_send(&config, address)
            .await
            .map(|()| ExitCode::SUCCESS);
    }
    if let Command::Mail(MailCommand::Quarantine(command)) = cli.command {
        return quarantine(&config, command)
            .await
            .map(|()| ExitCode::SUCCESS);
    }
    run_command(cli.command, config)
        .await
        .map(|()| ExitCode::SUCCESS)
}

async fn run_command(command: Command, mut config: Config) -> Result<()> {
    match command {
        Command::Serve(args) => {
            if let Some(listen) = args.listen {
                config.listen = listen;
            }
            serve(config).await
        }
        Command::Migrate => {
            let store = database::open(&config.database_url).await?;
            println!(
                "database {} is migrated ({})",
                database::redact(&config.database_url),
                store.backend()
            );
            Ok(())
        }
        Command::Openapi => {
            println!(
                "{}",
                serde_json::to_string_pretty(&helpline_api::openapi())?
            );
            Ok(())
        }
        Command::Key(command) => key(&config, command).await,
        Command::Mailbox(command) => mailbox(&config, command).await,
        Command::Outbox(command) => {
            let holder = helpline_outbox::worker::process_holder(&node_name());
            crate::outbound::outbox(&config, command, holder).await
        }
        Command::Webhook(command) => crate::outbound::webhook(&config, command).await,
        Command::Import(command) => crate::import::run(&config, command).await,
        Command::Pipe | Command::Mail(_) => Ok(()),
        Command::Dept(command) => dept(&config, command).await,
        Command::Topic(command) => topic(&config, command).await,
        Command::Staff(command) => staff(&config, command).await,
    }
}

fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(filter))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

async fn serve(config: Config) -> Result<()> {
    let desk = config.serve_desk_settings()?;
    let api = config.api_settings()?;
    let mail_tls = config.mail_tls()?;
    let store = database::open(&config.database_url).await?;
    let address = tokio::net::lookup_host(&config.listen)
        .await
        .with_context(|| format!("cannot resolve listen address {}", config.listen))?
        .next()
        .with_context(|| format!("listen address {} resolves to nothing", config.listen))?;
    let listener = helpline_api::bind(address)
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let address = listener.local_addr()?;
    tracing::info!(
        %address,
        database = %database::redact(&config.database_url),
        backend = store.backend(),
        "helpline is serving"
    );
    let mut intake = IntakeSettings::load(&*store, config.system_addresses.clone()).await?;
    intake.mail_tls = mail_tls;
    // Messages stored before a crash but not processed yet are finished first.
    match pipeline::process_pending(&*store, &desk, &intake, 10_000).await {
        Ok(done) if !done.is_empty() => {
            tracing::info!(count = done.len(), "pending mail processed")
        }
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, "pending mail could not be processed now"),
    }
    let outbox = Arc::new(crate::outbound::build_outbox(
        &config,
        Arc::clone(&store),
        &intake,
        helpline_outbox::worker::process_holder(&node_name()),
    )?);
    let state = AppState::new(store, desk, api, intake);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut outbox_stop = stopped.clone();
    let outbox_task = tokio::spawn(outbox.run(async move {
        let _ = outbox_stop.changed().await;
    }));
    let watcher = tokio::spawn(watch_mailboxes(state.clone(), stopped));
    let shutdown = async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    };
    helpline_api::serve(listener, state, shutdown)
        .await
        .context("HTTP server failed")?;
    let _ = watcher.await;
    let _ = outbox_task.await;
    tracing::info!("stopped");
    Ok(())
}

/// This node's name in mailbox leases: its host name. A restarted server (or `helpline mail
/// fetch` on the same host) may take up its mailboxes at once; other hosts wait for the lease.
fn node_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "helpline".into())
}

/// Keeps every mailbox watched while the server runs: one task per mailbox, started as
/// mailboxes are added (checked every 30 seconds), each fetching only while this node holds
/// the mailbox's lease; every 30 seconds it also finishes mail left pending.
async fn watch_mailboxes(state: AppState, mut stop: tokio::sync::watch::Receiver<bool>) {
    let holder = node_name();
    let connect: std::sync::Arc<helpline_mail::fetch::Connector> = std::sync::Arc::from(
        helpline_mail::sources::connector(state.intake.mail_tls.clone()),
    );
    let mut watched = std::collections::HashSet::new();
    let mut tasks = Vec::new();
    loop {
        match state.store.reader().await {
            Ok(mut reader) => match reader.mailboxes().await {
                Ok(mailboxes) => {
                    for mailbox in mailboxes {
                        if watched.insert(mailbox.id) {
                            tracing::info!(mailbox = %mailbox.address.redacted(), "watching mailbox");
                            tasks.push(tokio::spawn(helpline_mail::fetch::watch_mailbox(
                                std::sync::Arc::clone(&state.store),
                                std::sync::Arc::clone(&state.desk),
                                std::sync::Arc::clone(&state.intake),
                                holder.clone(),
                                std::sync::Arc::clone(&connect),
                                mailbox.id,
                                stop.clone(),
                            )));
                        }
                    }
                }
                Err(error) => tracing::warn!(%error, "cannot list mailboxes"),
            },
            Err(error) => tracing::warn!(%error, "cannot list mailboxes"),
        }
        // Mail stored while the database was failing (answered 503, kept pending) is finished
        // here rather than waiting for a restart.
        if let Err(error) =
            pipeline::process_pending(&*state.store, &state.desk, &state.intake, 100).await
        {
            tracing::warn!(%error, "pending mail could not be processed now");
        }
        tokio::select! {
            () = tokio::time::sleep(std::time::Duration::from_secs(30)) => {}
            _ = stop.changed() => break,
        }
    }
    for task in tasks {
        let _ = task.await;
    }
}

/// Resolves on SIGINT or SIGTERM; the server then stops accepting and lets requests in flight finish.
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

async fn key(config: &Config, command: KeyCommand) -> Result<()> {
    let store = database::open(&config.database_url).await?;
    match command {
        KeyCommand::Create(args) => create_key(&*store, args).await,
        KeyCommand::List(flag) => {
            let keys = keys::list_api_keys(&*store).await?;
            if flag.json {
                println!("{}", serde_json::to_string_pretty(&keys)?);
                return Ok(());
            }
            println!(
                "{:>4}  {:<8} {:<8} {:<32} {:<40} NOTE",
                "ID", "PREFIX", "STATE", "IP", "SCOPES"
            );
            for key in keys {
                let ips: Vec<_> = key.ip_rules.iter().map(ToString::to_string).collect();
                let scopes: Vec<_> = key.scopes.iter().map(|s| s.as_str()).collect();
                println!(
                    "{:>4}  {:<8} {:<8} {:<32} {:<40} {}",
                    key.id,
                    key.prefix,
                    if key.is_active() { "active" } else { "revoked" },
                    ips.join(","),
                    scopes.join(","),
                    key.note.unwrap_or_default()
                );
            }
            Ok(())
        }
        KeyCommand::Revoke { id } => {
            let key = keys::revoke_api_key(&*store, ApiKeyId(id), Actor::system()).await?;
            println!("key {} ({}…) is revoked", key.id, key.prefix);
            Ok(())
        }
    }
}

async fn create_key(store: &dyn Store, args: KeyCreateArgs) -> Result<()> {
    let ip_rules = args
        .ips
        .iter()
        .map(|raw| raw.parse::<IpRule>().map_err(|e| anyhow!("--ip: {e}")))
        .collect::<Result<Vec<_>>>()?;
    let scopes = args
        .scopes
        .iter()
        .map(|raw| raw.parse::<Scope>().map_err(|e| anyhow!("--scope: {e}")))
        .collect::<Result<Vec<_>>>()?;
    let secret = match &args.secret {
        Some(raw) => KeySecret::parse(raw).map_err(|e| anyhow!("--secret {e}"))?,
        None => KeySecret::generate(),
    };
    let key = keys::create_api_key(
        store,
        NewApiKey {
            secret: secret.clone(),
            ip_rules,
            scopes,
            note: args.note.filter(|n| !n.trim().is_empty()),
        },
        Actor::system(),
    )
    .await?;
    if args.json {
        println!("{}", json!({"id": key.id, "key": secret.expose()}));
    } else {
        println!(
            "Created API key {}. Its secret, shown only this once:",
            key.id
        );
        println!();
        println!("    {}", secret.expose());
        println!();
        println!("Send it in the X-API-Key header (or Authorization: Bearer).");
    }
    Ok(())
}

async fn dept(config: &Config, command: DeptCommand) -> Result<()> {
    let store = database::open(&config.database_url).await?;
    match command {
        DeptCommand::Add { name } => {
            let department = catalog::add_department(&*store, &name, Actor::system()).await?;
            println!("department {} \"{}\" added", department.id, department.name);
        }
        DeptCommand::List(flag) => {
            let departments = store.reader().await?.departments().await?;
            if flag.json {
                println!("{}", serde_json::to_string_pretty(&departments)?);
            } else {
                println!("{:>4}  {:<32} DEFAULT", "ID", "NAME");
                for d in departments {
                    println!(
                        "{:>4}  {:<32} {}",
                        d.id,
                        d.name,
                        if d.is_default { "yes" } else { "" }
                    );
                }
            }
        }
    }
    Ok(())
}

async fn topic(config: &Config, command: TopicCommand) -> Result<()> {
    let store = database::open(&config.database_url).await?;
    match command {
        TopicCommand::Add {
            name,
            department,
            priority,
        } => {
            let department_id = department_ref(&*store, department.as_deref()).await?;
            let priority_id = match priority {
                Some(raw) => Some(priority_ref(&*store, &raw).await?),
                None => None,
            };
            let topic = catalog::add_topic(
                &*store,
                NewTopic {
                    name,
                    department_id,
                    priority_id,
                },
                Actor::system(),
            )
            .await?;
            println!("help topic {} \"{}\" added", topic.id, topic.name);
        }
        TopicCommand::List(flag) => {
            let topics = store.reader().await?.topics().await?;
            if flag.json {
                println!("{}", serde_json::to_string_pretty(&topics)?);
            } else {
                println!("{:>4}  {:<32} {:>10}  ACTIVE", "ID", "NAME", "DEPARTMENT");
                for t in topics {
                    println!(
                        "{:>4}  {:<32} {:>10}  {}",
                        t.id,
                        t.name,
                        t.department_id,
                        if t.active { "yes" } else { "no" }
                    );
                }
            }
        }
    }
    Ok(())
}

async fn staff(config: &Config, command: StaffCommand) -> Result<()> {
    let store = database::open(&config.database_url).await?;
    match command {
        StaffCommand::Add {
            username,
            name,
            email,
            department,
        } => {
            let email = EmailAddress::parse(&email).map_err(|e| anyhow!("--email {e}"))?;
            let department_id = department_ref(&*store, department.as_deref()).await?;
            let member = catalog::add_staff(
                &*store,
                NewStaff {
                    username,
                    name,
                    email,
                    department_id,
                },
                Actor::system(),
            )
            .await?;
            println!("staff member {} \"{}\" added", member.id, member.username);
        }
        StaffCommand::List(flag) => {
            let staff = store.reader().await?.staff().await?;
            if flag.json {
                println!("{}", serde_json::to_string_pretty(&staff)?);
            } else {
                println!(
                    "{:>4}  {:<20} {:<28} {:<32} {:>10}",
                    "ID", "USERNAME", "NAME", "EMAIL", "DEPARTMENT"
                );
                for s in staff {
                    println!(
                        "{:>4}  {:<20} {:<28} {:<32} {:>10}",
                        s.id, s.username, s.name, s.email, s.department_id
                    );
                }
            }
        }
    }
    Ok(())
}

/// A department named by id or (case-insensitive) name; the default one when none is named.
async fn department_ref(store: &dyn Store, raw: Option<&str>) -> Result<DepartmentId> {
    let mut reader = store.reader().await?;
    let Some(raw) = raw.map(str::trim) else {
        return Ok(reader.default_department().await?.id);
    };
    let departments = reader.departments().await?;
    departments
        .iter()
        .find(|d| d.id.to_string() == raw || d.name.eq_ignore_ascii_case(raw))
        .map(|d| d.id)
        .ok_or_else(|| anyhow!("--department: no department '{raw}' (see `helpline dept list`)"))
}

/// A priority named by id or (case-insensitive) name.
async fn priority_ref(store: &dyn Store, raw: &str) -> Result<PriorityId> {
    let raw = raw.trim();
    let priorities = store.reader().await?.priorities().await?;
    match priorities
        .iter()
        .find(|p| p.id.to_string() == raw || p.name.eq_ignore_ascii_case(raw))
    {
        Some(priority) => Ok(priority.id),
        None => bail!("--priority: no priority '{raw}' (Low, Normal, High, Emergency or an id)"),
    }
}

/// sysexits(3) codes mail servers understand.
const EX_DATAERR: u8 = 65;
const EX_TEMPFAIL: u8 = 75;

/// `helpline pipe`: one message from a mail server. Once the raw bytes are stored the answer is
/// success, whatever processing makes of them (a message that cannot be processed is
/// quarantined, not bounced).
async fn pipe(config: &Config) -> ExitCode {
    use tokio::io::AsyncReadExt;
    let mut raw = Vec::new();
    if let Err(error) = tokio::io::stdin().read_to_end(&mut raw).await {
        eprintln!("helpline pipe: cannot read the message: {error}");
        return ExitCode::from(EX_TEMPFAIL);
    }
    if raw.iter().all(u8::is_ascii_whitespace) {
        eprintln!("helpline pipe: no message on standard input");
        return ExitCode::from(EX_DATAERR);
    }
    let store = match database::open(&config.database_url).await {
        Ok(store) => store,
        Err(error) => {
            eprintln!("helpline pipe: {error:#}; the mail server should retry");
            return ExitCode::from(EX_TEMPFAIL);
        }
    };
    let (desk, intake) = match (
        config.desk_settings(),
        IntakeSettings::load(&*store, config.system_addresses.clone()).await,
    ) {
        (Ok(desk), Ok(intake)) => (desk, intake),
        (Err(error), _) => {
            eprintln!("helpline pipe: {error:#}");
            return ExitCode::from(EX_TEMPFAIL);
        }
        (_, Err(error)) => {
            eprintln!("helpline pipe: {error}; the mail server should retry");
            return ExitCode::from(EX_TEMPFAIL);
        }
    };
    let message = NewInbound {
        source: "pipe".into(),
        mailbox: None,
        source_uid: None,
        raw,
    };
    let id = match pipeline::store_raw(&*store, message).await {
        Ok(id) => id,
        Err(error) => {
            eprintln!(
                "helpline pipe: cannot store the message: {error}; the mail server should retry"
            );
            return ExitCode::from(EX_TEMPFAIL);
        }
    };
    // Stored: from here on the message is safe. A failure to process it now leaves it pending
    // for the next processing round rather than asking the mail server to send it again.
    match pipeline::process(&*store, &desk, &intake, id).await {
        Ok(outcome) => {
            let ticket = outcome.ticket.map(|n| n.to_string()).unwrap_or_default();
            println!(
                "{} {} {ticket} ({})",
                outcome.inbound_id,
                outcome.status.as_str(),
                outcome.rule
            );
            if outcome.status == InboundStatus::Quarantined {
                eprintln!("helpline pipe: message {id} quarantined: {}", outcome.rule);
            }
        }
        Err(error) => eprintln!("helpline pipe: message {id} stored, processing deferred: {error}"),
    }
    ExitCode::SUCCESS
}

/// `helpline mail inspect FILE`.
async fn inspect(config: &Config, file: &std::path::Path, with_database: bool) -> Result<()> {
    let raw = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let mail = helpline_mail::InboundMail::parse(&raw, usize::MAX)
        .map_err(|e| anyhow!("{}: {e}", file.display()))?;
    let classification = helpline_mail::classify::classify(&mail);
    let mailbox = |m: &helpline_mail::Mailbox| json!({"name": m.name, "address": m.address});
    let mut report = json!({
        "class": classification.class.as_str(),
        "class_rule": classification.rule,
        "message_id": mail.message_id,
        "in_reply_to": mail.in_reply_to,
        "references": mail.references,
        "from": mail.from.as_ref().map(mailbox),
        "to": mail.to.iter().map(mailbox).collect::<Vec<_>>(),
        "cc": mail.cc.iter().map(mailbox).collect::<Vec<_>>(),
        "subject": mail.subject,
        "visible_text": pipeline::visible_text(&mail),
        "attachments": mail.attachments.iter().map(|a| json!({
            "name": a.filename, "type": a.content_type, "size": a.content.len(),
        })).collect::<Vec<_>>(),
    });
    if with_database {
        let store = database::open(&config.database_url).await?;
        let intake =
            IntakeSettings::load_read_only(&*store, config.system_addresses.clone()).await?;
        let (rule, ticket) = pipeline::explain(&*store, &intake, &mail).await?;
        report["rule"] = json!(rule);
        report["ticket"] = json!(ticket.map(|n| n.to_string()));
    }
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// `helpline mail quarantine …`.
async fn quarantine(config: &Config, command: QuarantineCommand) -> Result<()> {
    let store = database::open(&config.database_url).await?;
    match command {
        QuarantineCommand::List(flag) => {
            let records = store
                .reader()
                .await?
                .inbound_list(InboundStatus::Quarantined, None, 1000)
                .await?;
            if flag.json {
                let rows = records
                    .iter()
                    .map(inbound_json)
                    .collect::<Result<Vec<_>>>()?;
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                println!(
                    "{:>6}  {:<8} {:>9}  {:<25} ERROR",
                    "ID", "SOURCE", "BYTES", "RECEIVED"
                );
                for r in records {
                    println!(
                        "{:>6}  {:<8} {:>9}  {:<25} {}",
                        r.id,
                        r.source,
                        r.size,
                        helpline_api::rfc3339(r.received_at),
                        r.rule.unwrap_or_default()
                    );
                }
            }
        }
        QuarantineCommand::Show { id } => {
            let (record, raw) = store
                .reader()
                .await?
                .inbound(helpline_core::inbound::InboundId(id))
                .await?
                .ok_or_else(|| anyhow!("no inbound message {id}"))?;
            println!("{}", serde_json::to_string_pretty(&inbound_json(&record)?)?);
            // The header block only: the body may be large or binary.
            let end = raw
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .or_else(|| raw.windows(2).position(|w| w == b"\n\n"))
                .unwrap_or(raw.len().min(8192));
            println!("\n{}", String::from_utf8_lossy(&raw[..end]));
        }
        QuarantineCommand::Retry { id } => {
            let desk = config.desk_settings()?;
            let intake = IntakeSettings::load(&*store, config.system_addresses.clone()).await?;
            let outcome = pipeline::retry(
                &*store,
                &desk,
                &intake,
                helpline_core::inbound::InboundId(id),
            )
            .await?;
            let ticket = outcome.ticket.map(|n| n.to_string()).unwrap_or_default();
            println!(
                "{} {} {ticket} ({})",
                outcome.inbound_id,
                outcome.status.as_str(),
                outcome.rule
            );
        }
    }
    Ok(())
}

/// The same view of an inbound record as `GET /api/v1/inbound/{id}` gives.
fn inbound_json(r: &helpline_core::inbound::InboundRecord) -> Result<serde_json::Value> {
    Ok(serde_json::to_value(
        helpline_api::InboundRecordView::from(r),
    )?)
}

/// `helpline mailbox …`.
async fn mailbox(config: &Config, command: MailboxCommand) -> Result<()> {
    use helpline_core::mailbox::{AfterFetch, MailboxAddress, MailboxId, NewMailbox};
    use helpline_core::service::mailboxes;
    let store = database::open(&config.database_url).await?;
    match command {
        MailboxCommand::Add {
            url,
            archive,
            delete,
            interval,
        } => {
            let address = MailboxAddress::parse(&url).map_err(|e| anyhow!("mailbox URL: {e}"))?;
            let after_fetch = match (archive, delete) {
                (Some(folder), _) => AfterFetch::Archive(folder),
                (None, true) => AfterFetch::Delete,
                (None, false) if address.protocol.is_imap() => AfterFetch::Seen,
                (None, false) => AfterFetch::Delete,
            };
            let added = mailboxes::add_mailbox(
                &*store,
                NewMailbox {
                    address,
                    after_fetch,
                    poll_seconds: interval,
                },
                Actor::system(),
            )
            .await?;
            println!("mailbox {} {} added", added.id, added.address.redacted());
        }
        MailboxCommand::List(flag) => {
            let all = store.reader().await?.mailboxes().await?;
            let rows: Vec<_> = all
                .iter()
                .map(|m| {
                    json!({
                        "id": m.id,
                        "mailbox": m.address.redacted(),
                        "after_fetch": m.after_fetch.to_stored(),
                        "poll_seconds": m.poll_seconds,
                        "last_fetch_at": m.last_fetch_at.map(helpline_api::rfc3339),
                        "last_error": m.last_error,
                    })
                })
                .collect();
            if flag.json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                println!(
                    "{:>4}  {:<50} {:<16} {:>6}  LAST ERROR",
                    "ID", "MAILBOX", "AFTER", "EVERY"
                );
                for m in &all {
                    println!(
                        "{:>4}  {:<50} {:<16} {:>5}s  {}",
                        m.id,
                        m.address.redacted(),
                        m.after_fetch.to_stored(),
                        m.poll_seconds,
                        m.last_error.clone().unwrap_or_default()
                    );
                }
            }
        }
        MailboxCommand::Remove { id } => {
            mailboxes::remove_mailbox(&*store, MailboxId(id), Actor::system()).await?;
            println!("mailbox {id} removed");
        }
    }
    Ok(())
}

/// `helpline mail fetch`: one round over every mailbox this node can lease.
async fn fetch(config: &Config) -> Result<()> {
    let desk = config.desk_settings()?;
    let mail_tls = config.mail_tls()?;
    let store = database::open(&config.database_url).await?;
    let mut intake = IntakeSettings::load(&*store, config.system_addresses.clone()).await?;
    intake.mail_tls = mail_tls;
    let connect = helpline_mail::sources::connector(intake.mail_tls.clone());
    let results =
        helpline_mail::fetch::fetch_all(&*store, &desk, &intake, &node_name(), &*connect).await?;
    if results.is_empty() {
        let any = !store.reader().await?.mailboxes().await?.is_empty();
        if any {
            println!("every mailbox is being fetched by another node right now");
        } else {
            println!("no mailbox to fetch (see `helpline mailbox add`)");
        }
    }
    let mut failed = false;
    for (mailbox, result) in results {
        match result {
            Ok(report) => println!(
                "{}: {} new, {} resumed, {} quarantined",
                mailbox.address.redacted(),
                report.new,
                report.resumed,
                report.quarantined
            ),
            Err(error) => {
                failed = true;
                println!("{}: failed: {error}", mailbox.address.redacted());
            }
        }
    }
    if failed {
        bail!("a mailbox could not be fetched");
    }
    Ok(())
}
