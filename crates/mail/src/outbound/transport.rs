//! Delivery of rendered mail: to an SMTP server (lettre's async SMTP client, with connections
//! kept open for the next message) or to the local `sendmail` program.
//!
//! The transport is configured by one URL (see [`MailTransport::from_url`]). Failures come
//! back as [`SendError::Permanent`] (the server refused the message for good: retrying the
//! same message cannot help) or [`SendError::Transient`] (try again later).
//!
//! TLS (`smtps://`, `smtp+starttls://`) trusts what the IMAP and POP3 clients trust: the public
//! roots of `webpki-roots` plus the certificates of `mail_tls_ca_file`
//! ([`TlsSettings::extra_root_certificates`]), with the server's certificate verified against
//! the host name (or IP address) of the URL. lettre 0.11 cannot take a rustls `ClientConfig`,
//! so it is given the same trust anchors and builds its own configuration (rustls with the
//! *ring* provider, TLS 1.2 and 1.3).
//!
//! Time limits: lettre bounds only the TCP connect, so every step is bounded here — opening a
//! session (connect, greeting, EHLO, STARTTLS, AUTH) and checking an idle one each take at most
//! the timeout (30 s by default), a transaction (MAIL, RCPT, DATA and the message) the timeout
//! once per started MiB of message. A session that runs out of time is dropped, never reused.
//! lettre's own connection pool is not used for this reason: a send it runs cannot be cut
//! short without the half-used connection going back into its pool.

use std::fmt;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{
    AsyncSmtpConnection, Certificate, CertificateStore, TlsParameters,
};
use lettre::transport::smtp::extension::ClientId;
use percent_encoding::percent_decode_str;
use tokio::io::AsyncWriteExt;

use crate::tls::TlsSettings;

/// How long connecting, each SMTP exchange or a `sendmail` run may take by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The program `sendmail:` (without a path) runs.
pub const DEFAULT_SENDMAIL: &str = "/usr/sbin/sendmail";

/// An SMTP session unused for longer is closed rather than reused (servers drop idle clients
/// after a few minutes; RFC 5321 asks them to wait at least five).
const IDLE_LIMIT: Duration = Duration::from_secs(60);

/// At most this many idle SMTP sessions are kept open.
const MAX_IDLE_SESSIONS: usize = 16;

/// A transaction may take the timeout once per started MiB of message.
const BYTES_PER_TIMEOUT: usize = 1024 * 1024;

/// Where outgoing mail goes.
#[derive(Debug)]
pub enum MailTransport {
    /// An SMTP server.
    Smtp(SmtpTransport),
    /// The local `sendmail` program (Postfix, Exim, … all provide one).
    Sendmail(SendmailTransport),
}

/// How an SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// `smtp://`: no TLS at all (a relay on the same host or network).
    Plain,
    /// `smtp+starttls://`: STARTTLS, required (no fallback to plain text).
    StartTls,
    /// `smtps://`: TLS from the first byte (implicit TLS, "submissions").
    ImplicitTls,
}

impl SmtpSecurity {
    fn scheme(self) -> &'static str {
        match self {
            SmtpSecurity::Plain => "smtp",
            SmtpSecurity::StartTls => "smtp+starttls",
            SmtpSecurity::ImplicitTls => "smtps",
        }
    }

    fn default_port(self) -> u16 {
        match self {
            SmtpSecurity::Plain => 25,
            SmtpSecurity::StartTls => 587,
            SmtpSecurity::ImplicitTls => 465,
        }
    }
}

/// An SMTP server and how to reach it. Sessions are kept open after a send (a few, for a
/// minute) and reused by the next; concurrent sends each use their own session.
pub struct SmtpTransport {
    host: String,
    port: u16,
    security: SmtpSecurity,
    user: Option<String>,
    credentials: Option<Credentials>,
    helo: Option<String>,
    hello_name: ClientId,
    tls: Option<TlsParameters>,
    timeout: Duration,
    idle: Mutex<Vec<IdleSession>>,
}

/// An open, authenticated SMTP session between two messages.
struct IdleSession {
    connection: AsyncSmtpConnection,
    since: Instant,
}

impl fmt::Debug for SmtpTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the password: only what `describe` shows.
        f.debug_struct("SmtpTransport")
            .field("url", &self.describe())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The local `sendmail` program.
#[derive(Debug, Clone)]
pub struct SendmailTransport {
    program: PathBuf,
    timeout: Duration,
}

/// Why a transport URL cannot be used. Never contains the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// It is not a URL.
    #[error("the mail transport URL cannot be parsed: {reason}")]
    InvalidUrl {
        /// What the URL parser said.
        reason: String,
    },
    /// Its scheme is none of ours.
    #[error(
        "the mail transport URL scheme {scheme:?} is not supported: use smtp://, \
         smtp+starttls://, smtps:// or sendmail:"
    )]
    UnknownScheme {
        /// The scheme given.
        scheme: String,
    },
    /// An SMTP URL without a host.
    #[error("the {scheme}:// URL names no host")]
    MissingHost {
        /// The scheme.
        scheme: String,
    },
    /// A user without a password, or the other way round.
    #[error("the mail transport URL has {what}: give both as user:password@host, or neither")]
    IncompleteCredentials {
        /// `a user but no password`, or `a password but no user`.
        what: &'static str,
    },
    /// Part of the URL means nothing for this transport.
    #[error("the {scheme} URL cannot have {part}")]
    UnexpectedPart {
        /// The scheme.
        scheme: String,
        /// What is there: `a path`, `a fragment`, `a host`, …
        part: String,
    },
    /// A query parameter other than `helo`.
    #[error("the mail transport URL parameter {name:?} is unknown (only helo=NAME is)")]
    UnknownParameter {
        /// The parameter's name.
        name: String,
    },
    /// `helo=` is not a host name.
    #[error("helo={value:?} is not a host name")]
    InvalidHelo {
        /// The value given.
        value: String,
    },
    /// The TLS configuration cannot be built from the trusted certificates.
    #[error("the TLS configuration for {host} cannot be built: {reason}")]
    Tls {
        /// The server.
        host: String,
        /// What went wrong.
        reason: String,
    },
}

/// Why a message was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Refused for good: an SMTP 5xx reply (an unknown recipient, a message refused as too
    /// large or as spam), an address that is not one, `sendmail` exiting with "no such user"
    /// and the like. Sending the same message again cannot succeed.
    #[error("permanent failure: {0}")]
    Permanent(String),
    /// Worth trying again later: the server cannot be reached or did not answer in time, a
    /// 4xx reply, a TLS failure, refused credentials (a configuration error, not the
    /// message's), `sendmail` missing or failing temporarily.
    #[error("temporary failure: {0}")]
    Transient(String),
}

