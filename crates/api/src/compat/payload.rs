//! The ticket a compatible request describes, before and after checking.

use crate::compat::dataurl;
use helpline_core::FieldError;
use helpline_core::attachment::NewAttachment;
use helpline_core::body::{BodyFormat, MessageBody};
use helpline_core::email::EmailAddress;
use helpline_core::ids::{PriorityId, TopicId};
use helpline_core::ticket::{NewTicket, NotifyOptions, Source, Subject};
use helpline_core::user::{CustomerContact, MAX_NAME_LEN, check_text};
use std::net::IpAddr;

/// A file as sent, not yet checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawAttachment {
    /// File name as sent.
    pub name: String,
    /// MIME type as sent.
    pub content_type: String,
    /// Decoded content, or why it could not be decoded.
    pub data: Result<Vec<u8>, String>,
}

/// The message as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawMessage {
    /// Decoded text, or why it could not be decoded.
    pub text: Result<String, String>,
    /// Text or HTML.
    pub format: BodyFormat,
}

/// Every field of osTicket's create request, as text, format-independent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawTicket {
    /// `name`.
    pub name: Option<String>,
    /// `email`.
    pub email: Option<String>,
    /// `subject`.
    pub subject: Option<String>,
    /// `message`.
    pub message: Option<RawMessage>,
    /// `phone`.
    pub phone: Option<String>,
    /// `notes` (on a new user).
    pub notes: Option<String>,
    /// `topicId`.
    pub topic_id: Option<String>,
    /// `priority` or `priorityId`.
    pub priority: Option<String>,
    /// `source`.
    pub source: Option<String>,
    /// `ip`.
    pub ip: Option<String>,
    /// `alert`.
    pub alert: Option<bool>,
    /// `autorespond`.
    pub autorespond: Option<bool>,
    /// `attachments`.
    pub attachments: Vec<RawAttachment>,
    /// Problems found while reading the structure (field, message).
    pub structure_errors: Vec<FieldError>,
}

/// Interprets osTicket's loose booleans: `false`, `0`, `no`, `off` and the empty string are
/// false; everything else is true. (PHP would take the string `"false"` as true; nobody means that.)
pub fn loose_bool(raw: &str) -> bool {
    !matches!(
        raw.trim().to_ascii_lowercase().as_str(),
        "" | "0" | "false" | "no" | "off"
    )
}

