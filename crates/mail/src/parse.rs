//! Raw mail bytes into an owned, checked [`InboundMail`] (mail-parser 0.11 underneath).

use mail_parser::{Address, HeaderName, HeaderValue, MessageParser, MimeHeaders, PartType};
use std::sync::LazyLock;

/// The largest message accepted by default (25 MiB); larger ones are quarantined.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 25 * 1024 * 1024;

/// Why raw bytes are not a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Nothing that looks like a header block.
    #[error("not an email message: no header could be read")]
    NoHeaders,
    /// Over the size limit.
    #[error("message of {size} bytes is larger than the limit of {limit} bytes")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
}

/// A name and address from a header.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Mailbox {
    /// Display name, if any.
    pub name: Option<String>,
    /// The address as written.
    pub address: String,
}

/// A file carried by a message (attachments and inline images).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailAttachment {
    /// File name (a generated one when the part has none).
    pub filename: String,
    /// MIME type, lower case.
    pub content_type: String,
    /// Decoded bytes.
    pub content: Vec<u8>,
    /// `Content-ID` without angle brackets, for `cid:` references.
    pub content_id: Option<String>,
    /// Shown inline rather than as a download.
    pub inline: bool,
}

/// Everything the intake pipeline needs from one message.
#[derive(Debug, Clone, Default)]
pub struct InboundMail {
    /// `Message-ID` in angle brackets (`<id@host>`).
    pub message_id: Option<String>,
    /// `In-Reply-To` ids, in angle brackets.
    pub in_reply_to: Vec<String>,
    /// `References` ids, oldest first, in angle brackets.
    pub references: Vec<String>,
    /// The first `From` mailbox.
    pub from: Option<Mailbox>,
    /// The first `Reply-To` mailbox.
    pub reply_to: Option<Mailbox>,
    /// `To` mailboxes.
    pub to: Vec<Mailbox>,
    /// `Cc` mailboxes.
    pub cc: Vec<Mailbox>,
    /// Decoded subject.
    pub subject: Option<String>,
    /// The first text/plain body (converted from HTML when only HTML exists).
    pub text: Option<String>,
    /// The first text/html body, when the message has one.
    pub html: Option<String>,
    /// Files.
    pub attachments: Vec<MailAttachment>,
    /// Every header as (lower-case name, value with folding undone), in order.
    pub headers: Vec<(String, String)>,
    /// Top-level content type with parameters, lower case (`multipart/report; report-type=…`).
    pub content_type: Option<String>,
    /// MIME types of every part, lower case (to spot `message/delivery-status` and kin).
    pub part_types: Vec<String>,
}

/// mail-parser's own choice of parser per header, except that `Received` headers (a dozen in a
/// typical message) stay raw: nothing reads their parsed form, and parsing them took a quarter
/// of the parser's time. (mail-parser applies its defaults only while no header is configured,
/// so they are all spelled out here.)
fn parser() -> &'static MessageParser {
    static PARSER: LazyLock<MessageParser> = LazyLock::new(configured_parser);
    &PARSER
}

fn configured_parser() -> MessageParser {
    let mut parser = MessageParser::new()
        .with_mime_headers()
        .with_date_headers()
        .with_address_headers()
        .with_message_ids()
        .header_text(HeaderName::Subject)
        .header_text(HeaderName::Comments)
        .header_id(HeaderName::ReturnPath)
        .header_comma_separated(HeaderName::Keywords)
        .header_comma_separated(HeaderName::ContentLanguage)
        .header_raw(HeaderName::Received)
        .header_raw(HeaderName::MimeVersion);
    for list in [
        HeaderName::ListArchive,
        HeaderName::ListHelp,
        HeaderName::ListId,
        HeaderName::ListOwner,
        HeaderName::ListPost,
        HeaderName::ListSubscribe,
        HeaderName::ListUnsubscribe,
    ] {
        parser = parser.header_address(list);
    }
    parser
}

