//! osTicket's signed Message-IDs, recognised so that replies to mail an osTicket desk sent
//! before its move to Helpline still thread (with the old desk's `SECRET_SALT`, which
//! `helpline import osticket --secret-salt` keeps in the setting
//! [`helpline_core::legacy::OSTICKET_SECRET_SALT_SETTING`]).
//!
//! osTicket stores the Message-ID of mail it receives, but not of the mail it sends: each
//! outgoing id names the thread entry it is about and carries a signature, and a reply is
//! matched by decoding the id it refers to. The formats (osTicket's
//! `include/class.mailer.php`, `Mailer::getMessageId` / `decodeMessageId` /
//! `getSystemMessageIdCode`; `include/class.thread.php`, `ThreadEntry::lookupByEmailHeaders`):
//!
//! * **Installation code**: the first 6 characters of base64(MD5(`"mail"` + salt)) with `+`
//!   turned into `=`. It tells one installation's ids from another's.
//! * **B** (every release since 1.10): `B{code}-{random}-{tag}-{mailbox address}`, e.g.
//!   `<BxC8s0D-a1b2c-AQAAAEgQAAAHAAAAVRHKzp7f-support@example.com>`. `random` is 5 characters
//!   (9 in early builds); `tag` is base64 without `=` of 18 bytes: recipient id, thread-entry
//!   id and thread id (each unsigned 32-bit little-endian), the recipient class (one byte:
//!   `U` ticket owner, `C` collaborator, `S` staff, `M` several, `?` other), then the last 5
//!   bytes of HMAC-SHA1(key = salt, message = those 13 bytes + `random` + `code`).
//! * **A** (development builds of late 2014 only, still decoded by osTicket):
//!   `A{code}-{random}-{tag}-@{signature}`: `tag` is base64 without `=` of 9 bytes (recipient
//!   id, entry id, class), `signature` the last 10 characters of the lower-case hex
//!   HMAC-SHA1(key = salt, message = `tag` as written + `random`).
//!
//! An id counts only when its code is this installation's and its signature verifies: a
//! forged tag, a wrong salt or another installation's id is "not ours" — never an error.
//! osTicket also puts the id into the body of every threaded mail (a hidden
//! `<div class="mid-{id}">` in HTML, a `Ref-Mid: {id}` line in text), for mail clients that drop
//! the headers; [`body_markers`] finds those.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use hmac13::{Hmac, KeyInit, Mac};
use md5::{Digest, Md5};
use sha1::Sha1;

type HmacSha1 = Hmac<Sha1>;

/// Bytes of a B tag before its signature: three 32-bit ids and the class byte.
const B_TAG_BYTES: usize = 13;
/// Bytes of a B tag's signature.
const B_SIGNATURE_BYTES: usize = 5;
/// Bytes of an A tag: two 32-bit ids and the class byte.
const A_TAG_BYTES: usize = 9;
/// Hex digits of an A signature.
const A_SIGNATURE_HEX: usize = 10;
/// Body markers looked at, at most (each is one HMAC to check).
const MAX_BODY_MARKERS: usize = 8;

/// Which format an id has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// The first format (recipient, entry, class; hex signature after the `@`).
    A,
    /// The current format (recipient, entry, thread, class; signature inside the tag).
    B,
}

/// Whom the mail an id names was sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecipientClass {
    /// `U`: the ticket owner (the recipient id is an osTicket user id).
    Owner,
    /// `C`: a collaborator (a user id).
    Collaborator,
    /// `S`: a staff member (a staff id).
    Staff,
    /// `M`: several recipients at once.
    Several,
    /// `?` or anything else.
    Other,
}

impl RecipientClass {
    fn from_byte(byte: u8) -> Self {
        match byte {
            b'U' => Self::Owner,
            b'C' => Self::Collaborator,
            b'S' => Self::Staff,
            b'M' => Self::Several,
            _ => Self::Other,
        }
    }

    fn byte(self) -> u8 {
        match self {
            Self::Owner => b'U',
            Self::Collaborator => b'C',
            Self::Staff => b'S',
            Self::Several => b'M',
            Self::Other => b'?',
        }
    }
}