/// Checks a raw request into a [`NewTicket`], collecting every problem with osTicket's field
/// names. `caller` is the API client's address, the default for `ip`.
pub fn check(
    raw: RawTicket,
    caller: IpAddr,
    max_attachment_bytes: usize,
) -> Result<NewTicket, Vec<FieldError>> {
    let mut errors = raw.structure_errors.clone();
    let mut problem = |field: &str, message: String| errors.push(FieldError::new(field, message));

    let email = match raw
        .email
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        None => {
            problem("email", "Email address is required".into());
            None
        }
        Some(text) => EmailAddress::parse(text)
            .map_err(|e| problem("email", format!("Valid email address required: {e}")))
            .ok(),
    };
    let name = raw.name.as_deref().map(str::trim).filter(|n| !n.is_empty());
    if name.is_some_and(|n| n.chars().count() > MAX_NAME_LEN || n.chars().any(char::is_control)) {
        problem(
            "name",
            format!("must be one line of at most {MAX_NAME_LEN} characters"),
        );
    }
    let subject = match Subject::parse(raw.subject.as_deref().unwrap_or_default()) {
        Ok(subject) => Some(subject),
        Err(e) => {
            problem("subject", format!("Subject {e}"));
            None
        }
    };
    let message = match raw.message {
        None => {
            problem("message", "Message is required".into());
            None
        }
        Some(RawMessage { text: Err(e), .. }) => {
            problem("message", e);
            None
        }
        Some(RawMessage {
            text: Ok(text),
            format,
        }) => MessageBody::parse(&text, format)
            .map_err(|e| problem("message", format!("Message {e}")))
            .ok(),
    };
    let topic_id = parse_id(raw.topic_id.as_deref(), "topicId", &mut problem).map(TopicId);
    let priority_id = parse_id(raw.priority.as_deref(), "priority", &mut problem).map(PriorityId);
    let source = match raw
        .source
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => Source::Api,
        Some(text) => Source::parse(text).unwrap_or_else(|| {
            problem(
                "source",
                format!(
                    "Invalid ticket origin given: '{text}' (use API, Email, Web, Phone or Other)"
                ),
            );
            Source::Api
        }),
    };
    let ip = match raw.ip.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => caller,
        Some(text) => text.parse().unwrap_or_else(|_| {
            problem("ip", format!("'{text}' is not an IP address"));
            caller
        }),
    };
    let mut attachments = Vec::with_capacity(raw.attachments.len());
    for (index, file) in raw.attachments.into_iter().enumerate() {
        let field = format!("attachments[{index}]");
        match file.data {
            Err(e) => problem(&field, format!("{}: {e}", file.name)),
            Ok(data) => {
                match NewAttachment::new(&file.name, &file.content_type, data, max_attachment_bytes)
                {
                    Ok(attachment) => attachments.push(attachment),
                    Err(e) => problem(&field, e),
                }
            }
        }
    }
    let phone = check_text(raw.phone.as_deref(), 64)
        .map_err(|e| problem("phone", e))
        .unwrap_or_default()
        .map(|p| p.to_uppercase());
    let notes = check_text(raw.notes.as_deref(), 10_000)
        .map_err(|e| problem("notes", e))
        .unwrap_or_default();

    match (email, subject, message) {
        (Some(email), Some(subject), Some(message)) if errors.is_empty() => Ok(NewTicket {
            contact: CustomerContact {
                email,
                name: name.map(str::to_owned),
                phone,
                notes,
            },
            subject,
            message,
            topic_id,
            priority_id,
            source,
            ip: Some(ip),
            attachments,
            notify: NotifyOptions {
                alert: raw.alert.unwrap_or(true),
                autorespond: raw.autorespond.unwrap_or(true),
            },
            mail: Default::default(),
            flags: Default::default(),
        }),
        _ => Err(errors),
    }
}

fn parse_id(raw: Option<&str>, field: &str, problem: &mut impl FnMut(&str, String)) -> Option<i64> {
    let text = raw.map(str::trim).filter(|t| !t.is_empty())?;
    match text.parse::<i64>() {
        Ok(id) if id > 0 => Some(id),
        _ => {
            problem(field, format!("'{text}' is not a valid id"));
            None
        }
    }
}

/// Turns a message given as a string (plain text, or a `data:` URL) into a [`RawMessage`].
pub fn message_from_string(raw: &str) -> RawMessage {
    match dataurl::parse(raw) {
        None => RawMessage {
            text: Ok(raw.to_owned()),
            format: BodyFormat::Text,
        },
        Some(Err(e)) => RawMessage {
            text: Err(e),
            format: BodyFormat::Text,
        },
        Some(Ok(url)) => RawMessage {
            format: if url.mime == "text/html" {
                BodyFormat::Html
            } else {
                BodyFormat::Text
            },
            text: dataurl::decode_text(&url.data, url.charset.as_deref()),
        },
    }
}

/// Turns an attachment value (a `data:` URL, or literal text) into a [`RawAttachment`].
pub fn attachment_from_string(name: &str, raw: &str) -> RawAttachment {
    match dataurl::parse(raw) {
        None => RawAttachment {
            name: name.to_owned(),
            content_type: "text/plain".into(),
            data: Ok(raw.as_bytes().to_vec()),
        },
        Some(Err(e)) => RawAttachment {
            name: name.to_owned(),
            content_type: "application/octet-stream".into(),
            data: Err(e),
        },
        Some(Ok(url)) => RawAttachment {
            name: name.to_owned(),
            content_type: url.mime,
            data: Ok(url.data),
        },
    }
}
