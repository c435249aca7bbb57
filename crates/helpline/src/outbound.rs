//! The outbox, webhook and test-mail commands, and the worker `serve` runs.

use crate::cli::{OutboxCommand, WebhookCommand};
use crate::config::Config;
use crate::database;
use anyhow::{Context, Result, anyhow, bail};
use helpline_core::ids::{JobId, WebhookId};
use helpline_core::outbox::{EventType, JobQuery, JobState, NewWebhook};
use helpline_core::store::Store;
use helpline_mail::outbound::{
    Address, AutoSubmitted, MailTransport, Notice, NoticeContext, OutgoingMail, PersonContext,
    Templates, render,
};
use helpline_mail::pipeline::IntakeSettings;
use helpline_outbox::webhook::{WebhookClient, WebhookSecret};
use helpline_outbox::{MailSetup, Outbox};
use std::sync::Arc;

/// The outbox worker for this configuration.
pub fn build_outbox(
    config: &Config,
    store: Arc<dyn Store>,
    intake: &IntakeSettings,
    holder: String,
) -> Result<Outbox> {
    let mut notices = config.notice_settings()?;
    // The intake's list: the configured addresses and every mailbox login (the senders,
    // `mail_from` and the departments', are never mailed either: `NoticeSettings::never_mail`).
    notices.system_addresses = intake.system_addresses.clone();
    let secret = intake.secret.clone();
    let tls = config.mail_tls()?;
    let transport = config
        .smtp_url
        .as_deref()
        .map(|url| MailTransport::from_url(url, &tls))
        .transpose()
        .context("smtp_url (HELPLINE_SMTP_URL) cannot be used")?
        .map(Arc::new);
    let templates = Templates::load(config.templates_dir.as_deref())
        .context("templates_dir (HELPLINE_TEMPLATES_DIR) cannot be used")?;
    let webhooks = WebhookClient::new(
        std::time::Duration::from_secs(config.webhook_timeout_seconds.max(1)),
        tls.client_config(),
    );
    Ok(Outbox::new(
        store,
        config.outbox_settings(holder)?,
        MailSetup {
            notices,
            transport,
            templates: Arc::new(templates),
            secret,
            desk_name: config.desk_name.clone(),
        },
        webhooks,
    ))
}

/// `helpline outbox …`.
pub async fn outbox(config: &Config, command: OutboxCommand, holder: String) -> Result<()> {
    let store = database::open(&config.database_url).await?;
    match command {
        OutboxCommand::List { state, limit, json } => {
            let state = match state.as_str() {
                "all" => None,
                other => Some(JobState::from_stored(other).ok_or_else(|| {
                    anyhow!("--state must be dead, pending, done or all, not '{other}'")
                })?),
            };
            let jobs = store
                .reader()
                .await?
                .jobs(&JobQuery {
                    state,
                    limit: limit.clamp(1, 10_000),
                    ..JobQuery::default()
                })
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&jobs)?);
                return Ok(());
            }
            println!(
                "{:>6}  {:<8} {:<7} {:>3}  {:<25} RESULT",
                "ID", "KIND", "STATE", "TRY", "NEXT/FINISHED"
            );
            for job in jobs {
                let when = job.finished_at.unwrap_or(job.next_attempt_at);
                println!(
                    "{:>6}  {:<8} {:<7} {:>3}  {:<25} {}",
                    job.id,
                    job.kind.as_str(),
                    job.state.as_str(),
                    job.attempts,
                    when.format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default(),
                    job.last_result.unwrap_or_default()
                );
            }
            Ok(())
        }
        OutboxCommand::Retry { ids, all_dead } => {
            let ids: Vec<JobId> = if all_dead {
                let mut reader = store.reader().await?;
                let mut all = Vec::new();
                let mut before = None;
                loop {
                    let page = reader
                        .jobs(&JobQuery {
                            state: Some(JobState::Dead),
                            before,
                            limit: 1000,
                            ..JobQuery::default()
                        })
                        .await?;
                    let Some(last) = page.last() else { break };
                    before = Some(last.id);
                    all.extend(page.iter().map(|j| j.id));
                }
                all
            } else if ids.is_empty() {
                bail!("name the jobs to retry (ids from `helpline outbox list`) or use --all-dead");
            } else {
                ids.into_iter().map(JobId).collect()
            };
            let count = ids.len();
            let requeued = store
                .write(move |tx| {
                    Box::pin(async move {
                        let now = helpline_core::now();
                        let mut requeued = Vec::new();
                        for id in ids {
                            // Dead jobs only: a done announcement sent again would mail everyone
                            // again (webhook replays are the API's redeliver).
                            let dead = tx.job(id).await?.is_some_and(|j| j.state == JobState::Dead);
                            if dead && tx.requeue_job(id, now).await? {
                                requeued.push(id);
                            }
                        }
                        Ok(requeued)
                    })
                })
                .await?;
            println!(
                "{} of {count} job(s) queued again{}",
                requeued.len(),
                if requeued.len() < count {
                    " (the others are unknown, pending or done)"
                } else {
                    ""
                }
            );
            Ok(())
        }
        OutboxCommand::Run => {
            let intake = IntakeSettings::load(&*store, config.system_addresses.clone()).await?;
            let outbox = build_outbox(config, Arc::clone(&store), &intake, holder)?;
            let mut total = helpline_outbox::RoundReport::default();
            loop {
                let report = outbox.run_round().await?;
                total.dispatched += report.dispatched;
                total.mails_sent += report.mails_sent;
                total.delivered += report.delivered;
                total.failed += report.failed;
                if report.claimed == 0 {
                    break;
                }
            }
            let purged = outbox.purge().await?;
            println!(
                "{purged} old done job(s) purged; {} change(s) dispatched, {} mail(s) sent, {} webhook delivery(ies), {} failed attempt(s)",
                total.dispatched, total.mails_sent, total.delivered, total.failed
            );
            Ok(())
        }
    }
}

