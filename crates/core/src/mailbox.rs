//! Mailboxes the desk fetches mail from (IMAP or POP3), and the lease that makes one node at a
//! time poll each of them.

use std::fmt;
use std::str::FromStr;
use time::OffsetDateTime;

/// A mailbox's row id.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct MailboxId(pub i64);

impl fmt::Display for MailboxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The protocol, from the URL scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MailProtocol {
    /// `imap://` (plain) — IDLE where the server offers it.
    Imap,
    /// `imaps://` (implicit TLS, the certificate verified) — IDLE too.
    Imaps,
    /// `pop3://` (plain).
    Pop3,
    /// `pop3s://` (implicit TLS, the certificate verified).
    Pop3s,
}

impl MailProtocol {
    /// The URL scheme.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Imap => "imap",
            Self::Imaps => "imaps",
            Self::Pop3 => "pop3",
            Self::Pop3s => "pop3s",
        }
    }

    /// The default port.
    pub fn default_port(self) -> u16 {
        match self {
            Self::Imap => 143,
            Self::Imaps => 993,
            Self::Pop3 => 110,
            Self::Pop3s => 995,
        }
    }

    /// Whether the connection is TLS from the start.
    pub fn is_tls(self) -> bool {
        matches!(self, Self::Imaps | Self::Pop3s)
    }

    /// Whether this is an IMAP protocol.
    pub fn is_imap(self) -> bool {
        matches!(self, Self::Imap | Self::Imaps)
    }
}

impl FromStr for MailProtocol {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        match raw {
            "imap" => Ok(Self::Imap),
            "imaps" => Ok(Self::Imaps),
            "pop3" => Ok(Self::Pop3),
            "pop3s" => Ok(Self::Pop3s),
            other => Err(format!(
                "unknown mailbox scheme '{other}' (use imap, imaps, pop3 or pop3s)"
            )),
        }
    }
}

/// What happens to a message in the mailbox once it is safely stored and processed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "action", content = "folder", rename_all = "lowercase")]
pub enum AfterFetch {
    /// IMAP: flag it `\Seen` and leave it (the default for IMAP).
    Seen,
    /// IMAP: move it to this folder (created when missing).
    Archive(String),
    /// Delete it (the default for POP3, whose servers have no flags).
    Delete,
}

impl AfterFetch {
    /// The stored form: `seen`, `delete` or `archive:FOLDER`.
    pub fn to_stored(&self) -> String {
        match self {
            Self::Seen => "seen".into(),
            Self::Delete => "delete".into(),
            Self::Archive(folder) => format!("archive:{folder}"),
        }
    }

    /// From the stored form.
    pub fn from_stored(raw: &str) -> Option<Self> {
        match raw {
            "seen" => Some(Self::Seen),
            "delete" => Some(Self::Delete),
            _ => raw
                .strip_prefix("archive:")
                .filter(|f| !f.is_empty())
                .map(|f| Self::Archive(f.to_owned())),
        }
    }
}

/// Where and how to fetch, parsed from `imap://USER:PASS@HOST:PORT/FOLDER` and friends.
#[derive(Clone, PartialEq, Eq)]
pub struct MailboxAddress {
    /// Protocol.
    pub protocol: MailProtocol,
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Login name (percent-decoded).
    pub user: String,
    /// Password (percent-decoded). Never printed: see [`MailboxAddress::redacted`].
    pub password: String,
    /// IMAP folder (default `INBOX`); POP3 has none.
    pub folder: String,
}

