//! Message-IDs we generate, signed so a reply can be threaded by its headers without trusting
//! anything a stranger could guess.
//!
//! Format: `<hl.{ticket}.{entry}.{nonce}.{mac}@{domain}>` where `ticket` and `entry` are decimal
//! row ids, `nonce` 8 random hex digits (one id per recipient and send), and `mac` the first 12
//! bytes (96 bits) of HMAC-SHA256 over `hl.{ticket}.{entry}.{nonce}`, keyed with the server's
//! mail secret, in lower-case hex. A wrong MAC means "not ours": no match, never an error.

use helpline_core::ids::{EntryId, TicketId};
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Bytes of the MAC kept in the id.
const MAC_BYTES: usize = 12;

/// The setting under which the secret is kept in the database.
pub const SECRET_SETTING: &str = "mail_message_id_secret";

/// The server secret that signs our Message-IDs.
#[derive(Clone)]
pub struct MailSecret(Vec<u8>);

impl MailSecret {
    /// A secret from its stored hex form.
    pub fn from_hex(text: &str) -> Option<Self> {
        let bytes = hex::decode(text.trim()).ok()?;
        (bytes.len() >= 16).then_some(Self(bytes))
    }

    /// A new random secret, hex-encoded for storage.
    pub fn generate_hex() -> String {
        use rand::RngCore;
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        hex::encode(bytes)
    }

    fn mac(&self, payload: &str) -> Option<Vec<u8>> {
        let mut mac = HmacSha256::new_from_slice(&self.0).ok()?;
        mac.update(payload.as_bytes());
        Some(mac.finalize().into_bytes()[..MAC_BYTES].to_vec())
    }
}

impl std::fmt::Debug for MailSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MailSecret(…)")
    }
}

/// A signed Message-ID (with angle brackets) for a mail about `entry` of `ticket`.
pub fn sign(secret: &MailSecret, ticket: TicketId, entry: EntryId, domain: &str) -> String {
    use rand::Rng;
    let nonce: u32 = rand::rng().random();
    let payload = format!("hl.{}.{}.{nonce:08x}", ticket.0, entry.0);
    let mac = secret.mac(&payload).map(hex::encode).unwrap_or_default();
    format!("<{payload}.{mac}@{domain}>")
}

/// The Message-ID every mail about a ticket refers to when its first message did not come by
/// mail: the same for every mail of the ticket (its nonce is zero), so mail clients show one
/// thread, and signed like any other, so a reply naming only it still threads.
pub fn thread_root(secret: &MailSecret, ticket: TicketId, entry: EntryId, domain: &str) -> String {
    let payload = format!("hl.{}.{}.{:08x}", ticket.0, entry.0, 0);
    let mac = secret.mac(&payload).map(hex::encode).unwrap_or_default();
    format!("<{payload}.{mac}@{domain}>")
}

/// The ticket and entry a Message-ID of ours names, when its signature is valid.
pub fn verify(secret: &MailSecret, message_id: &str) -> Option<(TicketId, EntryId)> {
    let id = message_id
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>');
    let (local, _domain) = id.rsplit_once('@')?;
    let mut parts = local.split('.');
    let (prefix, ticket, entry, nonce, mac) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    if prefix != "hl" || parts.next().is_some() || nonce.len() != 8 {
        return None;
    }
    let ticket: i64 = ticket.parse().ok()?;
    let entry: i64 = entry.parse().ok()?;
    let expected = secret.mac(&format!("hl.{ticket}.{entry}.{nonce}"))?;
    let given = hex::decode(mac).ok()?;
    // Constant-time comparison: the MAC is the credential.
    let equal = given.len() == expected.len()
        && given
            .iter()
            .zip(&expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    equal.then_some((TicketId(ticket), EntryId(entry)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> MailSecret {
        MailSecret::from_hex(&MailSecret::generate_hex()).expect("secret")
    }

    #[test]
    fn signed_ids_verify_and_name_their_ticket() {
        let secret = secret();
        let id = sign(&secret, TicketId(42), EntryId(7), "desk.example.com");
        assert!(
            id.starts_with("<hl.42.7.") && id.ends_with("@desk.example.com>"),
            "{id}"
        );
        assert_eq!(verify(&secret, &id), Some((TicketId(42), EntryId(7))));
        assert_ne!(
            id,
            sign(&secret, TicketId(42), EntryId(7), "desk.example.com")
        );
    }

    #[test]
    fn thread_roots_are_stable_and_verify() {
        let secret = secret();
        let root = thread_root(&secret, TicketId(5), EntryId(9), "d.example");
        assert_eq!(
            root,
            thread_root(&secret, TicketId(5), EntryId(9), "d.example")
        );
        assert_eq!(verify(&secret, &root), Some((TicketId(5), EntryId(9))));
    }

    #[test]
    fn forged_or_foreign_ids_do_not_verify() {
        let secret = secret();
        let id = sign(&secret, TicketId(42), EntryId(7), "d.example");
        let forged = id.replacen("hl.42.", "hl.43.", 1);
        assert_eq!(verify(&secret, &forged), None);
        assert_eq!(
            verify(&self::secret(), &id),
            None,
            "another server's secret"
        );
        for other in [
            "<abc@example.com>",
            "<hl.1.2.3.4@x>",
            "",
            "<hl.1.2.00000000.zz@x>",
        ] {
            assert_eq!(verify(&secret, other), None, "{other}");
        }
        assert!(MailSecret::from_hex("abcd").is_none(), "too short");
    }
}