/// `helpline webhook …`.
pub async fn webhook(config: &Config, command: WebhookCommand) -> Result<()> {
    let store = database::open(&config.database_url).await?;
    match command {
        WebhookCommand::Add {
            url,
            events,
            description,
            json,
        } => {
            let new = new_webhook(&url, &events, description)?;
            let secret = new.secret.clone();
            let hook = store
                .write(move |tx| {
                    Box::pin(
                        async move { Ok(tx.insert_webhook(&new, helpline_core::now()).await?) },
                    )
                })
                .await?;
            if json {
                println!("{}", serde_json::json!({"id": hook.id, "secret": secret}));
            } else {
                println!("webhook {} added for {}", hook.id, hook.url);
                println!("signing secret (shown once): {secret}");
            }
            Ok(())
        }
        WebhookCommand::List(flag) => {
            let hooks = store.reader().await?.webhooks().await?;
            if flag.json {
                println!("{}", serde_json::to_string_pretty(&hooks)?);
                return Ok(());
            }
            println!("{:>4}  {:<50} EVENTS", "ID", "URL");
            for hook in hooks {
                let events: Vec<_> = hook.events.iter().map(|e| e.as_str()).collect();
                println!("{:>4}  {:<50} {}", hook.id, hook.url, events.join(","));
            }
            Ok(())
        }
        WebhookCommand::Remove { id } => {
            let id = WebhookId(id);
            let removed = store
                .write(move |tx| Box::pin(async move { Ok(tx.delete_webhook(id).await?) }))
                .await?;
            if !removed {
                bail!("no webhook has id {id}");
            }
            println!("webhook {id} removed");
            Ok(())
        }
    }
}

/// A checked endpoint with a new secret.
fn new_webhook(url: &str, events: &[String], description: Option<String>) -> Result<NewWebhook> {
    // The API's own check, so both ways of adding an endpoint accept the same URLs.
    let url = helpline_api::v1::webhooks::check_url(url).map_err(|e| {
        anyhow!(
            "the URL {e}; give an http:// or https:// URL with a host and no credentials: '{}'",
            url.trim()
        )
    })?;
    let mut parsed = Vec::new();
    for name in events.iter().flat_map(|e| e.split(',')) {
        let event = EventType::parse(name).ok_or_else(|| {
            anyhow!(
                "unknown event '{name}'; events are {}",
                EventType::ALL.map(EventType::as_str).join(", ")
            )
        })?;
        if !parsed.contains(&event) {
            parsed.push(event);
        }
    }
    if parsed.is_empty() {
        bail!("give at least one --event");
    }
    Ok(NewWebhook {
        url,
        events: parsed,
        secret: WebhookSecret::generate().to_text(),
        description,
    })
}

/// `helpline mail test-send ADDRESS`.
pub async fn test_send(config: &Config, address: &str) -> Result<()> {
    let to = helpline_core::email::EmailAddress::parse(address)
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("'{address}' is not a valid address"))?;
    let Some(url) = config.smtp_url.as_deref() else {
        bail!("no mail server is configured: set smtp_url (HELPLINE_SMTP_URL)");
    };
    let notices = config.notice_settings()?;
    let from = notices
        .mail_from
        .clone()
        .ok_or_else(|| anyhow!("mail_from (HELPLINE_MAIL_FROM) is not set"))?;
    let transport = MailTransport::from_url(url, &config.mail_tls()?)
        .context("smtp_url (HELPLINE_SMTP_URL) cannot be used")?;
    let templates = Templates::load(config.templates_dir.as_deref())
        .context("templates_dir (HELPLINE_TEMPLATES_DIR) cannot be used")?;
    let mut context = NoticeContext::sample();
    context.desk_name = config.desk_name.clone();
    context.recipient = PersonContext {
        name: String::new(),
        email: to.to_string(),
    };
    context.entry = None;
    let rendered = templates.render(Notice::Test, &context)?;
    let domain = from
        .as_str()
        .rsplit_once('@')
        .map_or("helpline.invalid", |(_, d)| d);
    let nonce: u64 = rand_nonce();
    let message = OutgoingMail {
        from: Address::named(config.desk_name.clone(), from.to_string()),
        reply_to: None,
        to: vec![Address::bare(to.to_string())],
        subject: rendered.subject,
        text: rendered.text,
        html: Some(rendered.html),
        message_id: format!("<hl.test.{nonce:016x}@{domain}>"),
        in_reply_to: None,
        references: Vec::new(),
        auto_submitted: Some(AutoSubmitted::AutoGenerated),
        extra_headers: Vec::new(),
        attachments: Vec::new(),
    };
    let raw = render(&message)?;
    transport
        .send(from.as_str(), &[to.to_string()], &raw)
        .await
        .with_context(|| format!("sending through {} failed", transport.describe()))?;
    println!("test message sent to {to} through {}", transport.describe());
    Ok(())
}

fn rand_nonce() -> u64 {
    rand::random()
}
