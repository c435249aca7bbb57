//! Configuration: built-in defaults, then the TOML file, then `HELPLINE_*` environment
//! variables, then command-line flags — each layer overriding the one before.

use anyhow::{Context, Result, bail};
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use helpline_api::{ApiSettings, CompatErrorStyle};
use helpline_core::apikey::IpRule;
use helpline_core::number::{NumberFormat, Pattern};
use helpline_core::service::DeskSettings;
use helpline_mail::tls::TlsSettings;
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
    /// The desk's own mail addresses: never customers or collaborators; mail from them is our
    /// own coming back.
    pub system_addresses: Vec<String>,
    /// A PEM file of CA certificates `imaps://` and `pop3s://` mailboxes trust besides the
    /// public roots (a company CA, a test CA).
    pub mail_tls_ca_file: Option<PathBuf>,
    /// Log filter (`info`, `helpline=debug,tower_http=debug`, …).
    pub log: String,
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
            system_addresses: Vec::new(),
            ticket_number_format: "######".into(),
            ticket_number_mode: "random".into(),
            mail_tls_ca_file: None,
            log: "info".into(),
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

    /// The desk rules this configuration describes.
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
        Ok(DeskSettings { number_format })
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
        })
    }

    /// Which servers TLS mailboxes trust: the public roots, plus `mail_tls_ca_file`'s
    /// certificates when it is set. A file that cannot be used is an error naming the setting.
    pub fn mail_tls(&self) -> Result<TlsSettings> {
        TlsSettings::load(self.mail_tls_ca_file.as_deref())
            .context("mail_tls_ca_file (HELPLINE_MAIL_TLS_CA_FILE) cannot be used")
    }
}
