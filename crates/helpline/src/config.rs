//! Configuration: built-in defaults, then the TOML file, then `HELPLINE_*` environment
//! variables, then command-line flags — each layer overriding the one before.

use anyhow::{Context, Result, bail};
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use helpline_api::{ApiSettings, CompatErrorStyle};
use helpline_core::apikey::IpRule;
use helpline_core::email::EmailAddress;
use helpline_core::notices::{DepartmentNotices, NoticeOverrides, NoticeSettings};
use helpline_core::number::{NumberFormat, Pattern};
use helpline_core::service::DeskSettings;
use helpline_mail::tls::TlsSettings;
use helpline_outbox::OutboxSettings;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Every setting, with its default. Documented in docs/configuration.md.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `sqlite://FILE` or `postgres://…`.
    pub database_url: String,
    /// Listen address of `serve`.
    pub listen: String,
    /// Proxies whose `X-Forwarded-For` is believed (addresses or CIDR blocks).
    pub trusted_proxies: Vec<String>,
    /// Largest request body, bytes.
    pub max_body_bytes: usize,
    /// Largest attachment after decoding, bytes.
    pub max_attachment_bytes: usize,
    /// `"1.16"` (400 on validation errors) or `"1.17"` (500).
    pub osticket_error_style: CompatErrorStyle,
    /// Ticket number pattern: `#` is a digit, anything else literal.
    pub ticket_number_format: String,
    /// `random` or `sequential`.
    pub ticket_number_mode: String,
    /// Requests per minute and API key on `/api/v1` (0: unlimited).
    pub rate_limit_per_minute: u32,
    /// Seconds a key read from the database is trusted before it is read again: how long a
    /// revoked key may keep working on a running server (0: read on every request).
    pub api_key_cache_seconds: u64,
    /// The desk's own mail addresses: never customers or collaborators; mail from them is our
    /// own coming back.
    pub system_addresses: Vec<String>,
    /// A PEM file of CA certificates `imaps://` and `pop3s://` mailboxes trust besides the
    /// public roots (a company CA, a test CA).
    pub mail_tls_ca_file: Option<PathBuf>,
    /// Log filter (`info`, `helpline=debug,tower_http=debug`, …).
    pub log: String,
    /// Outgoing mail: `smtp://HOST:PORT`, `smtp+starttls://…`, `smtps://…` (credentials as
    /// `smtp://USER:PASS@HOST`), or `sendmail:///usr/sbin/sendmail`. Unset: no mail is sent.
    pub smtp_url: Option<String>,
    /// The desk's sender address (also Reply-To); required with `smtp_url`.
    pub mail_from: Option<String>,
    /// The desk's name, shown as the sender's name and in mail.
    pub desk_name: String,
    /// A folder of template files overriding the built-in ones (see docs/notifications.md).
    pub templates_dir: Option<PathBuf>,
    /// Which notifications are sent, globally and per department.
    pub notifications: NotificationsConfig,
    /// Attempts before an outbox job (a mail, a webhook delivery) is parked as dead.
    pub outbox_max_attempts: u32,
    /// Seconds before the first retry; doubled after each further failure (at most 6 hours).
    pub outbox_retry_seconds: f64,
    /// Seconds a webhook receiver has to answer.
    pub webhook_timeout_seconds: u64,
}

/// `[notifications]`: the global switches, limits and per-department settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotificationsConfig {
    /// The new-ticket autoresponse to the customer.
    pub autoresponse: bool,
    /// Staff replies mailed to the customer and collaborators.
    pub staff_reply: bool,
    /// New-ticket alerts to the department's staff and the assignee.
    pub new_ticket_alert: bool,
    /// New-message alerts to the department's staff and the assignee.
    pub new_message_alert: bool,
    /// Internal-note alerts.
    pub note_alert: bool,
    /// At most this many autoresponses to one address…
    pub autoresponse_limit: u32,
    /// …within this many minutes.
    pub autoresponse_window_minutes: u32,
    /// `[notifications.departments.NAME]`: switches and sender for one department.
    pub departments: std::collections::BTreeMap<String, DepartmentNotificationsConfig>,
}

impl Default for NotificationsConfig {
    fn default() -> Self {
        Self {
            autoresponse: true,
            staff_reply: true,
            new_ticket_alert: true,
            new_message_alert: true,
            note_alert: false,
            autoresponse_limit: 10,
            autoresponse_window_minutes: 180,
            departments: std::collections::BTreeMap::new(),
        }
    }
}