impl InboundMail {
    /// Parses `raw`, refusing messages over `max_bytes` and bytes with no header at all.
    pub fn parse(raw: &[u8], max_bytes: usize) -> Result<Self, ParseError> {
        if raw.len() > max_bytes {
            return Err(ParseError::TooLarge {
                size: raw.len(),
                limit: max_bytes,
            });
        }
        let raw = normalise_framing(raw);
        let message = parser().parse(raw.as_ref()).ok_or(ParseError::NoHeaders)?;
        let headers: Vec<(String, String)> = message
            .headers_raw()
            .map(|(name, value)| (name.to_ascii_lowercase(), unfold(value)))
            .collect();
        if headers.is_empty() {
            return Err(ParseError::NoHeaders);
        }
        let root_type = message.root_part().content_type().map(|ct| {
            let mut text = match ct.subtype() {
                Some(sub) => format!("{}/{}", ct.ctype(), sub),
                None => ct.ctype().to_owned(),
            };
            for attribute in ct.attributes().unwrap_or_default() {
                text.push_str(&format!("; {}={}", attribute.name, attribute.value));
            }
            text.to_ascii_lowercase()
        });
        let part_types = message
            .parts
            .iter()
            .filter_map(|part| part.content_type())
            .map(|ct| match ct.subtype() {
                Some(sub) => format!("{}/{}", ct.ctype(), sub).to_ascii_lowercase(),
                None => ct.ctype().to_ascii_lowercase(),
            })
            .collect();
        let html = if message.html_body_count() > 0
            && message.html_part(0).is_some_and(|p| p.is_text_html())
        {
            message.body_html(0).map(|h| h.into_owned())
        } else {
            None
        };
        let mut attachments = Vec::new();
        for (index, part) in message.attachments().enumerate() {
            let content = match &part.body {
                PartType::Binary(bytes) | PartType::InlineBinary(bytes) => bytes.to_vec(),
                PartType::Text(text) | PartType::Html(text) => text.as_bytes().to_vec(),
                PartType::Message(inner) => inner.raw_message().to_vec(),
                PartType::Multipart(_) => continue,
            };
            let content_type = part
                .content_type()
                .map(|ct| match ct.subtype() {
                    Some(sub) => format!("{}/{}", ct.ctype(), sub),
                    None => ct.ctype().to_owned(),
                })
                .unwrap_or_else(|| "application/octet-stream".to_owned())
                .to_ascii_lowercase();
            let filename = part
                .attachment_name()
                .map(str::to_owned)
                .unwrap_or_else(|| default_name(index, &content_type));
            attachments.push(MailAttachment {
                filename,
                content_type,
                content,
                content_id: part
                    .content_id()
                    .map(|id| id.trim_matches(['<', '>', ' ']).to_owned()),
                inline: matches!(part.body, PartType::InlineBinary(_))
                    || part
                        .content_disposition()
                        .is_some_and(|d| d.ctype().eq_ignore_ascii_case("inline")),
            });
        }
        Ok(Self {
            message_id: message.message_id().map(bracket),
            in_reply_to: id_list(message.in_reply_to()),
            references: id_list(message.references()),
            from: message.from().and_then(first_mailbox),
            reply_to: message.reply_to().and_then(first_mailbox),
            to: message.to().map(mailboxes).unwrap_or_default(),
            cc: message.cc().map(mailboxes).unwrap_or_default(),
            subject: message.subject().map(str::to_owned),
            text: message.body_text(0).map(|t| t.into_owned()),
            html,
            attachments,
            headers,
            content_type: root_type,
            part_types,
        })
    }

    /// Every value of header `name` (case-insensitive).
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether header `name` is present at all.
    pub fn has_header(&self, name: &str) -> bool {
        self.header(name).is_some()
    }

    /// The sender's address, lower-cased, if any.
    pub fn from_address(&self) -> Option<String> {
        self.from.as_ref().map(|m| m.address.to_ascii_lowercase())
    }
}