impl SendError {
    /// Whether it is [`SendError::Permanent`].
    pub fn is_permanent(&self) -> bool {
        matches!(self, SendError::Permanent(_))
    }
}

impl MailTransport {
    /// A transport from a URL:
    ///
    /// - `smtp://HOST[:PORT]` plain SMTP (port 25), `smtp+starttls://HOST[:PORT]` STARTTLS
    ///   required (587), `smtps://HOST[:PORT]` implicit TLS (465); credentials as
    ///   `smtp://USER:PASSWORD@HOST` (percent-encoded: `%40` for `@`); `?helo=NAME` sets the
    ///   name sent with EHLO (default: this machine's host name). IPv6 hosts in brackets.
    /// - `sendmail:///path/to/sendmail`, or `sendmail:` for [`DEFAULT_SENDMAIL`].
    ///
    /// `tls` is the trust used for TLS (`mail_tls_ca_file`). Errors say what is wrong and
    /// never repeat the password. Nothing is connected yet.
    pub fn from_url(url: &str, tls: &TlsSettings) -> Result<Self, TransportError> {
        let parsed = url::Url::parse(url.trim()).map_err(|error| TransportError::InvalidUrl {
            reason: error.to_string(),
        })?;
        let security = match parsed.scheme() {
            "smtp" => SmtpSecurity::Plain,
            "smtp+starttls" => SmtpSecurity::StartTls,
            "smtps" => SmtpSecurity::ImplicitTls,
            "sendmail" => {
                return Ok(MailTransport::Sendmail(SendmailTransport::from_url(
                    &parsed,
                )?));
            }
            other => {
                return Err(TransportError::UnknownScheme {
                    scheme: other.to_owned(),
                });
            }
        };
        Ok(MailTransport::Smtp(SmtpTransport::from_url(
            &parsed, security, tls,
        )?))
    }

    /// Sets the time limit (default [`DEFAULT_TIMEOUT`]): for SMTP, of opening a session and
    /// of each transaction per started MiB of message; for `sendmail`, of each run.
    pub fn with_timeout(self, timeout: Duration) -> Self {
        match self {
            MailTransport::Smtp(mut smtp) => {
                smtp.timeout = timeout;
                MailTransport::Smtp(smtp)
            }
            MailTransport::Sendmail(mut sendmail) => {
                sendmail.timeout = timeout;
                MailTransport::Sendmail(sendmail)
            }
        }
    }

    /// Delivers `raw` (an RFC 5322 message; CRLF line ends, bare LFs are made CRLF for SMTP)
    /// to `recipients` with `envelope_from` as the return path; an empty `envelope_from` (or
    /// `<>`) sends with the null return path, which bounces never answer.
    ///
    /// With SMTP, one refused recipient fails the whole send (permanently for a 5xx): call it
    /// once per recipient when they should succeed or fail independently.
    pub async fn send(
        &self,
        envelope_from: &str,
        recipients: &[String],
        raw: &[u8],
    ) -> Result<(), SendError> {
        let envelope = envelope(envelope_from, recipients)?;
        match self {
            MailTransport::Smtp(smtp) => smtp.send(&envelope, raw).await,
            MailTransport::Sendmail(sendmail) => sendmail.send(&envelope, raw).await,
        }
    }

    /// The transport for logs: its URL with the password replaced by `***`.
    pub fn describe(&self) -> String {
        match self {
            MailTransport::Smtp(smtp) => smtp.describe(),
            MailTransport::Sendmail(sendmail) => sendmail.describe(),
        }
    }
}

/// The SMTP envelope: checked addresses, none for the null return path.
fn envelope(
    envelope_from: &str,
    recipients: &[String],
) -> Result<lettre::address::Envelope, SendError> {
    let from = match envelope_from.trim() {
        "" | "<>" => None,
        address => Some(parse_address("envelope sender", address)?),
    };
    let to = recipients
        .iter()
        .map(|recipient| parse_address("recipient", recipient))
        .collect::<Result<Vec<_>, _>>()?;
    lettre::address::Envelope::new(from, to)
        .map_err(|error| SendError::Permanent(format!("the envelope cannot be used: {error}")))
}

fn parse_address(role: &str, address: &str) -> Result<lettre::Address, SendError> {
    address
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .parse()
        .map_err(|error| {
            SendError::Permanent(format!("{role} {address:?} is not an address: {error}"))
        })
}

