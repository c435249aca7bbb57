//! Message bodies: text stays text, HTML is sanitised before it is stored.

/// How a body is to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BodyFormat {
    /// Plain text, shown escaped.
    Text,
    /// Sanitised HTML.
    Html,
}

impl BodyFormat {
    /// The stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Html => "html",
        }
    }

    /// Parses `text` or `html`.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "text" => Some(Self::Text),
            "html" => Some(Self::Html),
            _ => None,
        }
    }
}

/// A non-empty message body, HTML already sanitised.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MessageBody {
    text: String,
    format: BodyFormat,
}

impl MessageBody {
    /// Checks and, for HTML, sanitises a body. Empty (or, for HTML, nothing-visible-left) bodies are
    /// refused so no thread entry is ever blank.
    pub fn parse(raw: &str, format: BodyFormat) -> Result<Self, String> {
        // Control characters other than line breaks and tabs carry no text, and NUL cannot be
        // stored in PostgreSQL: they are dropped rather than refused, since mail carries them too.
        let cleaned: String = raw
            .replace("\r\n", "\n")
            .chars()
            .filter(|&c| !c.is_control() || c == '\n' || c == '\t')
            .collect();
        let text = match format {
            BodyFormat::Text => cleaned,
            BodyFormat::Html => sanitize_html(&cleaned),
        };
        let visible = match format {
            BodyFormat::Text => !text.trim().is_empty(),
            BodyFormat::Html => has_visible_content(&text),
        };
        if !visible {
            return Err("is required".into());
        }
        Ok(Self { text, format })
    }

    /// Wraps a body read back from the database (it was checked on the way in).
    pub fn from_stored(text: String, format: BodyFormat) -> Self {
        Self { text, format }
    }

    /// The stored text (sanitised HTML when the format is HTML).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Text or HTML.
    pub fn format(&self) -> BodyFormat {
        self.format
    }
}

/// Removes everything that could run in a reader's browser: scripts, event handlers,
/// `javascript:` and other non-web URL schemes, styles that can fetch, frames and forms.
pub fn sanitize_html(raw: &str) -> String {
    ammonia::Builder::default()
        .link_rel(Some("noopener noreferrer nofollow"))
        .url_schemes(["http", "https", "mailto", "cid", "tel"].into())
        .clean(raw)
        .to_string()
}

/// True when sanitised HTML still shows something: text, or an image.
fn has_visible_content(html: &str) -> bool {
    let mut in_tag = false;
    let mut text = String::new();
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    let text = text.replace("&nbsp;", " ");
    !text.trim().is_empty() || html.contains("<img")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_loses_scripts_handlers_and_javascript_urls() {
        let body = MessageBody::parse(
            "<p onclick=\"steal()\">Hi<script>alert(1)</script> <a href=\"javascript:alert(2)\">x</a>\
             <img src=x onerror=alert(3)><iframe src=\"https://evil\"></iframe><b>ok</b></p>",
            BodyFormat::Html,
        )
        .expect("visible text remains");
        let html = body.as_str();
        for bad in [
            "script",
            "onclick",
            "onerror",
            "javascript:",
            "iframe",
            "alert",
        ] {
            assert!(!html.contains(bad), "{bad} survived in {html}");
        }
        assert!(html.contains("<b>ok</b>"), "{html}");
    }

    #[test]
    fn text_stays_text() {
        let body = MessageBody::parse("<script>x</script>\r\nline", BodyFormat::Text).expect("ok");
        assert_eq!(body.as_str(), "<script>x</script>\nline");
    }

    #[test]
    fn control_characters_are_dropped() {
        let body = MessageBody::parse("a\u{0}b\r\nc\td\u{7}", BodyFormat::Text).expect("ok");
        assert_eq!(body.as_str(), "ab\nc\td");
    }

    #[test]
    fn empty_bodies_are_refused() {
        assert!(MessageBody::parse("  \n ", BodyFormat::Text).is_err());
        assert!(MessageBody::parse("<p> &nbsp; </p><script>x</script>", BodyFormat::Html).is_err());
    }
}
