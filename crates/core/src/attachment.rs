//! Attachments. File content is stored once per distinct SHA-256; attachments point at it.

use crate::ids::{AttachmentId, EntryId, FileId};
use sha2::{Digest, Sha256};

/// The longest file name kept.
pub const MAX_FILENAME_LEN: usize = 255;

/// A checked file to attach to a new thread entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAttachment {
    /// File name without any directory part.
    pub filename: String,
    /// MIME type, e.g. `image/png`.
    pub content_type: String,
    /// The bytes.
    pub content: Vec<u8>,
    /// The mail part's `Content-ID` (without brackets), so HTML `cid:` references can link it.
    pub content_id: Option<String>,
}

impl NewAttachment {
    /// The same file, referred to as `cid:{content_id}` by the message's HTML.
    pub fn with_content_id(self, content_id: Option<String>) -> Self {
        let content_id = content_id
            .map(|id| id.chars().filter(|c| !c.is_control()).collect::<String>())
            .filter(|id| !id.is_empty() && id.len() <= 255);
        Self { content_id, ..self }
    }

    /// Checks name, type and size. `max_bytes` is the configured per-file limit.
    pub fn new(
        filename: &str,
        content_type: &str,
        content: Vec<u8>,
        max_bytes: usize,
    ) -> Result<Self, String> {
        // Keep only the last path component: a name like `../../etc/passwd` must not survive
        // into any later code that writes files to disk.
        let base = filename
            .rsplit(['/', '\\'])
            .next()
            .unwrap_or_default()
            .trim();
        if base.is_empty() || base == "." || base == ".." {
            return Err("has no file name".into());
        }
        if base.chars().count() > MAX_FILENAME_LEN || base.chars().any(char::is_control) {
            return Err(format!("'{base}' is not an acceptable file name"));
        }
        let content_type = content_type.trim().to_ascii_lowercase();
        let type_ok = content_type
            .split_once('/')
            .is_some_and(|(kind, sub)| is_token(kind) && is_token(sub));
        if !type_ok {
            return Err(format!("'{content_type}' is not a MIME type"));
        }
        if content.len() > max_bytes {
            return Err(format!(
                "{base}: File size is too large ({} bytes; the limit is {max_bytes})",
                content.len()
            ));
        }
        Ok(Self {
            filename: base.to_owned(),
            content_type,
            content,
            content_id: None,
        })
    }

    /// Hex SHA-256 of the content: the key the store deduplicates file content by.
    pub fn sha256(&self) -> String {
        sha256_hex(&self.content)
    }
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$&-^_.+".contains(c))
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    Sha256::digest(bytes)
        .iter()
        .fold(String::with_capacity(64), |mut out, byte| {
            let _ = write!(out, "{byte:02x}");
            out
        })
}

/// An attachment's metadata as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Attachment {
    /// Row id.
    pub id: AttachmentId,
    /// The entry it belongs to.
    pub entry_id: EntryId,
    /// The shared content row.
    pub file_id: FileId,
    /// File name.
    pub filename: String,
    /// MIME type.
    pub content_type: String,
    /// Size in bytes.
    pub size: i64,
    /// Hex SHA-256 of the content.
    pub sha256: String,
    /// The mail part's `Content-ID`, for inline images.
    pub content_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lose_directories_and_sizes_are_capped() {
        let file =
            NewAttachment::new("../../etc/passwd", "Text/Plain", b"x".to_vec(), 10).expect("valid");
        assert_eq!(file.filename, "passwd");
        assert_eq!(file.content_type, "text/plain");
        assert!(NewAttachment::new("a.txt", "text/plain", vec![0; 11], 10).is_err());
        assert!(NewAttachment::new("..", "text/plain", vec![], 10).is_err());
        assert!(NewAttachment::new("a.txt", "not a type", vec![], 10).is_err());
    }

    #[test]
    fn sha256_is_hex() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