impl SmtpTransport {
    fn from_url(
        url: &url::Url,
        security: SmtpSecurity,
        tls: &TlsSettings,
    ) -> Result<Self, TransportError> {
        let scheme = security.scheme();
        let unexpected = |part: &str| TransportError::UnexpectedPart {
            scheme: format!("{scheme}://"),
            part: part.to_owned(),
        };
        let host = url
            .host_str()
            .filter(|host| !host.is_empty())
            .ok_or_else(|| TransportError::MissingHost {
                scheme: scheme.to_owned(),
            })?;
        // IPv6 addresses come in brackets; socket addresses and certificate names take them
        // without.
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let host = percent_decode_str(host).decode_utf8_lossy().into_owned();
        if !matches!(url.path(), "" | "/") {
            return Err(unexpected("a path"));
        }
        if url.fragment().is_some() {
            return Err(unexpected("a fragment"));
        }
        let user = percent_decode_str(url.username())
            .decode_utf8_lossy()
            .into_owned();
        let password = url.password().map(|password| {
            percent_decode_str(password)
                .decode_utf8_lossy()
                .into_owned()
        });
        let credentials = match (user.is_empty(), password) {
            (true, None) => None,
            (false, Some(password)) => Some(Credentials::new(user.clone(), password)),
            (false, None) => {
                return Err(TransportError::IncompleteCredentials {
                    what: "a user but no password",
                });
            }
            (true, Some(_)) => {
                return Err(TransportError::IncompleteCredentials {
                    what: "a password but no user",
                });
            }
        };
        let mut helo = None;
        for (name, value) in url.query_pairs() {
            if name != "helo" {
                return Err(TransportError::UnknownParameter {
                    name: name.into_owned(),
                });
            }
            // A domain, or an address literal such as [192.0.2.1].
            let valid = !value.is_empty()
                && value.chars().all(|c| {
                    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '[' | ']' | ':')
                });
            if !valid {
                return Err(TransportError::InvalidHelo {
                    value: value.into_owned(),
                });
            }
            helo = Some(value.into_owned());
        }
        let tls_parameters = match security {
            SmtpSecurity::Plain => None,
            SmtpSecurity::StartTls | SmtpSecurity::ImplicitTls => Some(tls_parameters(&host, tls)?),
        };
        Ok(Self {
            port: url.port().unwrap_or(security.default_port()),
            host,
            security,
            user: credentials.as_ref().map(|_| user),
            credentials,
            hello_name: helo
                .clone()
                .map_or_else(ClientId::default, ClientId::Domain),
            helo,
            tls: tls_parameters,
            timeout: DEFAULT_TIMEOUT,
            idle: Mutex::new(Vec::new()),
        })
    }

    fn describe(&self) -> String {
        let credentials = match &self.user {
            Some(user) => format!(
                "{}:***@",
                percent_encoding::utf8_percent_encode(user, USERINFO)
            ),
            None => String::new(),
        };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let helo = self
            .helo
            .as_ref()
            .map(|helo| format!("?helo={helo}"))
            .unwrap_or_default();
        format!(
            "{}://{credentials}{host}:{}{helo}",
            self.security.scheme(),
            self.port
        )
    }

    async fn send(
        &self,
        envelope: &lettre::address::Envelope,
        raw: &[u8],
    ) -> Result<(), SendError> {
        let message = smtp_data(raw);
        let mut connection = self.session().await?;
        let periods = u32::try_from(message.len() / BYTES_PER_TIMEOUT + 1).unwrap_or(u32::MAX);
        let allowed = self.timeout.checked_mul(periods).unwrap_or(Duration::MAX);
        match tokio::time::timeout(allowed, connection.send(envelope, &message)).await {
            Ok(Ok(_)) => {
                self.park(connection);
                Ok(())
            }
            // lettre has closed a session that failed: it is dropped.
            Ok(Err(error)) => Err(classify(&error)),
            Err(_) => Err(SendError::Transient(format!(
                "{} did not finish the transaction within {allowed:?}",
                self.describe()
            ))),
        }
    }

    /// An idle session that still answers, or a new one.
    async fn session(&self) -> Result<AsyncSmtpConnection, SendError> {
        while let Some(mut idle) = self.take_idle() {
            let alive = tokio::time::timeout(self.timeout, idle.connection.test_connected()).await;
            if matches!(alive, Ok(true)) {
                return Ok(idle.connection);
            }
        }
        match tokio::time::timeout(self.timeout, self.connect()).await {
            Ok(Ok(connection)) => Ok(connection),
            Ok(Err(error)) => Err(error),
            Err(_) => Err(SendError::Transient(format!(
                "{} did not open an SMTP session within {:?}",
                self.describe(),
                self.timeout
            ))),
        }
    }

    /// Connect, greeting, EHLO, STARTTLS (and EHLO again), AUTH.
    async fn connect(&self) -> Result<AsyncSmtpConnection, SendError> {
        let lettre_error = |error: lettre::transport::smtp::Error| classify(&error);
        let mut connection = match self.security {
            SmtpSecurity::ImplicitTls => AsyncSmtpConnection::connect_tokio1(
                (self.host.as_str(), self.port),
                Some(self.timeout),
                &self.hello_name,
                self.tls.clone(),
                None,
            )
            .await
            .map_err(lettre_error)?,
            SmtpSecurity::Plain | SmtpSecurity::StartTls => {
                // Our own socket, for TCP_NODELAY: lettre writes a message's end-of-data line
                // apart from its body, and with Nagle's algorithm that small write waits for
                // the server's delayed ACK (40 ms on Linux) — per message, on a fast local
                // relay the whole cost of sending. (lettre's own connect leaves Nagle on; its
                // implicit-TLS path above still has the delay.)
                let stream = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
                    .await
                    .map_err(|e| {
                        SendError::Transient(format!("cannot connect to {}: {e}", self.describe()))
                    })?;
                stream.set_nodelay(true).map_err(|e| {
                    SendError::Transient(format!("cannot set up the connection: {e}"))
                })?;
                AsyncSmtpConnection::connect_with_transport(Box::new(stream), &self.hello_name)
                    .await
                    .map_err(lettre_error)?
            }
        };
        if let (SmtpSecurity::StartTls, Some(tls)) = (self.security, &self.tls) {
            // Fails when the server does not offer STARTTLS: no fallback to plain text.
            connection
                .starttls(tls.clone(), &self.hello_name)
                .await
                .map_err(lettre_error)?;
        }
        if let Some(credentials) = &self.credentials {
            connection
                .auth(DEFAULT_MECHANISMS, credentials)
                .await
                .map_err(lettre_error)?;
        }
        Ok(connection)
    }

    /// The oldest-parked session not idle for too long; the stale ones are dropped.
    fn take_idle(&self) -> Option<IdleSession> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        idle.retain(|session| session.since.elapsed() < IDLE_LIMIT);
        idle.pop()
    }

    /// Keeps a session that ended a transaction cleanly for the next send.
    fn park(&self, connection: AsyncSmtpConnection) {
        if connection.has_broken() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE_SESSIONS {
            idle.push(IdleSession {
                connection,
                since: Instant::now(),
            });
        }
    }
}

/// `raw` as SMTP DATA wants it: CRLF line ends, and without its final CRLF, since lettre
/// always ends the data with CRLF "." CRLF (which would otherwise add an empty line).
fn smtp_data(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 32);
    let mut previous = 0u8;
    for &byte in raw {
        if byte == b'\n' && previous != b'\r' {
            out.push(b'\r');
        }
        out.push(byte);
        previous = byte;
    }
    if out.ends_with(b"\r\n") {
        out.truncate(out.len() - 2);
    }
    out
}

/// Characters escaped in a user name shown in a URL.
const USERINFO: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// lettre's TLS parameters for `host`, trusting the public roots and the CA file's
/// certificates — the trust of [`TlsSettings`].
fn tls_parameters(host: &str, tls: &TlsSettings) -> Result<TlsParameters, TransportError> {
    let tls_error = |error: lettre::transport::smtp::Error| TransportError::Tls {
        host: host.to_owned(),
        reason: error.to_string(),
    };
    let mut builder =
        TlsParameters::builder(host.to_owned()).certificate_store(CertificateStore::WebpkiRoots);
    for certificate in tls.extra_root_certificates() {
        builder = builder.add_root_certificate(
            Certificate::from_der(certificate.as_ref().to_vec()).map_err(tls_error)?,
        );
    }
    builder.build_rustls().map_err(tls_error)
}

