//! Request bodies of the v1 API and their checking into core types. Unknown fields are
//! refused (a typo must not be silently ignored), and every problem names its field.

use super::problem::Problem;
use crate::compat::dataurl::decode_base64;
use helpline_core::FieldError;
use helpline_core::attachment::NewAttachment;
use helpline_core::body::{BodyFormat, MessageBody};
use helpline_core::email::EmailAddress;
use helpline_core::ids::{StaffId, StatusId};
use helpline_core::service::posting::{StaffRef, StatusRef};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use utoipa::ToSchema;

/// Parses a JSON body into `T`, naming the offending field on failure.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, Problem> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Problem::field("body", "a JSON object is required"));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let field = if path == "." || path.is_empty() {
            "body".to_owned()
        } else {
            path
        };
        Problem::field(field, error.inner().to_string())
    })
}

/// A file attached through the v1 API.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttachmentInput {
    /// File name (directories are dropped).
    pub filename: String,
    /// MIME type, e.g. `application/pdf`.
    pub content_type: String,
    /// The content, base64-encoded.
    pub data: String,
}

/// Decodes and checks attachments; problems are named `attachments[i].field`.
pub fn attachments(
    files: Vec<AttachmentInput>,
    max_bytes: usize,
    problems: &mut Vec<FieldError>,
) -> Vec<NewAttachment> {
    let mut checked = Vec::with_capacity(files.len());
    for (index, file) in files.into_iter().enumerate() {
        match decode_base64(&file.data) {
            Err(e) => problems.push(FieldError::new(format!("attachments[{index}].data"), e)),
            Ok(bytes) => {
                match NewAttachment::new(&file.filename, &file.content_type, bytes, max_bytes) {
                    Ok(attachment) => checked.push(attachment),
                    Err(e) => problems.push(FieldError::new(format!("attachments[{index}]"), e)),
                }
            }
        }
    }
    checked
}

/// Checks a message body with its format (`text` unless given).
pub fn message(
    raw: Option<&str>,
    format: Option<&str>,
    problems: &mut Vec<FieldError>,
) -> Option<MessageBody> {
    let format = match format.map(str::trim) {
        None | Some("") | Some("text") => BodyFormat::Text,
        Some("html") => BodyFormat::Html,
        Some(other) => {
            problems.push(FieldError::new(
                "format",
                format!("must be 'text' or 'html', not '{other}'"),
            ));
            return None;
        }
    };
    match raw {
        None => {
            problems.push(FieldError::new("message", "is required"));
            None
        }
        Some(text) => MessageBody::parse(text, format)
            .map_err(|e| problems.push(FieldError::new("message", e)))
            .ok(),
    }
}

/// Checks an address.
pub fn email(field: &str, raw: &str, problems: &mut Vec<FieldError>) -> Option<EmailAddress> {
    EmailAddress::parse(raw)
        .map_err(|e| problems.push(FieldError::new(field, e)))
        .ok()
}

/// A staff member named by id, username or address.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum StaffInput {
    /// Row id.
    Id(i64),
    /// Username, or an address when it contains `@`.
    Name(String),
}

impl StaffInput {
    /// The core reference.
    pub fn to_ref(&self, field: &str, problems: &mut Vec<FieldError>) -> Option<StaffRef> {
        match self {
            Self::Id(id) => Some(StaffRef::Id(StaffId(*id))),
            Self::Name(name) if name.contains('@') => {
                email(field, name, problems).map(StaffRef::Email)
            }
            Self::Name(name) if !name.trim().is_empty() => {
                Some(StaffRef::Username(name.trim().to_owned()))
            }
            Self::Name(_) => {
                problems.push(FieldError::new(field, "is empty"));
                None
            }
        }
    }
}

/// A status named by id or name.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum StatusInput {
    /// Row id.
    Id(i64),
    /// Name, e.g. `Resolved`.
    Name(String),
}

impl StatusInput {
    /// The core reference.
    pub fn to_ref(&self) -> StatusRef {
        match self {
            Self::Id(id) => StatusRef::Id(StatusId(*id)),
            Self::Name(name) => StatusRef::Name(name.clone()),
        }
    }
}

/// Turns collected problems into an error, or passes `value` through.
pub fn finish<T>(problems: Vec<FieldError>, value: Option<T>) -> Result<T, Problem> {
    match value {
        Some(value) if problems.is_empty() => Ok(value),
        _ if problems.is_empty() => Err(Problem::field("body", "is incomplete")),
        _ => Err(Problem::invalid(problems)),
    }
}

/// For PATCH fields where `null` means "clear": absent → `None`, `null` → `Some(None)`.
pub fn double_option<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}