/// One department's notification settings; unset switches follow the global ones.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DepartmentNotificationsConfig {
    /// The new-ticket autoresponse.
    pub autoresponse: Option<bool>,
    /// Staff replies mailed to customers.
    pub staff_reply: Option<bool>,
    /// New-ticket alerts.
    pub new_ticket_alert: Option<bool>,
    /// New-message alerts.
    pub new_message_alert: Option<bool>,
    /// Internal-note alerts.
    pub note_alert: Option<bool>,
    /// The department's sender and Reply-To address.
    pub mail_from: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        let api = ApiSettings::default();
        Self {
            database_url: "sqlite://helpline.db".into(),
            listen: "127.0.0.1:8080".into(),
            trusted_proxies: Vec::new(),
            max_body_bytes: api.max_body_bytes,
            max_attachment_bytes: api.max_attachment_bytes,
            osticket_error_style: api.compat_errors,
            rate_limit_per_minute: api.rate_limit_per_minute,
            api_key_cache_seconds: api.key_cache_ttl.as_secs(),
            system_addresses: Vec::new(),
            ticket_number_format: "######".into(),
            ticket_number_mode: "random".into(),
            mail_tls_ca_file: None,
            log: "info".into(),
            smtp_url: None,
            mail_from: None,
            desk_name: "Helpline".into(),
            templates_dir: None,
            notifications: NotificationsConfig::default(),
            outbox_max_attempts: 8,
            outbox_retry_seconds: 30.0,
            webhook_timeout_seconds: 10,
        }
    }
}

impl Config {
    /// Loads defaults < `file` < environment. A named file that does not exist is an error.
    pub fn load(file: Option<&Path>) -> Result<Self> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.is_file() {
                bail!("configuration file {} does not exist", path.display());
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        // Only the settings' own names are read from the environment: other HELPLINE_*
        // variables (HELPLINE_CONFIG, test harness variables) are not settings.
        let names = Config::setting_names();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        figment = figment.merge(Env::prefixed("HELPLINE_").only(&names));
        figment
            .extract()
            .context("invalid configuration (file or HELPLINE_* environment)")
    }

    /// The names of every setting (the keys of the TOML file).
    fn setting_names() -> Vec<String> {
        match serde_json::to_value(Config::default()) {
            Ok(serde_json::Value::Object(map)) => map.keys().cloned().collect(),
            _ => Vec::new(),
        }
    }

    /// The desk rules this configuration describes, for a command that leaves mail to the
    /// outbox worker of `helpline serve` (`pipe`, `mail fetch`, `mail quarantine retry`): its
    /// changes ask for every mail they may cause, and the worker's own settings decide — the
    /// mail server may be set only in the environment `serve` runs in.
    pub fn desk_settings(&self) -> Result<DeskSettings> {
        let pattern: Pattern = self
            .ticket_number_format
            .parse()
            .map_err(anyhow::Error::msg)
            .context("ticket_number_format")?;
        let number_format = match self.ticket_number_mode.as_str() {
            "random" => NumberFormat::Random(pattern),
            "sequential" => NumberFormat::Sequential(pattern),
            other => bail!("ticket_number_mode must be 'random' or 'sequential', not '{other}'"),
        };
        Ok(DeskSettings {
            number_format,
            sends_mail: true,
        })
    }

    /// The desk rules for `helpline serve`, which runs the outbox worker with this
    /// configuration: without a mail server (the rule of `NoticeSettings::enabled`) its changes
    /// ask for no mail, so that those no webhook hears are not announced at all.
    pub fn serve_desk_settings(&self) -> Result<DeskSettings> {
        Ok(DeskSettings {
            sends_mail: self.smtp_url.is_some(),
            ..self.desk_settings()?
        })
    }

    /// The HTTP settings this configuration describes.
    pub fn api_settings(&self) -> Result<ApiSettings> {
        let trusted_proxies = self
            .trusted_proxies
            .iter()
            .map(|raw| raw.parse::<IpRule>().map_err(anyhow::Error::msg))
            .collect::<Result<Vec<_>>>()
            .context("trusted_proxies")?;
        if self.max_attachment_bytes == 0 || self.max_body_bytes == 0 {
            bail!("max_body_bytes and max_attachment_bytes must be above 0");
        }
        Ok(ApiSettings {
            trusted_proxies,
            max_body_bytes: self.max_body_bytes,
            max_attachment_bytes: self.max_attachment_bytes,
            compat_errors: self.osticket_error_style,
            rate_limit_per_minute: self.rate_limit_per_minute,
            key_cache_ttl: std::time::Duration::from_secs(self.api_key_cache_seconds),
        })
    }