/// SMTP reply codes that refuse our credentials, not the message: fixing the configuration
/// makes the same message go through.
const AUTHENTICATION_CODES: [&str; 4] = ["530", "534", "535", "538"];

/// A lettre error → permanent (a 5xx reply) or transient (all else).
fn classify(error: &lettre::transport::smtp::Error) -> SendError {
    let mut text = error.to_string();
    let code = error.status().map(|code| code.to_string());
    let refused_certificate = error.is_tls() || text.contains("certificate");
    if refused_certificate && !error.is_permanent() && !error.is_transient() {
        text.push_str(
            " (the server's certificate is not trusted for this host; a certificate from a \
             private CA needs that CA in mail_tls_ca_file)",
        );
    }
    let authentication = code
        .as_deref()
        .is_some_and(|code| AUTHENTICATION_CODES.contains(&code));
    if authentication {
        SendError::Transient(format!("{text} (the SMTP server refused the credentials)"))
    } else if error.is_permanent() {
        SendError::Permanent(text)
    } else {
        SendError::Transient(text)
    }
}

impl SendmailTransport {
    fn from_url(url: &url::Url) -> Result<Self, TransportError> {
        let unexpected = |part: &str| TransportError::UnexpectedPart {
            scheme: "sendmail:".to_owned(),
            part: part.to_owned(),
        };
        if url.host_str().is_some_and(|host| !host.is_empty()) {
            return Err(unexpected("a host (write sendmail:///path/to/sendmail)"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(unexpected("credentials"));
        }
        if url.query().is_some() {
            return Err(unexpected("a query"));
        }
        if url.fragment().is_some() {
            return Err(unexpected("a fragment"));
        }
        let path = percent_decode_str(url.path())
            .decode_utf8_lossy()
            .into_owned();
        let program = if path.is_empty() || path == "/" {
            PathBuf::from(DEFAULT_SENDMAIL)
        } else {
            PathBuf::from(path)
        };
        Ok(Self {
            program,
            timeout: DEFAULT_TIMEOUT,
        })
    }

    fn describe(&self) -> String {
        format!("sendmail://{}", self.program.display())
    }

    /// Runs `sendmail -i -f FROM -- RECIPIENTS…` with the message on its standard input.
    async fn send(
        &self,
        envelope: &lettre::address::Envelope,
        raw: &[u8],
    ) -> Result<(), SendError> {
        let program = self.program.display().to_string();
        let from = envelope
            .from()
            .map_or_else(|| "<>".to_owned(), ToString::to_string);
        let mut child = tokio::process::Command::new(&self.program)
            // -i: a line with a single dot is text, not the end of the message.
            .arg("-i")
            .arg("-f")
            .arg(from)
            // Recipients after `--` can never be read as options.
            .arg("--")
            .args(envelope.to().iter().map(ToString::to_string))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|error| SendError::Transient(format!("cannot run {program}: {error}")))?;
        // The local submission format is a text file: LF line ends.
        let message = crlf_to_lf(raw);
        let stdin = child.stdin.take();
        let write = async move {
            match stdin {
                Some(mut stdin) => {
                    let written = stdin.write_all(&message).await;
                    drop(stdin);
                    written
                }
                None => Ok(()),
            }
        };
        let run = async { tokio::join!(write, child.wait_with_output()) };
        let (written, output) = tokio::time::timeout(self.timeout, run).await.map_err(|_| {
            SendError::Transient(format!(
                "{program} did not finish within {:?} (stopped)",
                self.timeout
            ))
        })?;
        let output =
            output.map_err(|error| SendError::Transient(format!("{program} failed: {error}")))?;
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        match output.status.code() {
            Some(0) => written.map_err(|error| {
                SendError::Transient(format!(
                    "{program} exited before reading the whole message: {error}"
                ))
            }),
            Some(code) => {
                let text = format!(
                    "{program} exited with status {code} ({}){}",
                    sysexits_name(code),
                    if stderr.is_empty() {
                        String::new()
                    } else {
                        format!(": {stderr}")
                    }
                );
                if is_permanent_exit(code) {
                    Err(SendError::Permanent(text))
                } else {
                    Err(SendError::Transient(text))
                }
            }
            None => Err(SendError::Transient(format!(
                "{program} was killed by a signal{}",
                if stderr.is_empty() {
                    String::new()
                } else {
                    format!(": {stderr}")
                }
            ))),
        }
    }
}

/// `sysexits.h` codes that refuse the message or its addresses (sendmail, Postfix and Exim
/// use them): EX_USAGE, EX_DATAERR, EX_NOINPUT, EX_NOUSER, EX_NOHOST. The others
/// (EX_UNAVAILABLE, EX_SOFTWARE, EX_OSERR, EX_TEMPFAIL, EX_CONFIG, …) are the system's.
fn is_permanent_exit(code: i32) -> bool {
    matches!(code, 64..=68)
}

fn sysexits_name(code: i32) -> &'static str {
    match code {
        64 => "EX_USAGE",
        65 => "EX_DATAERR",
        66 => "EX_NOINPUT",
        67 => "EX_NOUSER",
        68 => "EX_NOHOST",
        69 => "EX_UNAVAILABLE",
        70 => "EX_SOFTWARE",
        71 => "EX_OSERR",
        72 => "EX_OSFILE",
        73 => "EX_CANTCREAT",
        74 => "EX_IOERR",
        75 => "EX_TEMPFAIL",
        76 => "EX_PROTOCOL",
        77 => "EX_NOPERM",
        78 => "EX_CONFIG",
        _ => "failure",
    }
}

