//! RFC 2397 `data:` URLs, as osTicket's clients send messages and attachments.

use base64::Engine;

/// A decoded `data:` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataUrl {
    /// Lower-cased MIME type (`text/plain` when the URL names none).
    pub mime: String,
    /// The `charset` parameter, lower-cased, if any.
    pub charset: Option<String>,
    /// The decoded bytes.
    pub data: Vec<u8>,
}

/// Parses `raw` as a `data:` URL, or returns `None` when it is not one.
///
/// Unlike osTicket, every parameter is looked at, so `data:text/plain;charset=utf-8;base64,…`
/// is base64-decoded as its sender meant.
pub fn parse(raw: &str) -> Option<Result<DataUrl, String>> {
    let rest = raw
        .get(..5)
        .filter(|scheme| scheme.eq_ignore_ascii_case("data:"))
        .map(|_| &raw[5..])?;
    let Some((header, payload)) = rest.split_once(',') else {
        return Some(Err("data URL has no ',' before its data".into()));
    };
    let mut params = header.split(';').map(str::trim);
    let mime = params
        .next()
        .filter(|m| !m.is_empty())
        .unwrap_or("text/plain")
        .to_ascii_lowercase();
    let mut base64 = false;
    let mut charset = None;
    for param in params {
        if param.eq_ignore_ascii_case("base64") {
            base64 = true;
        } else if let Some((name, value)) = param.split_once('=')
            && name.trim().eq_ignore_ascii_case("charset")
        {
            charset = Some(value.trim().trim_matches('"').to_ascii_lowercase());
        }
    }
    let data = if base64 {
        match decode_base64(payload) {
            Ok(data) => data,
            Err(error) => return Some(Err(error)),
        }
    } else {
        percent_encoding::percent_decode_str(payload).collect()
    };
    Some(Ok(DataUrl {
        mime,
        charset,
        data,
    }))
}

/// Decodes standard base64, ignoring whitespace and line breaks (as mail and XML wrap it) and
/// accepting missing padding.
pub fn decode_base64(text: &str) -> Result<Vec<u8>, String> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    engine
        .decode(compact.as_bytes())
        .map_err(|error| format!("Poorly encoded base64 data ({error})"))
}

/// Turns bytes in `charset` into text. Without a charset, UTF-8 is tried first and ISO-8859-1
/// assumed when that fails (osTicket assumes ISO-8859-1 outright, which garbles UTF-8).
pub fn decode_text(data: &[u8], charset: Option<&str>) -> Result<String, String> {
    match charset {
        None => Ok(String::from_utf8(data.to_vec())
            .unwrap_or_else(|_| data.iter().map(|&b| char::from(b)).collect())),
        Some("utf-8" | "utf8" | "us-ascii" | "ascii") => {
            String::from_utf8(data.to_vec()).map_err(|_| "is not valid UTF-8 text".to_owned())
        }
        Some("iso-8859-1" | "latin1" | "latin-1" | "iso8859-1") => {
            Ok(data.iter().map(|&b| char::from(b)).collect())
        }
        Some(other) => Err(format!(
            "charset '{other}' is not supported (use utf-8 or iso-8859-1)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_base64_and_percent_forms() {
        let url = parse("data:image/png;base64,iVBORw0K")
            .expect("is a data URL")
            .expect("ok");
        assert_eq!(url.mime, "image/png");
        assert_eq!(url.data, vec![0x89, b'P', b'N', b'G', 13, 10]);
        let url = parse("data:text/html,%3Cb%3Ehi%3C/b%3E")
            .expect("data")
            .expect("ok");
        assert_eq!(url.data, b"<b>hi</b>");
        let url = parse("data:text/plain;charset=utf-8;base64,w6k=")
            .expect("data")
            .expect("ok");
        assert_eq!(url.charset.as_deref(), Some("utf-8"));
        assert_eq!(
            decode_text(&url.data, url.charset.as_deref()),
            Ok("é".to_owned())
        );
        let url = parse("data:,plain").expect("data").expect("ok");
        assert_eq!(url.mime, "text/plain");
    }

    #[test]
    fn rejects_broken_urls_and_passes_plain_text() {
        assert!(parse("hello").is_none());
        assert!(parse("data:text/plain;base64,@@@").expect("data").is_err());
        assert!(parse("data:text/plain").expect("data").is_err());
        assert_eq!(decode_text(&[0xe9], None), Ok("é".to_owned()));
        assert!(decode_text(b"x", Some("koi8-r")).is_err());
    }
}
