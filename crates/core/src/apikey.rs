//! API keys: scopes, address binding, secrets that are stored only as a SHA-256 hash.

use crate::attachment::sha256_hex;
use crate::ids::ApiKeyId;
use ipnet::IpNet;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use time::OffsetDateTime;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum Scope {
    /// Open tickets (osTicket's `can_create_tickets`).
    TicketsCreate,
    /// Read tickets and threads.
    TicketsRead,
    /// Change ticket fields.
    TicketsUpdate,
    /// Post customer messages (the client reply API).
    MessagesCreate,
    /// Post staff replies.
    RepliesCreate,
    /// Post internal notes.
    NotesCreate,
    /// Read customers.
    UsersRead,
    /// Create and change customers.
    UsersWrite,
    /// Run the periodic tasks (osTicket's `can_exec_cron`).
    CronRun,
    /// Everything.
    Admin,
}

impl Scope {
    /// Every scope, in display order.
    pub const ALL: [Scope; 10] = [
        Self::TicketsCreate,
        Self::TicketsRead,
        Self::TicketsUpdate,
        Self::MessagesCreate,
        Self::RepliesCreate,
        Self::NotesCreate,
        Self::UsersRead,
        Self::UsersWrite,
        Self::CronRun,
        Self::Admin,
    ];

    /// The scope's name (`tickets:create`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TicketsCreate => "tickets:create",
            Self::TicketsRead => "tickets:read",
            Self::TicketsUpdate => "tickets:update",
            Self::MessagesCreate => "messages:create",
            Self::RepliesCreate => "replies:create",
            Self::NotesCreate => "notes:create",
            Self::UsersRead => "users:read",
            Self::UsersWrite => "users:write",
            Self::CronRun => "cron:run",
            Self::Admin => "admin",
        }
    }
}

impl FromStr for Scope {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|scope| scope.as_str() == raw.trim())
            .ok_or_else(|| {
                let names: Vec<_> = Self::ALL.iter().map(|s| s.as_str()).collect();
                format!("unknown scope '{raw}' (known: {})", names.join(", "))
            })
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Addresses a key may be used from: one address or a CIDR block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(into = "String")]
pub struct IpRule(IpNet);

impl IpRule {
    /// Whether `ip` falls under this rule. IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`, what a
    /// dual-stack listener reports) are compared as the IPv4 address they carry.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        self.0.contains(&ip)
    }
}

impl FromStr for IpRule {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let raw = raw.trim();
        if let Ok(net) = raw.parse::<IpNet>() {
            return Ok(Self(net.trunc()));
        }
        raw.parse::<IpAddr>()
            .map(|ip| Self(IpNet::from(ip)))
            .map_err(|_| format!("'{raw}' is neither an IP address nor a CIDR block"))
    }
}

impl fmt::Display for IpRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A single address prints without its /32 or /128.
        if self.0.prefix_len() == self.0.max_prefix_len() {
            self.0.addr().fmt(f)
        } else {
            self.0.fmt(f)
        }
    }
}

impl From<IpRule> for String {
    fn from(rule: IpRule) -> Self {
        rule.to_string()
    }
}

/// A key's secret as the client sends it. Never stored; only [`KeySecret::hash`] is.
#[derive(Clone, PartialEq, Eq)]
pub struct KeySecret(String);

impl KeySecret {
    /// A new random secret: `hl_` and 40 characters from a 62-letter alphabet (238 bits).
    pub fn generate() -> Self {
        use rand::Rng;
        const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        let mut rng = rand::rng();
        let body: String = (0..40)
            .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
            .collect();
        Self(format!("hl_{body}"))
    }

    /// A secret chosen by the operator, e.g. an osTicket key (32 hex characters) being carried
    /// over. At least 16 printable ASCII characters without spaces.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if raw.len() < 16 || raw.len() > 128 {
            return Err("must be 16 to 128 characters long".into());
        }
        if !raw.chars().all(|c| c.is_ascii_graphic()) {
            return Err("must be printable ASCII without spaces".into());
        }
        Ok(Self(raw.to_owned()))
    }

    /// A secret as presented by a client (any non-empty header value); only its hash is used.
    pub fn presented(raw: &str) -> Self {
        Self(raw.trim().to_owned())
    }

    /// The secret itself, to show once.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What the database keeps: hex SHA-256 of the secret. A key is high-entropy, so a slow KDF
    /// buys nothing and would cost every request.
    pub fn hash(&self) -> String {
        sha256_hex(self.0.as_bytes())
    }

    /// The first characters, kept so operators can tell keys apart in `key list`.
    pub fn prefix(&self) -> String {
        self.0.chars().take(7).collect()
    }
}