/// What a verified osTicket Message-ID says. Ids are osTicket's row ids; 0 means none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OsticketMessageId {
    /// The format.
    pub version: Version,
    /// `user.id` (owner, collaborator) or `staff.staff_id` (staff) of the recipient.
    pub recipient_id: u32,
    /// `thread_entry.id` the mail was about (0: none, e.g. a notice about a thread).
    pub entry_id: u32,
    /// `thread.id` (B only; `None` for A).
    pub thread_id: Option<u32>,
    /// Whom it was sent to.
    pub recipient: RecipientClass,
}

/// One osTicket installation, known by its `SECRET_SALT`.
#[derive(Clone)]
pub struct OsticketInstallation {
    salt: Vec<u8>,
    code: String,
}

impl std::fmt::Debug for OsticketInstallation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OsticketInstallation")
            .field("code", &self.code)
            .finish_non_exhaustive()
    }
}

impl OsticketInstallation {
    /// The installation whose `SECRET_SALT` is `salt` (taken byte for byte, as PHP does);
    /// `None` for an empty salt.
    pub fn new(salt: &str) -> Option<Self> {
        if salt.is_empty() {
            return None;
        }
        let mut hasher = Md5::new();
        hasher.update(b"mail");
        hasher.update(salt.as_bytes());
        let digest = hasher.finalize();
        let encoded = base64::engine::general_purpose::STANDARD.encode(digest);
        let code: String = encoded.chars().take(6).map(plus_to_equals).collect();
        Some(Self {
            salt: salt.as_bytes().to_vec(),
            code,
        })
    }

    /// The 6-character code every Message-ID of this installation starts with (after the
    /// version letter).
    pub fn code(&self) -> &str {
        &self.code
    }

    fn hmac(&self, parts: &[&[u8]]) -> HmacSha1 {
        let mut mac = HmacSha1::new_from_slice(&self.salt).expect("HMAC takes keys of any length");
        for part in parts {
            mac.update(part);
        }
        mac
    }

    /// What `message_id` (with or without angle brackets) says, when it is a Message-ID this
    /// installation signed; `None` for any other id, a forged or altered one, or another
    /// installation's.
    pub fn decode(&self, message_id: &str) -> Option<OsticketMessageId> {
        let id = message_id.trim_matches(['<', '>', ' ']);
        let (local, domain) = match id.split_once('@') {
            Some((local, domain)) => (local, Some(domain)),
            None => (id, None),
        };
        let mut parts = local.split('-');
        let first = parts.next()?;
        let random = parts.next()?;
        let tag = parts.next().filter(|t| !t.is_empty())?;
        let version = match first.as_bytes().first()? {
            b'A' => Version::A,
            b'B' => Version::B,
            _ => return None,
        };
        // The code is compared first (cheap), then the signature (what actually proves it).
        if first[1..] != self.code {
            return None;
        }
        match version {
            Version::B => {
                let bytes = STANDARD_NO_PAD.decode(tag).ok()?;
                if bytes.len() != B_TAG_BYTES + B_SIGNATURE_BYTES {
                    return None;
                }
                let (packed, signature) = bytes.split_at(B_TAG_BYTES);
                self.hmac(&[packed, random.as_bytes(), self.code.as_bytes()])
                    .verify_truncated_right(signature)
                    .ok()?;
                Some(OsticketMessageId {
                    version,
                    recipient_id: u32_le(&packed[0..4]),
                    entry_id: u32_le(&packed[4..8]),
                    thread_id: Some(u32_le(&packed[8..12])),
                    recipient: RecipientClass::from_byte(packed[12]),
                })
            }
            Version::A => {
                let signature = domain?;
                // PHP's hex is lower case and the comparison exact.
                if signature.len() != A_SIGNATURE_HEX
                    || !signature
                        .bytes()
                        .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
                {
                    return None;
                }
                let signature = hex::decode(signature).ok()?;
                self.hmac(&[tag.as_bytes(), random.as_bytes()])
                    .verify_truncated_right(&signature)
                    .ok()?;
                let packed = STANDARD_NO_PAD.decode(tag).ok()?;
                if packed.len() < A_TAG_BYTES {
                    return None;
                }
                Some(OsticketMessageId {
                    version,
                    recipient_id: u32_le(&packed[0..4]),
                    entry_id: u32_le(&packed[4..8]),
                    thread_id: None,
                    recipient: RecipientClass::from_byte(packed[8]),
                })
            }
        }
    }

