//! Email addresses, checked once at the edge.

use std::fmt;

/// The longest address SMTP can carry (RFC 5321 §4.5.3.1.3 path limit minus the brackets).
pub const MAX_EMAIL_LEN: usize = 254;

/// A syntactically valid email address (`local@domain`), as the customer wrote it.
///
/// Checks are deliberately practical rather than the full RFC 5322 grammar: one `@`, a non-empty
/// local part of printable characters without spaces, quotes or brackets, and a domain of
/// dot-separated labels of letters, digits and hyphens with at least one dot. `localhost` and other
/// dot-less hosts are refused, as osTicket does. No DNS lookup is made (osTicket's MX check makes
/// ticket creation fail when the resolver is down).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct EmailAddress(String);

impl EmailAddress {
    /// Parses `raw` (surrounding whitespace ignored).
    pub fn parse(raw: &str) -> Result<Self, String> {
        let address = raw.trim();
        if address.is_empty() {
            return Err("is required".into());
        }
        if address.len() > MAX_EMAIL_LEN {
            return Err(format!("is longer than {MAX_EMAIL_LEN} characters"));
        }
        let Some((local, domain)) = address.rsplit_once('@') else {
            return Err(format!("'{address}' is not a valid email address (no @)"));
        };
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| !c.is_control() && !c.is_whitespace() && !"\"(),:;<>@[\\]".contains(c));
        if !local_ok {
            return Err(format!("'{address}' is not a valid email address"));
        }
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_alphanumeric() || c == '-')
            });
        if !domain_ok {
            return Err(format!(
                "'{address}' is not a valid email address (bad domain)"
            ));
        }
        Ok(Self(address.to_owned()))
    }

    /// The address as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key two addresses are compared by: the whole address lower-cased. Mail systems treat
    /// the local part case-insensitively in practice, and customers type it both ways.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_addresses() {
        for ok in [
            "a@example.com",
            "first.last+tag@sub.example.co.uk",
            " Padded@Example.COM ",
            "o'brien@example.ie",
            "jörg@exämple.de",
        ] {
            assert!(EmailAddress::parse(ok).is_ok(), "{ok}");
        }
        assert_eq!(
            EmailAddress::parse("Padded@Example.COM").map(|e| e.key()),
            Ok("padded@example.com".to_owned())
        );
    }

    #[test]
    fn refuses_malformed_addresses() {
        for bad in [
            "",
            "plain",
            "@example.com",
            "a@",
            "a@localhost",
            "a b@example.com",
            "a@exa mple.com",
            "a@-example.com",
            "a..b@example.com",
            "a@example..com",
            "<a@example.com>",
            "a@example.com'; drop table users;--",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?}");
        }
    }
}