impl fmt::Debug for KeySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeySecret({}…)", self.prefix())
    }
}

/// An API key as stored (without its secret).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ApiKey {
    /// Row id.
    pub id: ApiKeyId,
    /// First characters of the secret.
    pub prefix: String,
    /// Addresses it may be used from.
    pub ip_rules: Vec<IpRule>,
    /// What it may do.
    pub scopes: Vec<Scope>,
    /// Operator's note.
    pub note: Option<String>,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// When it was revoked; a revoked key authenticates nothing.
    pub revoked_at: Option<OffsetDateTime>,
}

impl ApiKey {
    /// Whether the key may be used from `ip`.
    pub fn allows_ip(&self, ip: IpAddr) -> bool {
        self.ip_rules.iter().any(|rule| rule.allows(ip))
    }

    /// Whether the key carries `scope` (or `admin`).
    pub fn has_scope(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope) || self.scopes.contains(&Scope::Admin)
    }

    /// Whether the key is still usable.
    pub fn is_active(&self) -> bool {
        self.revoked_at.is_none()
    }
}

/// Checked input for a new key.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    /// The secret (only its hash is stored).
    pub secret: KeySecret,
    /// Addresses.
    pub ip_rules: Vec<IpRule>,
    /// Scopes.
    pub scopes: Vec<Scope>,
    /// Note.
    pub note: Option<String>,
}

/// Encodes scopes for storage: names separated by spaces.
pub fn scopes_to_text(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Decodes stored scopes.
pub fn scopes_from_text(text: &str) -> Result<Vec<Scope>, String> {
    text.split_whitespace().map(str::parse).collect()
}

/// Encodes address rules for storage: separated by spaces.
pub fn ip_rules_to_text(rules: &[IpRule]) -> String {
    rules
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Decodes stored address rules.
pub fn ip_rules_from_text(text: &str) -> Result<Vec<IpRule>, String> {
    text.split_whitespace().map(str::parse).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn rules_match_addresses_and_blocks() {
        let single: IpRule = "192.0.2.7".parse().expect("rule");
        assert!(single.allows(ip("192.0.2.7")));
        assert!(!single.allows(ip("192.0.2.8")));
        assert!(single.allows(ip("::ffff:192.0.2.7")));
        let block: IpRule = "10.1.2.3/16".parse().expect("rule");
        assert_eq!(block.to_string(), "10.1.0.0/16");
        assert!(block.allows(ip("10.1.200.9")));
        assert!(!block.allows(ip("10.2.0.1")));
        let v6: IpRule = "2001:db8::/32".parse().expect("rule");
        assert!(v6.allows(ip("2001:db8::1")));
        assert!("example.com".parse::<IpRule>().is_err());
    }

    #[test]
    fn secrets_hash_and_never_debug_print() {
        let secret = KeySecret::generate();
        assert!(secret.expose().starts_with("hl_"));
        assert_eq!(secret.expose().len(), 43);
        assert_eq!(secret.hash().len(), 64);
        assert_ne!(secret.hash(), KeySecret::generate().hash());
        assert!(!format!("{secret:?}").contains(&secret.expose()[7..]));
        assert!(KeySecret::parse("BA00B76BAA30F62E1940B46CC1C3C73C").is_ok());
        assert!(KeySecret::parse("short").is_err());
    }

    #[test]
    fn scopes_round_trip() {
        let text = scopes_to_text(&[Scope::TicketsCreate, Scope::CronRun]);
        assert_eq!(text, "tickets:create cron:run");
        assert_eq!(
            scopes_from_text(&text),
            Ok(vec![Scope::TicketsCreate, Scope::CronRun])
        );
        assert!("tickets:delete".parse::<Scope>().is_err());
    }
}