fn crlf_to_lf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut bytes = raw.iter().peekable();
    while let Some(&byte) = bytes.next() {
        if byte == b'\r' && bytes.peek() == Some(&&b'\n') {
            continue;
        }
        out.push(byte);
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, BufReader};
    use tokio::net::{TcpListener, TcpStream};
    use tokio_rustls::TlsAcceptor;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use tokio_rustls::rustls::{self, ServerConfig};

    use super::*;

    /// The throwaway test CA, and a server certificate for 127.0.0.1 and localhost it signed.
    const TEST_CA: &[u8] = include_bytes!("../../tests/data/test-ca.pem");
    const TEST_SERVER_CERT: &[u8] = include_bytes!("../../tests/data/test-server.pem");
    const TEST_SERVER_KEY: &[u8] = include_bytes!("../../tests/data/test-server.key");

    const RAW: &[u8] = b"From: desk@desk.example\r\nTo: user@example.com\r\nSubject: hi\r\n\r\n\
Hello.\r\n.a line that starts with a dot\r\n.\r\nbye\r\n";

    fn ca() -> TlsSettings {
        TlsSettings::with_extra_pem(TEST_CA, std::path::Path::new("test-ca.pem")).expect("CA")
    }

    fn acceptor() -> TlsAcceptor {
        let chain = CertificateDer::pem_slice_iter(TEST_SERVER_CERT)
            .collect::<Result<Vec<_>, _>>()
            .expect("server certificate");
        let key = PrivateKeyDer::from_pem_slice(TEST_SERVER_KEY).expect("server key");
        let config =
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_no_client_auth()
                .with_single_cert(chain, key)
                .expect("server config");
        TlsAcceptor::from(Arc::new(config))
    }

    /// How the fake server secures its sessions.
    #[derive(Clone)]
    enum Security {
        Plain,
        /// Offers STARTTLS (and AUTH only after it).
        StartTls(TlsAcceptor),
        Implicit(TlsAcceptor),
        /// Accepts the connection and never says anything.
        Silent,
    }

    /// What one session saw.
    #[derive(Debug, Default, Clone)]
    struct Session {
        commands: Vec<String>,
        messages: Vec<Vec<u8>>,
        tls: bool,
        auth: Option<String>,
    }

    #[derive(Clone)]
    struct FakeSmtp {
        port: u16,
        sessions: Arc<Mutex<Vec<Session>>>,
    }

    impl FakeSmtp {
        fn sessions(&self) -> Vec<Session> {
            self.sessions.lock().expect("lock").clone()
        }
    }

    /// A scripted SMTP server on loopback: recipients containing `unknown` get 550, `busy`
    /// 451, `stall` no answer at all; AUTH PLAIN succeeds for `\0user@example.com\0p:ss@w/rd`.
    async fn fake_smtp(security: Security) -> FakeSmtp {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let local = listener.local_addr().expect("addr");
        let sessions = Arc::new(Mutex::new(Vec::new()));
        let server = FakeSmtp {
            port: local.port(),
            sessions: Arc::clone(&sessions),
        };
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let sessions = Arc::clone(&sessions);
                let security = security.clone();
                tokio::spawn(async move {
                    let index = {
                        let mut sessions = sessions.lock().expect("lock");
                        sessions.push(Session::default());
                        sessions.len() - 1
                    };
                    let record = Recorder { sessions, index };
                    serve(tcp, security, record).await;
                });
            }
        });
        server
    }

    struct Recorder {
        sessions: Arc<Mutex<Vec<Session>>>,
        index: usize,
    }

    impl Recorder {
        fn with(&self, change: impl FnOnce(&mut Session)) {
            if let Some(session) = self.sessions.lock().expect("lock").get_mut(self.index) {
                change(session);
            }
        }
    }

    async fn serve(tcp: TcpStream, security: Security, record: Recorder) {
        match security {
            Security::Silent => {
                tokio::time::sleep(Duration::from_secs(30)).await;
            }
            Security::Plain => {
                let mut reader = BufReader::new(tcp);
                greet(&mut reader).await;
                dialogue(&mut reader, &record, false, false).await;
            }
            Security::Implicit(acceptor) => {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                record.with(|s| s.tls = true);
                let mut reader = BufReader::new(tls);
                greet(&mut reader).await;
                dialogue(&mut reader, &record, false, true).await;
            }
            Security::StartTls(acceptor) => {
                let mut reader = BufReader::new(tcp);
                greet(&mut reader).await;
                if dialogue(&mut reader, &record, true, false).await {
                    let Ok(tls) = acceptor.accept(reader.into_inner()).await else {
                        return;
                    };
                    record.with(|s| s.tls = true);
                    dialogue(&mut BufReader::new(tls), &record, false, true).await;
                }
            }
        }
    }

    async fn greet<S: AsyncRead + AsyncWrite + Unpin>(reader: &mut BufReader<S>) {
        let _ = reader.get_mut().write_all(b"220 fake.test ESMTP\r\n").await;
    }

    /// Runs SMTP commands until QUIT or the end; true when STARTTLS was accepted.
    async fn dialogue<S: AsyncRead + AsyncWrite + Unpin>(
        reader: &mut BufReader<S>,
        record: &Recorder,
        offer_starttls: bool,
        offer_auth: bool,
    ) -> bool {
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line).await {
                Ok(0) | Err(_) => return false,
                Ok(_) => {}
            }
            let command = line.trim_end().to_owned();
            record.with(|s| s.commands.push(command.clone()));
            let upper = command.to_ascii_uppercase();
            let reply: String = if upper.starts_with("EHLO") {
                let mut reply = "250-fake.test\r\n".to_owned();
                if offer_starttls {
                    reply.push_str("250-STARTTLS\r\n");
                }
                if offer_auth {
                    reply.push_str("250-AUTH PLAIN LOGIN\r\n");
                }
                reply.push_str("250 8BITMIME\r\n");
                reply
            } else if upper == "STARTTLS" && offer_starttls {
                let _ = reader.get_mut().write_all(b"220 go ahead\r\n").await;
                return true;
            } else if upper.starts_with("AUTH PLAIN ") {
                let encoded = command["AUTH PLAIN ".len()..].to_owned();
                let decoded = base64_decode(&encoded);
                record.with(|s| s.auth = Some(decoded.clone()));
                if decoded == "\0user@example.com\0p:ss@w/rd" {
                    "235 2.7.0 accepted\r\n".to_owned()
                } else {
                    "535 5.7.8 authentication failed\r\n".to_owned()
                }
            } else if upper.starts_with("MAIL FROM:") {
                "250 2.1.0 ok\r\n".to_owned()
            } else if upper.starts_with("RCPT TO:") {
                if upper.contains("STALL") {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    return false;
                } else if upper.contains("UNKNOWN") {
                    "550 5.1.1 no such user here\r\n".to_owned()
                } else if upper.contains("BUSY") {
                    "451 4.3.0 try again later\r\n".to_owned()
                } else {
                    "250 2.1.5 ok\r\n".to_owned()
                }
            } else if upper == "DATA" {
                let _ = reader.get_mut().write_all(b"354 end with .\r\n").await;
                let mut message = Vec::new();
                loop {
                    let mut data = Vec::new();
                    match reader.read_until(b'\n', &mut data).await {
                        Ok(0) | Err(_) => return false,
                        Ok(_) => {}
                    }
                    if data == b".\r\n" {
                        break;
                    }
                    // Undo dot-stuffing.
                    let data = data.strip_prefix(b".").unwrap_or(&data);
                    message.extend_from_slice(data);
                }
                record.with(|s| s.messages.push(message));
                "250 2.0.0 queued\r\n".to_owned()
            } else if upper == "QUIT" {
                let _ = reader.get_mut().write_all(b"221 bye\r\n").await;
                return false;
            } else if upper == "RSET" || upper == "NOOP" {
                "250 ok\r\n".to_owned()
            } else {
                "502 5.5.2 not implemented\r\n".to_owned()
            };
            if reader.get_mut().write_all(reply.as_bytes()).await.is_err() {
                return false;
            }
        }
    }

    fn base64_decode(text: &str) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut bits = 0u32;
        let mut count = 0;
        let mut out = Vec::new();
        for byte in text.bytes().filter(|&b| b != b'=') {
            let Some(value) = ALPHABET.iter().position(|&a| a == byte) else {
                continue;
            };
            bits = (bits << 6) | value as u32;
            count += 6;
            if count >= 8 {
                count -= 8;
                out.push((bits >> count) as u8);
                bits &= (1 << count) - 1;
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    fn smtp(url: &str, tls: &TlsSettings) -> MailTransport {
        MailTransport::from_url(url, tls)
            .expect("valid URL")
            .with_timeout(Duration::from_secs(5))
    }

    fn recipients(list: &[&str]) -> Vec<String> {
        list.iter().map(|r| (*r).to_owned()).collect()
    }

    #[test]
    fn urls_set_security_ports_credentials_and_helo() {
        let tls = TlsSettings::public_roots();
        let cases = [
            ("smtp://mail.example.com", "smtp://mail.example.com:25"),
            (
                "smtp://mail.example.com:2525",
                "smtp://mail.example.com:2525",
            ),
            (
                "smtp+starttls://mail.example.com",
                "smtp+starttls://mail.example.com:587",
            ),
            ("smtps://mail.example.com", "smtps://mail.example.com:465"),
            ("smtps://mail.example.com/", "smtps://mail.example.com:465"),
            ("smtp://[::1]:25", "smtp://[::1]:25"),
            (
                "smtps://desk%40example.com:s3cr%3At@mail.example.com?helo=desk.example.com",
                "smtps://desk%40example.com:***@mail.example.com:465?helo=desk.example.com",
            ),
            ("sendmail:", "sendmail:///usr/sbin/sendmail"),
            (
                "sendmail:///usr/lib/sendmail",
                "sendmail:///usr/lib/sendmail",
            ),
            (
                "sendmail:/opt/exim/bin/sendmail",
                "sendmail:///opt/exim/bin/sendmail",
            ),
        ];
        for (url, described) in cases {
            let transport = MailTransport::from_url(url, &tls).expect(url);
            assert_eq!(transport.describe(), described, "{url}");
        }
        let MailTransport::Smtp(smtp) = MailTransport::from_url(
            "smtp+starttls://desk%40example.com:s3cr%3At%20x@Mail.Example.com:2587?helo=me.example",
            &tls,
        )
        .expect("URL") else {
            panic!("not SMTP");
        };
        assert_eq!(smtp.security, SmtpSecurity::StartTls);
        assert_eq!(smtp.port, 2587);
        assert_eq!(smtp.user.as_deref(), Some("desk@example.com"));
        assert_eq!(
            smtp.credentials,
            Some(Credentials::new(
                "desk@example.com".to_owned(),
                "s3cr:t x".to_owned()
            ))
        );
        assert_eq!(smtp.helo.as_deref(), Some("me.example"));
        assert!(smtp.tls.is_some());
        let debug = format!("{smtp:?}");
        assert!(!debug.contains("s3cr"), "{debug}");
        assert!(debug.contains("***"), "{debug}");
    }

    /// Whether an error is the one a bad URL should give.
    type Expected = fn(&TransportError) -> bool;

    #[test]
    fn bad_urls_are_refused_without_showing_the_password() {
        let tls = TlsSettings::public_roots();
        let cases: [(&str, Expected); 12] = [
            ("not a url", |e| {
                matches!(e, TransportError::InvalidUrl { .. })
            }),
            (
                "http://mail.example.com",
                |e| matches!(e, TransportError::UnknownScheme { scheme } if scheme == "http"),
            ),
            ("smtp://", |e| {
                matches!(e, TransportError::MissingHost { .. })
            }),
            ("smtp:///x", |e| {
                matches!(e, TransportError::MissingHost { .. })
            }),
            (
                "smtp://user:hunter2@mail.example.com/INBOX",
                |e| matches!(e, TransportError::UnexpectedPart { part, .. } if part == "a path"),
            ),
            (
                "smtps://user:hunter2@mail.example.com#x",
                |e| matches!(e, TransportError::UnexpectedPart { part, .. } if part == "a fragment"),
            ),
            ("smtp://user@mail.example.com", |e| {
                matches!(e, TransportError::IncompleteCredentials { .. })
            }),
            ("smtp://:hunter2@mail.example.com", |e| {
                matches!(e, TransportError::IncompleteCredentials { .. })
            }),
            (
                "smtp://user:hunter2@mail.example.com?hello=x",
                |e| matches!(e, TransportError::UnknownParameter { name } if name == "hello"),
            ),
            (
                "smtp://user:hunter2@mail.example.com?helo=bad%20name",
                |e| matches!(e, TransportError::InvalidHelo { .. }),
            ),
            ("sendmail://host/usr/sbin/sendmail", |e| {
                matches!(e, TransportError::UnexpectedPart { .. })
            }),
            (
                "sendmail:?x=1",
                |e| matches!(e, TransportError::UnexpectedPart { part, .. } if part == "a query"),
            ),
        ];
        for (url, expected) in cases {
            match MailTransport::from_url(url, &tls) {
                Err(error) => {
                    assert!(expected(&error), "{url}: {error:?}");
                    let text = error.to_string();
                    assert!(!text.contains("hunter2"), "{url}: {text}");
                }
                Ok(transport) => panic!("{url} was accepted: {}", transport.describe()),
            }
        }
        // A malformed URL with a password in it is not echoed either.
        let error = MailTransport::from_url("smtp://user:hunter2@mail.example.com:99999", &tls)
            .expect_err("port out of range");
        assert!(!error.to_string().contains("hunter2"), "{error}");
    }

    #[tokio::test]
    async fn plain_smtp_delivers_over_one_pooled_connection() {
        let server = fake_smtp(Security::Plain).await;
        let transport = smtp(
            &format!("smtp://127.0.0.1:{}?helo=desk.example", server.port),
            &TlsSettings::public_roots(),
        );
        transport
            .send(
                "bounces@desk.example",
                &recipients(&["user@example.com", "<other@example.com>"]),
                RAW,
            )
            .await
            .expect("first send");
        transport
            .send("", &recipients(&["user@example.com"]), RAW)
            .await
            .expect("second send, null return path");
        let sessions = server.sessions();
        assert_eq!(sessions.len(), 1, "the connection is reused: {sessions:?}");
        let session = &sessions[0];
        assert!(!session.tls);
        assert_eq!(session.messages, [RAW.to_vec(), RAW.to_vec()]);
        let commands: Vec<&str> = session
            .commands
            .iter()
            .map(String::as_str)
            .filter(|c| !c.eq_ignore_ascii_case("NOOP") && !c.eq_ignore_ascii_case("RSET"))
            .collect();
        assert_eq!(
            commands,
            [
                "EHLO desk.example",
                "MAIL FROM:<bounces@desk.example>",
                "RCPT TO:<user@example.com>",
                "RCPT TO:<other@example.com>",
                "DATA",
                "MAIL FROM:<>",
                "RCPT TO:<user@example.com>",
                "DATA",
            ]
        );
    }

    #[tokio::test]
    async fn a_refused_recipient_is_permanent_and_a_4xx_transient() {
        let server = fake_smtp(Security::Plain).await;
        let transport = smtp(
            &format!("smtp://127.0.0.1:{}", server.port),
            &TlsSettings::public_roots(),
        );
        match transport
            .send(
                "desk@desk.example",
                &recipients(&["unknown@example.com"]),
                RAW,
            )
            .await
        {
            Err(SendError::Permanent(text)) => {
                assert!(text.contains("550"), "{text}");
                assert!(text.contains("no such user"), "{text}");
            }
            other => panic!("expected Permanent, got {other:?}"),
        }
        match transport
            .send("desk@desk.example", &recipients(&["busy@example.com"]), RAW)
            .await
        {
            Err(SendError::Transient(text)) => assert!(text.contains("451"), "{text}"),
            other => panic!("expected Transient, got {other:?}"),
        }
        // The transport is still usable after the refusals.
        transport
            .send("desk@desk.example", &recipients(&["user@example.com"]), RAW)
            .await
            .expect("delivered");
        let delivered: usize = server.sessions().iter().map(|s| s.messages.len()).sum();
        assert_eq!(delivered, 1);

        // Addresses that are none fail before any connection.
        for (from, to) in [
            ("not an address", "user@example.com"),
            ("a@b.example", "nope"),
        ] {
            let error = transport
                .send(from, &recipients(&[to]), RAW)
                .await
                .expect_err("bad address");
            assert!(error.is_permanent(), "{error:?}");
        }
        let error = transport
            .send("a@b.example", &[], RAW)
            .await
            .expect_err("no recipient");
        assert!(error.is_permanent(), "{error:?}");
    }

    #[tokio::test]
    async fn an_unreachable_or_silent_server_is_transient() {
        let closed = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = closed.local_addr().expect("addr").port();
        drop(closed);
        let transport = smtp(
            &format!("smtp://127.0.0.1:{port}"),
            &TlsSettings::public_roots(),
        );
        let error = transport
            .send("a@b.example", &recipients(&["c@d.example"]), RAW)
            .await
            .expect_err("refused");
        assert!(matches!(error, SendError::Transient(_)), "{error:?}");

        // A server that stops answering mid-transaction: that session is dropped, the next
        // send opens a new one.
        let stalling = fake_smtp(Security::Plain).await;
        let transport = MailTransport::from_url(
            &format!("smtp://127.0.0.1:{}", stalling.port),
            &TlsSettings::public_roots(),
        )
        .expect("URL")
        .with_timeout(Duration::from_millis(300));
        let error = transport
            .send("a@b.example", &recipients(&["stall@d.example"]), RAW)
            .await
            .expect_err("stalled");
        match error {
            SendError::Transient(text) => assert!(text.contains("transaction"), "{text}"),
            other => panic!("expected Transient, got {other:?}"),
        }
        transport
            .send("a@b.example", &recipients(&["c@d.example"]), RAW)
            .await
            .expect("a new session delivers");
        let sessions = stalling.sessions();
        assert_eq!(sessions.len(), 2, "{sessions:?}");
        assert_eq!(sessions[1].messages, [RAW.to_vec()]);

        let silent = fake_smtp(Security::Silent).await;
        let transport = MailTransport::from_url(
            &format!("smtp://127.0.0.1:{}", silent.port),
            &TlsSettings::public_roots(),
        )
        .expect("URL")
        .with_timeout(Duration::from_millis(300));
        let started = std::time::Instant::now();
        let error = transport
            .send("a@b.example", &recipients(&["c@d.example"]), RAW)
            .await
            .expect_err("timed out");
        assert!(matches!(error, SendError::Transient(_)), "{error:?}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn implicit_tls_trusts_the_ca_file_and_only_it() {
        let server = fake_smtp(Security::Implicit(acceptor())).await;
        for host in ["127.0.0.1", "localhost"] {
            let transport = smtp(&format!("smtps://{host}:{}", server.port), &ca());
            transport
                .send("desk@desk.example", &recipients(&["user@example.com"]), RAW)
                .await
                .unwrap_or_else(|error| panic!("{host}: {error}"));
        }
        let sessions = server.sessions();
        assert!(sessions.iter().all(|s| s.tls), "{sessions:?}");
        assert_eq!(sessions.iter().map(|s| s.messages.len()).sum::<usize>(), 2);

        let public_only = smtp(
            &format!("smtps://127.0.0.1:{}", server.port),
            &TlsSettings::public_roots(),
        );
        match public_only
            .send("desk@desk.example", &recipients(&["user@example.com"]), RAW)
            .await
        {
            Err(SendError::Transient(text)) => {
                assert!(text.contains("certificate"), "{text}");
                assert!(text.contains("mail_tls_ca_file"), "{text}");
            }
            other => panic!("an unknown CA was trusted: {other:?}"),
        }
    }

    #[tokio::test]
    async fn starttls_is_required_and_credentials_go_inside_it() {
        let server = fake_smtp(Security::StartTls(acceptor())).await;
        let url = format!(
            "smtp+starttls://user%40example.com:p%3Ass%40w%2Frd@127.0.0.1:{}",
            server.port
        );
        let transport = smtp(&url, &ca());
        transport
            .send("desk@desk.example", &recipients(&["user@example.com"]), RAW)
            .await
            .expect("delivered over STARTTLS");
        let sessions = server.sessions();
        let session = &sessions[0];
        assert!(session.tls);
        assert_eq!(
            session.auth.as_deref(),
            Some("\0user@example.com\0p:ss@w/rd")
        );
        let starttls = session
            .commands
            .iter()
            .position(|c| c == "STARTTLS")
            .expect("STARTTLS sent");
        let auth = session
            .commands
            .iter()
            .position(|c| c.starts_with("AUTH"))
            .expect("AUTH sent");
        assert!(starttls < auth, "{:?}", session.commands);
        assert_eq!(session.messages, [RAW.to_vec()]);

        // Wrong credentials: the configuration is wrong, not the message.
        let wrong = smtp(
            &format!(
                "smtp+starttls://user%40example.com:wrong@127.0.0.1:{}",
                server.port
            ),
            &ca(),
        );
        match wrong
            .send("desk@desk.example", &recipients(&["user@example.com"]), RAW)
            .await
        {
            Err(SendError::Transient(text)) => {
                assert!(text.contains("535"), "{text}");
                assert!(text.contains("credentials"), "{text}");
            }
            other => panic!("expected Transient, got {other:?}"),
        }

        // A server without STARTTLS: no fallback to plain text, nothing sent.
        let plain = fake_smtp(Security::Plain).await;
        let transport = smtp(&format!("smtp+starttls://127.0.0.1:{}", plain.port), &ca());
        let error = transport
            .send("desk@desk.example", &recipients(&["user@example.com"]), RAW)
            .await
            .expect_err("no STARTTLS");
        assert!(matches!(error, SendError::Transient(_)), "{error:?}");
        let sessions = plain.sessions();
        assert!(
            sessions
                .iter()
                .flat_map(|s| &s.commands)
                .all(|c| !c.starts_with("MAIL")),
            "{sessions:?}"
        );
    }

    #[tokio::test]
    async fn sendmail_gets_the_envelope_as_arguments_and_its_exit_status_decides() {
        use std::os::unix::fs::PermissionsExt;

        let dir = tempfile::tempdir().expect("dir");
        // Every script is written before any runs: executing a file that another thread's
        // fork still holds open for writing fails with "text file busy".
        let script = |name: &str, body: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
            path
        };
        let out = dir.path().display().to_string();
        let ok = script(
            "ok",
            &format!("printf '%s\\n' \"$@\" > '{out}/args'; cat > '{out}/stdin'; exit 0"),
        );
        let no_user = script(
            "nouser",
            "cat > /dev/null; echo 'no such user' >&2; exit 67",
        );
        let temp_fail = script(
            "tempfail",
            "cat > /dev/null; echo 'queue full' >&2; exit 75",
        );
        let hangs = script("hangs", "sleep 20");
        let url = |path: &std::path::Path| format!("sendmail://{}", path.display());
        let tls = TlsSettings::public_roots();

        let transport = MailTransport::from_url(&url(&ok), &tls).expect("URL");
        assert_eq!(transport.describe(), url(&ok));
        transport
            .send(
                "bounces@desk.example",
                &recipients(&["user@example.com", "-oi@example.com"]),
                RAW,
            )
            .await
            .expect("sent");
        let args = std::fs::read_to_string(dir.path().join("args")).expect("args");
        assert_eq!(
            args,
            "-i\n-f\nbounces@desk.example\n--\nuser@example.com\n-oi@example.com\n"
        );
        let stdin = std::fs::read(dir.path().join("stdin")).expect("stdin");
        assert_eq!(stdin, crlf_to_lf(RAW));
        assert!(!stdin.contains(&b'\r'));
        transport
            .send("", &recipients(&["user@example.com"]), RAW)
            .await
            .expect("sent");
        let args = std::fs::read_to_string(dir.path().join("args")).expect("args");
        assert_eq!(args, "-i\n-f\n<>\n--\nuser@example.com\n");

        let transport = MailTransport::from_url(&url(&no_user), &tls).expect("URL");
        match transport
            .send("a@b.example", &recipients(&["c@d.example"]), RAW)
            .await
        {
            Err(SendError::Permanent(text)) => {
                assert!(text.contains("EX_NOUSER"), "{text}");
                assert!(text.contains("no such user"), "{text}");
            }
            other => panic!("expected Permanent, got {other:?}"),
        }
        let transport = MailTransport::from_url(&url(&temp_fail), &tls).expect("URL");
        match transport
            .send("a@b.example", &recipients(&["c@d.example"]), RAW)
            .await
        {
            Err(SendError::Transient(text)) => {
                assert!(text.contains("EX_TEMPFAIL"), "{text}");
                assert!(text.contains("queue full"), "{text}");
            }
            other => panic!("expected Transient, got {other:?}"),
        }
        let missing = dir.path().join("missing");
        let transport = MailTransport::from_url(&url(&missing), &tls).expect("URL");
        let error = transport
            .send("a@b.example", &recipients(&["c@d.example"]), RAW)
            .await
            .expect_err("missing program");
        assert!(matches!(error, SendError::Transient(_)), "{error:?}");

        let transport = MailTransport::from_url(&url(&hangs), &tls)
            .expect("URL")
            .with_timeout(Duration::from_millis(300));
        let started = std::time::Instant::now();
        let error = transport
            .send("a@b.example", &recipients(&["c@d.example"]), RAW)
            .await
            .expect_err("timed out");
        assert!(matches!(error, SendError::Transient(_)), "{error:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_transport_dropped_outside_a_runtime_does_not_panic() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let transport = MailTransport::from_url("smtp://127.0.0.1:9", &TlsSettings::public_roots())
            .expect("URL")
            .with_timeout(Duration::from_millis(200));
        // A transport outlives the runtime its sends ran on (a worker shutting down).
        let result =
            runtime.block_on(transport.send("a@b.example", &recipients(&["c@d.example"]), RAW));
        assert!(result.is_err());
        drop(runtime);
        drop(transport);
    }
}