    /// Who is mailed about what. Mail is on only with `smtp_url`, which then needs `mail_from`.
    pub fn notice_settings(&self) -> Result<NoticeSettings> {
        let address = |raw: &str, setting: &str| {
            EmailAddress::parse(raw)
                .map_err(anyhow::Error::msg)
                .with_context(|| format!("{setting} is not a valid address"))
        };
        let mail_from = self
            .mail_from
            .as_deref()
            .map(|raw| address(raw, "mail_from (HELPLINE_MAIL_FROM)"))
            .transpose()?;
        if self.smtp_url.is_some() && mail_from.is_none() {
            bail!("mail_from (HELPLINE_MAIL_FROM) is required when smtp_url is set");
        }
        let n = &self.notifications;
        let mut departments = std::collections::BTreeMap::new();
        for (name, d) in &n.departments {
            let mail_from = d
                .mail_from
                .as_deref()
                .map(|raw| address(raw, &format!("notifications.departments.{name}.mail_from")))
                .transpose()?;
            departments.insert(
                name.clone(),
                DepartmentNotices {
                    switches: NoticeOverrides {
                        autoresponse: d.autoresponse,
                        staff_reply: d.staff_reply,
                        new_ticket_alert: d.new_ticket_alert,
                        new_message_alert: d.new_message_alert,
                        note_alert: d.note_alert,
                    },
                    mail_from,
                },
            );
        }
        // Done jobs are purged after 7 days, so a longer window could not be counted.
        if n.autoresponse_window_minutes == 0 || n.autoresponse_window_minutes > 7 * 24 * 60 {
            bail!("notifications.autoresponse_window_minutes must be between 1 and 10080 (7 days)");
        }
        Ok(NoticeSettings {
            enabled: self.smtp_url.is_some(),
            switches: NoticeOverrides {
                autoresponse: Some(n.autoresponse),
                staff_reply: Some(n.staff_reply),
                new_ticket_alert: Some(n.new_ticket_alert),
                new_message_alert: Some(n.new_message_alert),
                note_alert: Some(n.note_alert),
            },
            departments,
            mail_from,
            system_addresses: self
                .system_addresses
                .iter()
                .map(|a| a.trim().to_ascii_lowercase())
                .collect(),
            autoresponse_limit: n.autoresponse_limit,
            autoresponse_window_minutes: n.autoresponse_window_minutes,
        })
    }

    /// How the outbox worker runs on node `holder`.
    pub fn outbox_settings(&self, holder: String) -> Result<OutboxSettings> {
        if !(self.outbox_retry_seconds.is_finite() && self.outbox_retry_seconds > 0.0) {
            bail!("outbox_retry_seconds must be a number above 0");
        }
        if self.outbox_max_attempts == 0 {
            bail!("outbox_max_attempts must be at least 1");
        }
        if !(1..=60).contains(&self.webhook_timeout_seconds) {
            bail!("webhook_timeout_seconds must be between 1 and 60");
        }
        Ok(OutboxSettings {
            holder,
            max_attempts: self.outbox_max_attempts,
            retry_base: std::time::Duration::from_secs_f64(self.outbox_retry_seconds),
            ..OutboxSettings::default()
        })
    }

    /// Which servers TLS mailboxes trust: the public roots, plus `mail_tls_ca_file`'s
    /// certificates when it is set. A file that cannot be used is an error naming the setting.
    pub fn mail_tls(&self) -> Result<TlsSettings> {
        TlsSettings::load(self.mail_tls_ca_file.as_deref())
            .context("mail_tls_ca_file (HELPLINE_MAIL_TLS_CA_FILE) cannot be used")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_serve_without_a_mail_server_asks_for_no_mail() {
        let mut config = Config::default();
        assert!(!config.serve_desk_settings().expect("valid").sends_mail);
        assert!(
            config.desk_settings().expect("valid").sends_mail,
            "pipe and mail fetch leave the decision to serve's worker"
        );
        config.smtp_url = Some("smtp://127.0.0.1:2525".into());
        assert!(config.serve_desk_settings().expect("valid").sends_mail);
        assert!(config.desk_settings().expect("valid").sends_mail);
    }
}