    /// The Message-ID (in angle brackets) osTicket's mailer makes for a mail about `entry_id`
    /// of `thread_id`, sent to `recipient_id` of class `recipient` from `mailbox`, with the
    /// random part `random` (5 characters from osTicket's set: letters, digits, `_`, `=`).
    /// Helpline never sends these; tests and tools use it to make ids an osTicket desk with
    /// this salt would have sent.
    pub fn encode_b(
        &self,
        recipient_id: u32,
        entry_id: u32,
        thread_id: u32,
        recipient: RecipientClass,
        random: &str,
        mailbox: &str,
    ) -> String {
        let mut tag = Vec::with_capacity(B_TAG_BYTES + B_SIGNATURE_BYTES);
        tag.extend_from_slice(&recipient_id.to_le_bytes());
        tag.extend_from_slice(&entry_id.to_le_bytes());
        tag.extend_from_slice(&thread_id.to_le_bytes());
        tag.push(recipient.byte());
        let mac = self
            .hmac(&[&tag, random.as_bytes(), self.code.as_bytes()])
            .finalize()
            .into_bytes();
        tag.extend_from_slice(&mac[mac.len() - B_SIGNATURE_BYTES..]);
        format!(
            "<B{}-{random}-{}-{mailbox}>",
            self.code,
            STANDARD_NO_PAD.encode(&tag)
        )
    }

    /// The same for the old A format (no thread id; the signature replaces the domain).
    pub fn encode_a(
        &self,
        recipient_id: u32,
        entry_id: u32,
        recipient: RecipientClass,
        random: &str,
    ) -> String {
        let mut packed = Vec::with_capacity(A_TAG_BYTES);
        packed.extend_from_slice(&recipient_id.to_le_bytes());
        packed.extend_from_slice(&entry_id.to_le_bytes());
        packed.push(recipient.byte());
        let tag = STANDARD_NO_PAD.encode(&packed);
        let mac = self
            .hmac(&[tag.as_bytes(), random.as_bytes()])
            .finalize()
            .into_bytes();
        let hex = hex::encode(mac);
        format!(
            "<A{}-{random}-{tag}-@{}>",
            self.code,
            &hex[hex.len() - A_SIGNATURE_HEX..]
        )
    }
}

fn plus_to_equals(c: char) -> char {
    if c == '+' { '=' } else { c }
}

