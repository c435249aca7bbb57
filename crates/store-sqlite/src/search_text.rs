//! What the full-text index reads of an entry: its words, without HTML markup.
//!
//! FTS5's `unicode61` tokenizer would index an HTML body's tag and attribute names and its link
//! targets (`p`, `href`, `https`…), so that a search for `href` found every HTML mail with a
//! link. PostgreSQL's parser drops markup itself; here the SQL function `search_text(body,
//! format)`, registered on every connection the store opens, hands the index the text between
//! the tags (migration 0012). Stored HTML is sanitised, so a literal `<` in its text is always
//! `&lt;`; inside a tag, attribute values are quoted and may hold `>`.
//!
//! The index's triggers give FTS5 this same rendering to remove an entry's terms, so it must
//! never change without a migration that empties the index and queues every entry again, as
//! 0012 does. For the same reason FTS5's own `rebuild` and `integrity-check` commands, which read
//! the stored bodies, do not apply to HTML entries.

use rusqlite::functions::FunctionFlags;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, Result};
use std::borrow::Cow;

/// Registers `search_text(body, format)` on `conn`: the body itself for text entries, the text
/// of an HTML body (tags dropped, character references decoded) for HTML ones. Whoever writes
/// `thread_entry` outside the store needs it: the index's triggers call it. What an insert
/// queues (migration 0008) the store indexes in a later commit, at the latest before its next
/// search or when it next opens the database; an outside writer may also index it at once:
///
/// ```sql
/// insert into thread_entry_fts (rowid, title, body)
///     select e.entry_id, e.title, search_text(e.body, e.format) from fts_pending p
///     join thread_entry e on e.entry_id = p.entry_id;
/// delete from fts_pending;
/// ```
pub fn register(conn: &Connection) -> Result<()> {
    conn.create_scalar_function(
        "search_text",
        2,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let body = text_of(ctx.get_raw(0));
            let format = text_of(ctx.get_raw(1));
            Ok(body.map(|body| match format.as_deref() {
                Some("html") => html_words(&body).into_owned(),
                _ => body.into_owned(),
            }))
        },
    )
}

/// A value as text, whatever its type: the store writes text, but a row written by someone else
/// may hold a blob or a number, and the full-text index must take every row (an error here
/// would keep every other entry queued for indexing with it).
fn text_of(value: ValueRef<'_>) -> Option<Cow<'_, str>> {
    match value {
        ValueRef::Null => None,
        ValueRef::Text(bytes) | ValueRef::Blob(bytes) => Some(String::from_utf8_lossy(bytes)),
        ValueRef::Integer(number) => Some(Cow::Owned(number.to_string())),
        ValueRef::Real(number) => Some(Cow::Owned(number.to_string())),
    }
}

/// The text of an HTML fragment: every tag and comment becomes a space (so that `a<br>b` stays
/// two words) and character references are decoded.
pub(crate) fn html_words(html: &str) -> Cow<'_, str> {
    if !html.contains(['<', '&']) {
        return Cow::Borrowed(html);
    }
    let mut text = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(at) = rest.find(['<', '&']) {
        text.push_str(&rest[..at]);
        rest = &rest[at..];
        if let Some(comment) = rest.strip_prefix("<!--") {
            rest = comment.find("-->").map_or("", |end| &comment[end + 3..]);
            text.push(' ');
        } else if rest.starts_with('<') {
            rest = &rest[tag_length(rest)..];
            text.push(' ');
        } else {
            let used = reference(rest, &mut text);
            rest = &rest[used..];
        }
    }
    text.push_str(rest);
    Cow::Owned(text)
}

/// How many bytes the tag at the start of `html` takes, up to its closing `>` outside quoted
/// attribute values (all of `html` when it does not close).
fn tag_length(html: &str) -> usize {
    let mut quote = None;
    for (at, c) in html.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(open), _) if c == open => quote = None,
            (None, '>') => return at + 1,
            _ => {}
        }
    }
    html.len()
}

/// Decodes the character reference at the start of `text` (which starts with `&`) onto `out`
/// and returns how many bytes it took; an `&` that starts none is kept as it is.
fn reference(text: &str, out: &mut String) -> usize {
    const NAMED: [(&str, char); 6] = [
        ("&amp;", '&'),
        ("&lt;", '<'),
        ("&gt;", '>'),
        ("&quot;", '"'),
        ("&apos;", '\''),
        ("&nbsp;", ' '),
    ];
    for (name, value) in NAMED {
        if text.starts_with(name) {
            out.push(value);
            return name.len();
        }
    }
    // The longest numeric reference is `&#x10FFFF;`: a `;` further on ends something else.
    if let Some(number) = text.strip_prefix("&#")
        && let Some(end) = number.bytes().take(8).position(|b| b == b';')
    {
        let code = match number[..end].strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok(),
            None => number[..end].parse().ok(),
        };
        if let Some(c) = code.and_then(char::from_u32) {
            out.push(c);
            return end + 3;
        }
    }
    out.push('&');
    1
}

#[cfg(test)]
mod tests {
    use super::html_words;

    /// Values of every type are rendered, none refused: one refused row would keep every entry
    /// queued with it out of the index.
    #[test]
    fn values_of_any_type_are_text() {
        let conn = rusqlite::Connection::open_in_memory().expect("in-memory database");
        super::register(&conn).expect("register");
        let render = |sql: &str| -> Option<String> {
            conn.query_row(sql, [], |row| row.get(0)).expect("rendered")
        };
        assert_eq!(
            render("select search_text('plain <b>text</b>', 'text')").as_deref(),
            Some("plain <b>text</b>")
        );
        assert_eq!(
            render("select search_text('<p>one</p>two', 'html')").as_deref(),
            Some(" one two")
        );
        assert_eq!(
            render("select search_text(x'6869', 'text')").as_deref(),
            Some("hi")
        );
        assert_eq!(
            render("select search_text(x'3c623e6869', x'68746d6c')").as_deref(),
            Some(" hi")
        );
        assert_eq!(
            render("select search_text(42, null)").as_deref(),
            Some("42")
        );
        assert_eq!(render("select search_text(null, 'html')"), None);
    }

    fn words(html: &str) -> Vec<String> {
        html_words(html)
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn markup_is_not_text() {
        assert_eq!(
            words(r#"<p class="note">Hello <a href="https://example.com/x">link</a></p>"#),
            ["Hello", "link"]
        );
        assert_eq!(
            words("one<br>two<!-- a comment -->three"),
            ["one", "two", "three"]
        );
        assert_eq!(
            words("Tom &amp; Jerry &lt;3 caf&eacute;"),
            ["Tom", "Jerry", "3", "caf", "eacute"]
        );
        assert_eq!(words("a&#160;b&#xA0;c caf&#233;"), ["a", "b", "c", "café"]);
        assert_eq!(words("unclosed <b"), ["unclosed"]);
        assert_eq!(
            words(r#"<img alt="a > b" title='c > d' src="https://x/y.png">after"#),
            ["after"]
        );
        assert_eq!(words("&#38 no end; &#x26;"), ["38", "no", "end"]);
        assert_eq!(html_words("plain words"), "plain words");
    }
}