impl MailboxAddress {
    /// Parses a mailbox URL. User and password may be percent-encoded (`%40` for `@`).
    pub fn parse(url: &str) -> Result<Self, String> {
        let url = url.trim();
        let (scheme, rest) = url.split_once("://").ok_or_else(|| {
            "a mailbox URL looks like imap://USER:PASS@HOST:PORT/FOLDER".to_owned()
        })?;
        let protocol: MailProtocol = scheme.to_ascii_lowercase().parse()?;
        let (credentials, location) = rest
            .rsplit_once('@')
            .ok_or_else(|| "the mailbox URL has no USER:PASS@ part".to_owned())?;
        let (user, password) = credentials
            .split_once(':')
            .ok_or_else(|| "the mailbox URL has no password (USER:PASS@)".to_owned())?;
        let (authority, folder) = match location.split_once('/') {
            Some((authority, folder)) => (authority, folder),
            None => (location, ""),
        };
        // `[v6]:port`, `[v6]`, `host:port`, `host`.
        let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
            let (host, after) = rest
                .split_once(']')
                .ok_or_else(|| "an IPv6 host needs its closing ']'".to_owned())?;
            let port = match after.strip_prefix(':') {
                Some(port) => port
                    .parse::<u16>()
                    .map_err(|_| format!("'{port}' is not a port number"))?,
                None if after.is_empty() => protocol.default_port(),
                None => return Err(format!("unexpected '{after}' after the host")),
            };
            (host, port)
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (
                    host,
                    port.parse::<u16>()
                        .map_err(|_| format!("'{port}' is not a port number"))?,
                ),
                None => (authority, protocol.default_port()),
            }
        };
        if host.is_empty() {
            return Err("the mailbox URL has no host".into());
        }
        let host = host.to_ascii_lowercase();
        let decode = |text: &str| percent_decode(text);
        let (user, password, folder) = (decode(user), decode(password), decode(folder));
        if [&user, &password, &folder]
            .iter()
            .any(|part| part.chars().any(char::is_control))
        {
            return Err("the mailbox URL may not contain control characters".into());
        }
        if !protocol.is_imap() && !folder.is_empty() {
            return Err("POP3 mailboxes have no folders; drop the /FOLDER part".into());
        }
        Ok(Self {
            protocol,
            host,
            port,
            user,
            password,
            folder: if folder.is_empty() && protocol.is_imap() {
                "INBOX".into()
            } else {
                folder
            },
        })
    }

    /// The address without its password, for lists and logs.
    pub fn redacted(&self) -> String {
        let folder = if self.protocol.is_imap() {
            format!("/{}", self.folder)
        } else {
            String::new()
        };
        format!(
            "{}://{}:****@{}{folder}",
            self.protocol.as_str(),
            self.user,
            self.host_port()
        )
    }

    /// `host:port`, for connecting.
    pub fn host_port(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Debug for MailboxAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(high), Some(low)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(high << 4 | low);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(byte: u8) -> Option<u8> {
    (byte as char)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// A mailbox to add.
#[derive(Debug, Clone)]
pub struct NewMailbox {
    /// Where and how.
    pub address: MailboxAddress,
    /// What to do with fetched messages.
    pub after_fetch: AfterFetch,
    /// Seconds between polls when the server offers no IDLE (and between IDLE renewals).
    pub poll_seconds: u32,
}

/// A mailbox as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    /// Row id.
    pub id: MailboxId,
    /// Where and how (with its password: only the fetcher reads it).
    pub address: MailboxAddress,
    /// What to do with fetched messages.
    pub after_fetch: AfterFetch,
    /// Seconds between polls.
    pub poll_seconds: u32,
    /// When it was added.
    pub created_at: OffsetDateTime,
    /// When a fetch round last ended.
    pub last_fetch_at: Option<OffsetDateTime>,
    /// The last round's error, cleared by a good round.
    pub last_error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_with_defaults_and_decoding() {
        let a =
            MailboxAddress::parse("imap://support%40example.com:p%40ss@mail.example.com/Support")
                .expect("url");
        assert_eq!(a.protocol, MailProtocol::Imap);
        assert_eq!((a.host.as_str(), a.port), ("mail.example.com", 143));
        assert_eq!(a.user, "support@example.com");
        assert_eq!(a.password, "p@ss");
        assert_eq!(a.folder, "Support");
        assert_eq!(
            a.redacted(),
            "imap://support@example.com:****@mail.example.com:143/Support"
        );
        assert!(!format!("{a:?}").contains("p@ss"));
        let p = MailboxAddress::parse("pop3s://u:p@127.0.0.1:1995").expect("url");
        assert_eq!((p.port, p.folder.as_str()), (1995, ""));
        assert_eq!(
            MailboxAddress::parse("imaps://u:p@h").expect("url").folder,
            "INBOX"
        );
        for bad in [
            "http://u:p@h",
            "imap://h/INBOX",
            "imap://u@h",
            "pop3://u:p@h/Folder",
            "imap://u:p@h:99999",
        ] {
            assert!(MailboxAddress::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn after_fetch_round_trips() {
        for action in [
            AfterFetch::Seen,
            AfterFetch::Delete,
            AfterFetch::Archive("Done/2026".into()),
        ] {
            assert_eq!(AfterFetch::from_stored(&action.to_stored()), Some(action));
        }
        assert_eq!(AfterFetch::from_stored("archive:"), None);
    }
}