fn u32_le(bytes: &[u8]) -> u32 {
    u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

/// Whether `message_id` has the shape of an osTicket id (version letter, at least three
/// `-`-separated parts before the `@`): a cheap test before any salt is read or HMAC computed.
pub fn has_shape(message_id: &str) -> bool {
    let id = message_id.trim_matches(['<', '>', ' ']);
    let local = id.split_once('@').map_or(id, |(local, _)| local);
    let mut parts = local.split('-');
    let first = parts.next().unwrap_or_default();
    (first.starts_with('A') || first.starts_with('B'))
        && first.len() > 1
        && parts.next().is_some()
        && parts.next().is_some_and(|tag| !tag.is_empty())
}

/// The Message-IDs osTicket embedded in a mail's body (`class="mid-{id}"` in HTML, a
/// `Ref-Mid: {id}` line in text; in a reply, in the quoted part), in angle brackets, in order
/// of appearance, without repeats, at most a few. Quote markers before `Ref-Mid:` do not
/// matter; whatever is found still has to verify.
pub fn body_markers(html: Option<&str>, text: Option<&str>) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let mut push = |id: &str| {
        let id = format!("<{id}>");
        if id.len() > 2 && !found.contains(&id) && found.len() < MAX_BODY_MARKERS {
            found.push(id);
        }
    };
    if let Some(html) = html {
        for (at, marker) in html.match_indices("class=\"mid-") {
            let rest = &html[at + marker.len()..];
            // osTicket's pattern: the id runs to the closing quote, without white space.
            if let Some(end) = rest.find(|c: char| c == '"' || c.is_whitespace())
                && rest[end..].starts_with('"')
            {
                push(&rest[..end]);
            }
        }
    }
    if let Some(text) = text {
        for (at, marker) in text.match_indices("Ref-Mid: ") {
            let rest = &text[at + marker.len()..];
            let end = rest
                .find(|c: char| c == '"' || c.is_whitespace())
                .unwrap_or(rest.len());
            push(&rest[..end]);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const SALT: &str = "qmDdKl0N9hWs8r7VbP3TzA5eYcX1uJg2";

    fn desk() -> OsticketInstallation {
        OsticketInstallation::new(SALT).expect("salt")
    }

    #[test]
    fn hmac_sha1_is_rfc_2202() {
        // RFC 2202 test cases 1 and 2: the primitive the signatures rest on.
        let one = OsticketInstallation {
            salt: vec![0x0b; 20],
            code: String::new(),
        };
        assert_eq!(
            hex::encode(one.hmac(&[b"Hi ", b"There"]).finalize().into_bytes()),
            "b617318655057264e28bc0b6fb378c8ef146be00"
        );
        let two = OsticketInstallation {
            salt: b"Jefe".to_vec(),
            code: String::new(),
        };
        assert_eq!(
            hex::encode(
                two.hmac(&[b"what do ya want for nothing?"])
                    .finalize()
                    .into_bytes()
            ),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
    }

    /// Ids made by osTicket's own `Mailer::getMessageId` (develop at 4689926, and the
    /// 2014 "A" mailer of commit 2a091d6), run under PHP 8.2 with fixed random parts, and what
    /// its `decodeMessageId` said of them.
    #[test]
    fn osticket_php_vectors_decode_and_encode_alike() {
        let b = |recipient_id, entry_id, thread_id, recipient| OsticketMessageId {
            version: Version::B,
            recipient_id,
            entry_id,
            thread_id: Some(thread_id),
            recipient,
        };
        let desk = desk();
        assert_eq!(desk.code(), "BB6e2r");
        let cases = [
            (
                "BBB6e2r-a1_=Z-EQAAAJIQAACFAwAAVe31qH5Z-support@example.com",
                b(17, 4242, 901, RecipientClass::Owner),
                "a1_=Z",
                "support@example.com",
            ),
            (
                "BBB6e2r-xyz12-AwAAAAUAAAAHAAAAU+i2wuZk-@osTicketMailer",
                b(3, 5, 7, RecipientClass::Staff),
                "xyz12",
                "@osTicketMailer",
            ),
            (
                "BBB6e2r-r4nd0-AQAAAAIAAAADAAAAQ/fqzGUz-help-desk@x.example",
                b(1, 2, 3, RecipientClass::Collaborator),
                "r4nd0",
                "help-desk@x.example",
            ),
        ];
        for (id, expected, random, mailbox) in cases {
            assert_eq!(desk.decode(&format!("<{id}>")), Some(expected), "{id}");
            assert_eq!(desk.decode(id), Some(expected), "{id} without brackets");
            assert_eq!(
                desk.encode_b(
                    expected.recipient_id,
                    expected.entry_id,
                    expected.thread_id.expect("B"),
                    expected.recipient,
                    random,
                    mailbox
                ),
                format!("<{id}>")
            );
        }
        // What osTicket's decoder refused: another entry id under the same signature, a
        // changed signature byte, another random part.
        for forged in [
            "<BBB6e2r-a1_=Z-EQAAAJMQAACFAwAAVe31qH5Z-support@example.com>",
            "<BBB6e2r-a1_=Z-EQAAAJIQAACFAwAAVe31qH5a-support@example.com>",
            "<BBB6e2r-a1_=Y-EQAAAJIQAACFAwAAVe31qH5Z-support@example.com>",
        ] {
            assert_eq!(desk.decode(forged), None, "{forged}");
        }

        let a = "<ABB6e2r-abcdefgh9-EQAAAJIQAABD-@3cf126923b>";
        let expected = OsticketMessageId {
            version: Version::A,
            recipient_id: 17,
            entry_id: 4242,
            thread_id: None,
            recipient: RecipientClass::Collaborator,
        };
        assert_eq!(desk.decode(a), Some(expected));
        assert_eq!(
            desk.encode_a(17, 4242, RecipientClass::Collaborator, "abcdefgh9"),
            a
        );

        // Codes with a '+' (turned into '=') and a '/' in them.
        let plus = OsticketInstallation::new("salt7").expect("salt");
        assert_eq!(plus.code(), "=8UuhD");
        assert_eq!(
            plus.decode("<B=8UuhD-Qw3_e-CAAAAE0AAABCAAAAVWa7BVef-desk@example.org>"),
            Some(b(8, 77, 66, RecipientClass::Owner))
        );
        let slash = OsticketInstallation::new("salt28").expect("salt");
        assert_eq!(slash.code(), "axQ/0g");
        assert_eq!(
            slash.decode("<BaxQ/0g-Qw3_e-CQAAAE4AAABDAAAAQzkJaJML-desk@example.org>"),
            Some(b(9, 78, 67, RecipientClass::Collaborator))
        );
        assert_eq!(
            desk.decode("<BaxQ/0g-Qw3_e-CQAAAE4AAABDAAAAQzkJaJML-desk@example.org>"),
            None,
            "another installation's id"
        );
        assert!(OsticketInstallation::new("").is_none());
    }

    #[test]
    fn b_ids_round_trip() {
        let desk = desk();
        let id = desk.encode_b(
            17,
            4242,
            901,
            RecipientClass::Owner,
            "a1_=Z",
            "support@example.com",
        );
        assert!(id.starts_with(&format!("<B{}-a1_=Z-", desk.code())), "{id}");
        assert!(id.ends_with("-support@example.com>"), "{id}");
        assert_eq!(
            desk.decode(&id),
            Some(OsticketMessageId {
                version: Version::B,
                recipient_id: 17,
                entry_id: 4242,
                thread_id: Some(901),
                recipient: RecipientClass::Owner,
            })
        );
        // Brackets and surrounding blanks do not matter; a mailer that had no address
        // signs with "@osTicketMailer".
        let bare = id.trim_matches(['<', '>']);
        assert_eq!(desk.decode(&format!(" {bare} ")), desk.decode(&id));
        let no_mailbox = desk.encode_b(3, 5, 7, RecipientClass::Staff, "xyz12", "@osTicketMailer");
        assert!(no_mailbox.ends_with("-@osTicketMailer>"), "{no_mailbox}");
        let decoded = desk.decode(&no_mailbox).expect("decodes");
        assert_eq!(
            (decoded.entry_id, decoded.recipient),
            (5, RecipientClass::Staff)
        );
        // The mailbox part is not signed and may hold dashes.
        let dashed = desk.encode_b(
            1,
            2,
            3,
            RecipientClass::Collaborator,
            "r4nd0",
            "help-desk@x.example",
        );
        assert_eq!(desk.decode(&dashed).map(|d| d.entry_id), Some(2));
    }

    #[test]
    fn a_ids_round_trip() {
        let desk = desk();
        let id = desk.encode_a(17, 4242, RecipientClass::Collaborator, "abcdefgh9");
        let decoded = desk.decode(&id).expect("decodes");
        assert_eq!(
            decoded,
            OsticketMessageId {
                version: Version::A,
                recipient_id: 17,
                entry_id: 4242,
                thread_id: None,
                recipient: RecipientClass::Collaborator,
            }
        );
        // An altered signature or an upper-case one (PHP compares exactly) fails.
        let (head, sig) = id.trim_end_matches('>').rsplit_once('@').expect("@");
        assert_eq!(
            desk.decode(&format!("{head}@{}>", sig.to_uppercase())),
            None
        );
        let flipped: String = sig.chars().rev().collect();
        if flipped != sig {
            assert_eq!(desk.decode(&format!("{head}@{flipped}>")), None);
        }
    }

    #[test]
    fn forged_altered_and_foreign_ids_do_not_match() {
        let desk = desk();
        let id = desk.encode_b(
            17,
            4242,
            901,
            RecipientClass::Owner,
            "a1b2c",
            "support@example.com",
        );
        let inner = id.trim_matches(['<', '>']);
        let parts: Vec<&str> = inner.splitn(4, '-').collect();
        let tag = STANDARD_NO_PAD.decode(parts[2]).expect("tag");

        // Another entry id with the old signature.
        let mut forged = tag.clone();
        forged[4..8].copy_from_slice(&4243u32.to_le_bytes());
        let forged_id = format!(
            "<{}-{}-{}-{}>",
            parts[0],
            parts[1],
            STANDARD_NO_PAD.encode(&forged),
            parts[3]
        );
        assert_eq!(desk.decode(&forged_id), None, "forged tag");

        // A flipped signature bit.
        let mut tampered = tag.clone();
        tampered[17] ^= 1;
        let tampered_id = format!(
            "<{}-{}-{}-{}>",
            parts[0],
            parts[1],
            STANDARD_NO_PAD.encode(&tampered),
            parts[3]
        );
        assert_eq!(desk.decode(&tampered_id), None, "tampered signature");

        // Another random part (it is signed).
        assert_eq!(desk.decode(&id.replace("-a1b2c-", "-a1b2d-")), None);

        // Another installation: its code differs, and so does its key.
        let other = OsticketInstallation::new("another desk's salt").expect("salt");
        assert_ne!(other.code(), desk.code());
        assert_eq!(other.decode(&id), None, "another installation's salt");
        let foreign = other.encode_b(
            17,
            4242,
            901,
            RecipientClass::Owner,
            "a1b2c",
            "support@example.com",
        );
        assert_eq!(desk.decode(&foreign), None, "another installation's id");
        // Its tag under our code still fails: the signature covers the code and the key.
        let foreign_inner = foreign.trim_matches(['<', '>']);
        let relabelled = format!("<B{}{}>", desk.code(), &foreign_inner[7..]);
        assert_eq!(desk.decode(&relabelled), None, "relabelled foreign id");

        // Truncated or padded tags, other shapes.
        let short = format!(
            "<{}-{}-{}-{}>",
            parts[0],
            parts[1],
            STANDARD_NO_PAD.encode(&tag[..17]),
            parts[3]
        );
        assert_eq!(desk.decode(&short), None);
        for other in [
            "",
            "<>",
            "<abc@example.com>",
            "<B-x-y@z>",
            &format!("<B{}-a1b2c@example.com>", desk.code()),
            &format!("<B{}-a1b2c--x@example.com>", desk.code()),
            &format!("<C{}-a1b2c-AAAA-x@example.com>", desk.code()),
            "<hl.42.7.0badcafe.00112233445566778899aabb@helpline.example>",
            "<CAH=random+gmail-ids-look-like-this@mail.gmail.com>",
        ] {
            assert_eq!(desk.decode(other), None, "{other}");
        }
    }

    #[test]
    fn shape_test_is_cheap_and_loose() {
        let desk = desk();
        assert!(has_shape(&desk.encode_b(
            1,
            2,
            3,
            RecipientClass::Owner,
            "abcde",
            "s@x"
        )));
        assert!(has_shape(&desk.encode_a(
            1,
            2,
            RecipientClass::Owner,
            "abcde"
        )));
        assert!(!has_shape("<abc@example.com>"));
        assert!(!has_shape("<B-x@y>"));
        assert!(!has_shape("<Bcode-rand@y>"));
        assert!(!has_shape("<hl.1.2.3.4@x>"));
    }

    #[test]
    fn body_markers_are_found_in_html_and_text() {
        let html = r#"<p>Thanks!</p><blockquote><div style="display:none"
            class="mid-Babc123-xyz12-AQAAAEgQAAAHAAAAVRHKzp7f-support@example.com">-- reply above this line --<br/><br/></div>
            <p>old</p></blockquote>"#;
        let text = "Thanks!\n\n> Old text\n> Ref-Mid: Babc123-xyz12-AQAAAEgQAAAHAAAAVRHKzp7f-support@example.com\n> Ref-Mid: Bother-a-b-c@x\n";
        assert_eq!(
            body_markers(Some(html), Some(text)),
            vec![
                "<Babc123-xyz12-AQAAAEgQAAAHAAAAVRHKzp7f-support@example.com>".to_owned(),
                "<Bother-a-b-c@x>".to_owned(),
            ]
        );
        // At the very end of the text, as osTicket writes it.
        assert_eq!(
            body_markers(None, Some("Reply\nRef-Mid: Bq-w-e-r@t")),
            vec!["<Bq-w-e-r@t>".to_owned()]
        );
        assert!(body_markers(Some("<div class=\"mid-\">x</div>"), Some("Ref-Mid: ")).is_empty());
        assert!(body_markers(Some("class=\"mid-unterminated"), None).is_empty());
        assert!(body_markers(None, None).is_empty());
        let many: String = (0..50).map(|n| format!("Ref-Mid: B{n}-r-t@x\n")).collect();
        assert_eq!(body_markers(None, Some(&many)).len(), MAX_BODY_MARKERS);
    }
}