/// Removes what mail stores put around a message before it reaches the parser.
///
/// * An mbox `From sender date` first line is a separator written by the store, not a header
///   (it has no colon after the name); left in place it swallows the real headers after it.
/// * A message whose first line ends in a bare CR (old Mac OS files) gets its bare CRs turned
///   into LF, because the parser only knows LF and CRLF and would otherwise read the whole
///   header block as one line. Messages that use LF or CRLF are left untouched, so a stray CR
///   inside their body keeps its meaning.
fn normalise_framing(raw: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let mut raw = raw;
    // `From :` (with the obsolete space before the colon) is a header, not a separator.
    let is_mbox_line = raw.strip_prefix(b"From ").is_some_and(|rest| {
        rest.iter()
            .find(|&&b| b != b' ' && b != b'\t')
            .is_some_and(|&b| b != b':')
    });
    if is_mbox_line {
        let end = raw
            .iter()
            .position(|&b| b == b'\n' || b == b'\r')
            .unwrap_or(raw.len());
        let rest = raw.get(end..).unwrap_or_default();
        // Drop the line break too (CRLF, LF or a bare CR).
        raw = rest
            .strip_prefix(b"\r\n")
            .or_else(|| rest.get(1..))
            .unwrap_or(rest);
    }
    let first_break = raw.iter().position(|&b| b == b'\n' || b == b'\r');
    let bare_cr =
        first_break.is_some_and(|i| raw.get(i) == Some(&b'\r') && raw.get(i + 1) != Some(&b'\n'));
    if !bare_cr {
        return std::borrow::Cow::Borrowed(raw);
    }
    let mut out = Vec::with_capacity(raw.len());
    for (i, &b) in raw.iter().enumerate() {
        if b == b'\r' && raw.get(i + 1) != Some(&b'\n') {
            out.push(b'\n');
        } else {
            out.push(b);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Undoes header folding: line breaks and the whitespace after them become one space.
fn unfold(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut pending_space = false;
    for c in value.chars() {
        if c == '\r' || c == '\n' {
            pending_space = true;
            continue;
        }
        if pending_space {
            if !(c == ' ' || c == '\t') {
                out.push(' ');
            } else if !out.ends_with(' ') {
                out.push(' ');
                pending_space = false;
                continue;
            }
            pending_space = false;
            if c == ' ' || c == '\t' {
                continue;
            }
        }
        out.push(c);
    }
    out.trim().to_owned()
}

fn bracket(id: &str) -> String {
    format!("<{}>", id.trim().trim_matches(['<', '>']))
}

fn id_list(value: &HeaderValue<'_>) -> Vec<String> {
    match value {
        HeaderValue::Text(id) => vec![bracket(id)],
        HeaderValue::TextList(ids) => ids.iter().map(|id| bracket(id)).collect(),
        _ => Vec::new(),
    }
}

fn mailboxes(address: &Address<'_>) -> Vec<Mailbox> {
    address
        .iter()
        .filter_map(|addr| {
            let address = addr.address()?.trim();
            (!address.is_empty()).then(|| Mailbox {
                name: addr
                    .name()
                    .map(|n| n.trim().to_owned())
                    .filter(|n| !n.is_empty()),
                address: address.to_owned(),
            })
        })
        .collect()
}

fn first_mailbox(address: &Address<'_>) -> Option<Mailbox> {
    mailboxes(address).into_iter().next()
}

fn default_name(index: usize, content_type: &str) -> String {
    let extension = match content_type {
        "message/rfc822" => "eml",
        "text/plain" => "txt",
        "text/html" => "html",
        "image/png" => "png",
        "image/jpeg" => "jpg",
        "image/gif" => "gif",
        "application/pdf" => "pdf",
        _ => "bin",
    };
    format!("attachment-{}.{extension}", index + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPLY: &[u8] = b"From: =?ISO-8859-1?Q?Andr=E9?= <andre@example.com>\r\n\
To: Support <support@example.net>\r\n\
Cc: boss@example.com, \"Other\" <other@example.com>\r\n\
Subject: Re: [#123456] Drucker\r\n\
\x20defekt\r\n\
Message-ID: <abc@mail.example.com>\r\n\
In-Reply-To: <t1.e2@helpline.example.net>\r\n\
References: <root@example.com>\r\n\t<t1.e2@helpline.example.net>\r\n\
Auto-Submitted: no\r\n\
\r\n\
Hello\r\n";

    #[test]
    fn reads_threading_headers_and_addresses() {
        let mail = InboundMail::parse(REPLY, 1 << 20).expect("parses");
        assert_eq!(mail.message_id.as_deref(), Some("<abc@mail.example.com>"));
        assert_eq!(mail.in_reply_to, vec!["<t1.e2@helpline.example.net>"]);
        assert_eq!(
            mail.references,
            vec!["<root@example.com>", "<t1.e2@helpline.example.net>"]
        );
        let from = mail.from.as_ref().expect("from");
        assert_eq!(from.name.as_deref(), Some("André"));
        assert_eq!(from.address, "andre@example.com");
        assert_eq!(mail.cc.len(), 2);
        assert_eq!(
            mail.subject.as_deref(),
            Some("Re: [#123456] Drucker defekt")
        );
        assert_eq!(mail.header("auto-submitted"), Some("no"));
        assert_eq!(mail.text.as_deref().map(str::trim), Some("Hello"));
    }

    #[test]
    fn skips_an_mbox_from_line() {
        for raw in [
            &b"From MAILER-DAEMON  Mon Sep 20 19:29:27 2021\nFrom: a@example.com\nSubject: Hi\n\nBody\n"[..],
            &b"From MAILER-DAEMON  Mon Sep 20 19:29:27 2021\r\nFrom: a@example.com\r\nSubject: Hi\r\n\r\nBody\r\n"[..],
        ] {
            let mail = InboundMail::parse(raw, 1 << 20).expect("parses");
            assert_eq!(mail.headers[0].0, "from");
            assert_eq!(mail.from_address().as_deref(), Some("a@example.com"));
            assert_eq!(mail.subject.as_deref(), Some("Hi"));
        }
    }

    #[test]
    fn reads_bare_cr_line_endings() {
        let raw = b"From x Mon Sep 20 19:29:27 2021\rFrom: a@example.com\rSubject: Hi\r\tthere\r\rLine 1\rLine 2\r";
        let mail = InboundMail::parse(raw, 1 << 20).expect("parses");
        assert_eq!(mail.from_address().as_deref(), Some("a@example.com"));
        assert_eq!(mail.subject.as_deref(), Some("Hi there"));
        assert_eq!(mail.text.as_deref().map(str::trim), Some("Line 1\nLine 2"));
        // `From :` is an (obsolete-syntax) header, not an mbox line.
        let mail = InboundMail::parse(b"From : a@example.com\nSubject: Hi\n\nx\n", 1 << 20)
            .expect("parses");
        assert_eq!(mail.from_address().as_deref(), Some("a@example.com"));
        // A stray CR inside an LF message is left alone.
        let mail = InboundMail::parse(b"Subject: Hi\n\nA\rB\n", 1 << 20).expect("parses");
        assert!(mail.text.as_deref().is_some_and(|t| t.contains('\r')));
    }

    #[test]
    fn headers_parse_as_mail_parser_parses_them_except_received() {
        let raw = b"Received: from mx.example.com (mx.example.com [192.0.2.1])\r\n\
\tby mail.example.net with ESMTPS id 42; Thu, 03 Dec 2026 10:00:00 +0000\r\n\
Return-Path: <bounce@example.com>\r\n\
From: =?ISO-8859-1?Q?Andr=E9?= <andre@example.com>\r\n\
Sender: list@example.org\r\n\
Reply-To: Andre <reply@example.com>\r\n\
To: Support <support@example.net>\r\n\
Cc: boss@example.com, \"Other\" <other@example.com>\r\n\
Bcc: hidden@example.com\r\n\
Resent-From: r@example.com\r\n\
Resent-Sender: rs@example.com\r\n\
Resent-To: rt@example.com\r\n\
Resent-Cc: rc@example.com\r\n\
Resent-Bcc: rb@example.com\r\n\
Resent-Date: Thu, 03 Dec 2026 10:00:00 +0000\r\n\
Resent-Message-ID: <resent@example.com>\r\n\
Subject: =?UTF-8?Q?Caf=C3=A9?=\r\n\
Comments: =?UTF-8?Q?caf=C3=A9?=\r\n\
Keywords: a, b\r\n\
List-Id: Example list <list.example.org>\r\n\
List-Unsubscribe: <mailto:leave@example.org>\r\n\
List-Archive: <https://example.org/archive>\r\n\
List-Help: <mailto:help@example.org>\r\n\
List-Owner: <mailto:owner@example.org>\r\n\
List-Post: <mailto:list@example.org>\r\n\
List-Subscribe: <mailto:join@example.org>\r\n\
Message-ID: <m1@example.com>\r\n\
In-Reply-To: <p@example.com>\r\n\
References: <r@example.com> <p@example.com>\r\n\
Date: Thu, 03 Dec 2026 10:00:00 +0000\r\n\
MIME-Version: 1.0\r\n\
Content-Language: en, fr\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: 8bit\r\n\
Content-Disposition: inline; filename=\"note.txt\"\r\n\
Content-ID: <part1@example.com>\r\n\
Content-Description: =?UTF-8?Q?Caf=C3=A9?= note\r\n\
Content-Location: https://example.com/note.txt\r\n\
X-Other: =?UTF-8?Q?raw?=\r\n\r\nbody\r\n";
        let ours = parser().parse(raw).expect("parses");
        let theirs = MessageParser::default().parse(raw).expect("parses");
        let (ours, theirs) = (ours.headers(), theirs.headers());
        assert_eq!(ours.len(), theirs.len());
        for (our, their) in ours.iter().zip(theirs) {
            assert_eq!(our.name, their.name);
            if our.name == HeaderName::Received {
                assert!(matches!(our.value, HeaderValue::Text(_)), "{:?}", our.value);
                assert!(matches!(their.value, HeaderValue::Received(_)));
            } else {
                assert_eq!(our.value, their.value, "{}", our.name.as_str());
            }
        }
    }

    #[test]
    fn refuses_oversized_and_headerless_input() {
        assert!(matches!(
            InboundMail::parse(REPLY, 10),
            Err(ParseError::TooLarge { .. })
        ));
        assert_eq!(
            InboundMail::parse(b"", 100).err(),
            Some(ParseError::NoHeaders)
        );
    }
}
