//! The text shown on the thread: the quoted history and signatures cut from a reply.
//!
//! Mail clients send the whole conversation back with every reply. The thread shows only what
//! is new, so [`visible_text`] (plain-text bodies) and [`visible_html`] (HTML bodies) cut, in
//! this order:
//!
//! 1. **Our own marker** ([`REPLY_MARKER`], put at the top of outgoing mail): everything from the
//!    line that carries it (quoted or not) is history, provided something non-blank is above it.
//! 2. **HTML structure** (HTML only): the quote containers and dividers that clients write —
//!    Gmail `div.gmail_quote` (an emptied `gmail_extra` goes with it), `blockquote type="cite"`
//!    (Apple Mail, Thunderbird, with Thunderbird's `div.moz-cite-prefix`), Yahoo `yahoo_quoted`,
//!    ProtonMail `protonmail_quote`; Outlook's `#divRplyFwdMsg`, `#appendonsend`,
//!    `#OLK_SRC_BODY_SECTION`, the `border-top:solid #E1E1E1` / `#B5C4DF` header div; Hotmail's
//!    `<hr id="stopSpelling">` and Zimbra's divider `<hr>`.
//! 3. **Quote headers**, the first one from the top that only history follows: "On … wrote:" and its kin in many languages
//!    (possibly wrapped over up to three lines), date-and-address headers without a verb (Gmail
//!    in Russian, Japanese, …), Outlook "-----Original Message-----" lines, and Outlook
//!    "From:/Sent:/To:/Subject:" blocks in several languages, with a `____`/`----` rule above them.
//! 4. **Trailing `>` quoted lines** (in HTML, `<blockquote>` nesting counts as quoting), with the
//!    quote header just above them.
//! 5. **A trailing signature**: the RFC 3676 delimiter `-- ` alone on a line (also without its
//!    space, which many editors drop), a mailing-list `____` footer, or a "Sent from my iPhone"
//!    style line at the very end.
//!
//! Safety rules, because cutting real words is worse than showing some history:
//!
//! - never strip to nothing: a cut that leaves only whitespace is not made, and the text is kept;
//! - a quote that is followed by new text is an inline (or bottom-posted) reply and stays whole;
//!   only the marker cuts regardless of what follows. (Below an Outlook header block or an
//!   "Original Message" rule the original comes unquoted, so nothing tells it from new text:
//!   those cut to the end, as every client-aware stripper does);
//! - a forwarded message ("---------- Forwarded message ---------", "Begin forwarded message:")
//!   is content: no quote header or signature is looked for at or below it.
//!
//! Plain text comes back with CRLF (and lone CR) turned into LF, leading blank lines and trailing
//! whitespace removed. HTML comes back as it was when nothing is cut, else re-serialised from the
//! parsed document; it is **not** sanitised (the caller does that).
//!
//! The raw message stays stored, so the visible text is a derived view that can be recomputed
//! when these rules improve.

use std::sync::LazyLock;

use html2text::{Handle, RcDom};
use regex::Regex;

/// Our own marker, put at the top of outgoing mail; everything from it down is history.
pub const REPLY_MARKER: &str = "-- reply above this line --";

/// At most this many non-blank lines may follow a signature delimiter: a `-- ` line followed by
/// pages of text is more likely a separator the writer typed than a signature.
const SIGNATURE_MAX_LINES: usize = 20;

/// Whether signatures are cut along with the quoted history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Signatures {
    /// Cut a trailing `-- ` signature, mailing-list footer or "Sent from my …" line: what the
    /// thread shows.
    #[default]
    Strip,
    /// Keep them and cut only quoted history (for `mail inspect`, and to compare with tools such
    /// as talon that leave signatures to a separate step).
    Keep,
}

/// A stripped body and the rule that made the first cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stripped {
    /// The visible text (or HTML, from [`strip_html`]).
    pub text: String,
    /// The first rule that cut something, `None` when nothing was cut. One of `marker`,
    /// `html-gmail-quote`, `html-blockquote-cite`, `html-yahoo-quoted`, `html-protonmail-quote`,
    /// `html-outlook-divider`, `html-outlook-border`, `html-hr-divider`, `original-message`,
    /// `outlook-header`, `quote-header`, `trailing-quote`, `signature`, `mobile-signature`.
    pub rule: Option<&'static str>,
}

/// Plain-text body → what to show on the thread (quoted history and signature removed).
pub fn visible_text(text: &str) -> String {
    strip_text(text, Signatures::Strip).text
}

/// HTML body → HTML without the quoted history (not yet sanitised; the caller sanitises).
pub fn visible_html(html: &str) -> String {
    strip_html(html, Signatures::Strip).text
}

/// Strips a plain-text body and tells which rule cut first.
pub fn strip_text(text: &str, signatures: Signatures) -> Stripped {
    let normalised = text.replace("\r\n", "\n").replace('\r', "\n");
    let raw: Vec<&str> = normalised.split('\n').collect();
    let lines: Vec<Line> = raw.iter().map(|line| Line::plain(line)).collect();
    let rules = Rules {
        signatures,
        lazy_quotes: true,
    };

    let mut end = lines.len();
    let mut rule = None;
    if let Some(at) = marker_line(&lines) {
        end = at;
        rule = Some("marker");
    }
    let (history_end, history_rule) = rules.history_cut(&lines[..end]);
    if history_end < end {
        end = history_end;
        rule = rule.or(history_rule);
    }

    let kept = tidy(&raw[..end]);
    if kept.is_empty() {
        // Only reachable when the original itself is blank: every cut checks for content above.
        return Stripped {
            text: tidy(&raw),
            rule: None,
        };
    }
    Stripped { text: kept, rule }
}

/// Strips an HTML body and tells which rule cut first. The HTML is returned unchanged when
/// nothing is cut (or it cannot be parsed); it is not sanitised either way.
pub fn strip_html(html: &str, signatures: Signatures) -> Stripped {
    let unchanged = || Stripped {
        text: html.to_owned(),
        rule: None,
    };
    let Ok(dom) = html2text::config::plain().parse_html(html.as_bytes()) else {
        return unchanged();
    };
    let doc = HtmlDoc::read(&dom);
    let lines: Vec<Line> = doc.lines.iter().map(|l| l.line.clone()).collect();
    let rules = Rules {
        signatures,
        // HTML quotes are structural (`<blockquote>`); an unquoted line between two quotes is
        // the writer's inline answer, never a wrapped quote line.
        lazy_quotes: false,
    };

    let mut line_end = lines.len();
    let mut cut: Option<usize> = None;
    let mut rule = None;
    if let Some(at) = marker_line(&lines) {
        line_end = at;
        cut = Some(doc.cut_position(at));
        rule = Some("marker");
    }
    let limit = cut.unwrap_or(doc.order.len());
    if let Some((position, structure_rule)) = doc.structural_cut(&lines[..line_end], limit) {
        line_end = doc.line_index_at(position).min(line_end);
        cut = Some(position);
        rule = rule.or(Some(structure_rule));
    }
    let (history_end, history_rule) = rules.history_cut(&lines[..line_end]);
    if history_end < line_end {
        cut = Some(doc.cut_position(history_end));
        rule = rule.or(history_rule);
    }

    let Some(position) = cut else {
        return unchanged();
    };
    doc.cut_from(position);
    let Some(body) = doc.body() else {
        return unchanged();
    };
    trim_trailing_empty(&body);
    if is_empty_node(&body) {
        return unchanged();
    }
    let mut out = Vec::new();
    if dom.serialize(&mut out).is_err() {
        return unchanged();
    }
    Stripped {
        text: String::from_utf8_lossy(&out).into_owned(),
        rule,
    }
}

// ---------------------------------------------------------------------------------------------
// The line model shared by plain text and HTML.

/// One line of a body, as the rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Line {
    /// Quote depth: leading `>` marks, plus enclosing `<blockquote>`s in HTML.
    depth: usize,
    /// The content without quote marks, trimmed.
    text: String,
    /// Nothing but whitespace (a quoted empty line `>` is not blank: it belongs to the quote).
    blank: bool,
}

impl Line {
    fn plain(raw: &str) -> Self {
        Self::with_depth(raw, 0)
    }

    /// Splits leading `>` marks (`>>`, `> >`) from the content.
    fn with_depth(raw: &str, outer_depth: usize) -> Self {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Self {
                depth: outer_depth,
                text: String::new(),
                blank: true,
            };
        }
        // A wrapped quote header sometimes leaves its address's closing bracket and colon alone
        // on the next line (`… <test@example.com\n>:`); that is the header's end, not a quote.
        if trimmed == ">:" || trimmed == ">：" {
            return Self {
                depth: outer_depth,
                text: trimmed.to_owned(),
                blank: false,
            };
        }
        let mut depth = outer_depth;
        let mut rest = trimmed;
        while let Some(after) = rest.strip_prefix('>') {
            depth += 1;
            rest = after.trim_start();
        }
        Self {
            depth,
            text: rest.trim_end().to_owned(),
            blank: false,
        }
    }

    fn is_text(&self) -> bool {
        !self.blank && self.depth == 0
    }
}

/// Lines kept, joined: leading blank lines and trailing whitespace dropped, indentation kept.
fn tidy(raw: &[&str]) -> String {
    let start = raw
        .iter()
        .position(|line| !line.trim().is_empty())
        .unwrap_or(raw.len());
    raw[start..].join("\n").trim_end().to_owned()
}

fn has_content(lines: &[Line], upto: usize) -> bool {
    lines[..upto.min(lines.len())].iter().any(|l| !l.blank)
}

/// The first line carrying our marker, if something non-blank is above it.
fn marker_line(lines: &[Line]) -> Option<usize> {
    let at = lines.iter().position(|l| l.text.contains(REPLY_MARKER))?;
    has_content(lines, at).then_some(at)
}

/// How the history rules run for one body.
struct Rules {
    signatures: Signatures,
    /// Plain text only: an unquoted line between two quoted lines is a quote line that a client
    /// re-wrapped without its `>` (mail clients do this to long quoted lines).
    lazy_quotes: bool,
}

impl Rules {
    /// Quote headers, then the trailing quote and signature; returns where the visible part
    /// ends and the first rule that cut.
    fn history_cut(&self, lines: &[Line]) -> (usize, Option<&'static str>) {
        let mut end = lines.len();
        let mut rule = None;
        let forward = lines
            .iter()
            .position(|l| l.is_text() && FORWARD.is_match(&l.text));
        if let Some((at, header_rule)) = self.find_header(lines, forward.unwrap_or(end)) {
            end = at;
            rule = Some(header_rule);
        }
        // A forwarded message left in the visible part is content, its end included.
        if forward.is_some_and(|f| f < end) {
            return (end, rule);
        }
        // Each cut shortens the text, so this ends.
        while let Some((at, tail_rule)) = self.tail_cut(&lines[..end]) {
            end = at;
            rule = rule.or(Some(tail_rule));
        }
        (end, rule)
    }

    /// One cut at the end: a trailing quote (with its header), a signature block, or a mobile
    /// signature line.
    fn tail_cut(&self, lines: &[Line]) -> Option<(usize, &'static str)> {
        let last = lines.iter().rposition(|l| !l.blank)?;
        if lines[last].depth > 0 {
            let at = self.trailing_quote_start(lines, last);
            return has_content(lines, at).then_some((at, "trailing-quote"));
        }
        if self.signatures == Signatures::Keep {
            return None;
        }
        if let Some(at) = signature_start(lines) {
            return Some((at, "signature"));
        }
        (MOBILE_SIGNATURE.is_match(&lines[last].text) && has_content(lines, last))
            .then_some((last, "mobile-signature"))
    }

    /// The first quote header from the top (before `scan_end`) below which only history follows.
    fn find_header(&self, lines: &[Line], scan_end: usize) -> Option<(usize, &'static str)> {
        for (i, line) in lines.iter().enumerate().take(scan_end) {
            if !line.is_text() {
                continue;
            }
            if ORIGINAL_MESSAGE.is_match(&line.text) && has_content(lines, i) {
                return Some((i, "original-message"));
            }
            if is_rule_line(&line.text)
                && next_text(lines, i + 1, 3).is_some_and(|next| outlook_block(lines, next))
                && has_content(lines, i)
            {
                return Some((i, "outlook-header"));
            }
            if outlook_block(lines, i) && has_content(lines, i) {
                return Some((i, "outlook-header"));
            }
            if let Some(start) = attribution_ending_at(lines, i)
                && has_content(lines, start)
                && self.history_follows(lines, i + 1)
            {
                return Some((start, "quote-header"));
            }
        }
        None
    }

    /// Whether everything from `from` on is history: nothing; unquoted text (clients that do not
    /// quote); or a quote followed by nothing but a signature. A quote followed by new text is
    /// an inline reply.
    fn history_follows(&self, lines: &[Line], from: usize) -> bool {
        let mut j = from;
        while j < lines.len() && lines[j].blank {
            j += 1;
        }
        if j == lines.len() || lines[j].depth == 0 {
            return true;
        }
        while j < lines.len()
            && (lines[j].blank || lines[j].depth > 0 || self.lazy_quote_line(lines, j))
        {
            j += 1;
        }
        is_tail(lines, j)
    }

    fn lazy_quote_line(&self, lines: &[Line], j: usize) -> bool {
        self.lazy_quotes
            && lines[j].is_text()
            && j > 0
            && lines[j - 1].depth > 0
            && lines.get(j + 1).is_some_and(|next| next.depth > 0)
    }

    /// Where the quote ending at `last` starts, its quote header included.
    fn trailing_quote_start(&self, lines: &[Line], last: usize) -> usize {
        let mut start = last;
        while start > 0
            && (lines[start - 1].blank
                || lines[start - 1].depth > 0
                || self.lazy_quote_line(lines, start - 1))
        {
            start -= 1;
        }
        while lines[start].blank {
            start += 1;
        }
        if let Some(above) = lines[..start].iter().rposition(|l| !l.blank)
            && lines[above].is_text()
        {
            if let Some(header) = attribution_ending_at(lines, above) {
                return header;
            }
            if loose_attribution(&lines[above].text) {
                return above;
            }
        }
        start
    }
}

/// Whether nothing new follows from `from` on: only blank lines, more quoted lines, a signature
/// block or a mobile signature.
fn is_tail(lines: &[Line], from: usize) -> bool {
    let rest: Vec<&Line> = lines[from.min(lines.len())..]
        .iter()
        .filter(|l| l.is_text())
        .collect();
    match rest.first() {
        None => true,
        Some(first) if is_signature_delimiter(&first.text) => true,
        Some(_) => rest.len() <= 2 && rest.iter().all(|l| MOBILE_SIGNATURE.is_match(&l.text)),
    }
}

fn next_text(lines: &[Line], from: usize, within: usize) -> Option<usize> {
    (from..lines.len().min(from + within + 1)).find(|&j| !lines[j].blank && lines[j].depth == 0)
}

/// The earliest signature delimiter with a short, unquoted block below it and text above it.
fn signature_start(lines: &[Line]) -> Option<usize> {
    (0..lines.len()).find(|&k| {
        let after = &lines[k + 1..];
        lines[k].is_text()
            && is_signature_delimiter(&lines[k].text)
            && after.iter().all(|l| l.depth == 0 || l.blank)
            && after.iter().filter(|l| !l.blank).count() <= SIGNATURE_MAX_LINES
            && has_content(lines, k)
    })
}

/// `-- ` (trimmed, so also `--`), or a line of underscores (mailing-list footers).
fn is_signature_delimiter(text: &str) -> bool {
    text == "--" || (text.len() >= 2 && text.chars().all(|c| c == '_'))
}

/// A rule of at least ten dashes or underscores (optionally bold): Outlook puts one above its
/// header block.
fn is_rule_line(text: &str) -> bool {
    let inner = text.trim_matches('*').trim();
    inner.len() >= 10 && (inner.chars().all(|c| c == '-') || inner.chars().all(|c| c == '_'))
}

// ---------------------------------------------------------------------------------------------
// Quote headers.

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("built-in pattern compiles")
}

/// "On … wrote:" (English; also Yahoo's `--- On … wrote:` and Zoho's `---- On … wrote ----`,
/// where the colon may be missing).
static ON_WROTE: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?i)^-*\s*on\s.{4,400}?\bwrote\s*[:：]?\s*-*$"));

/// Headers that end with the verb: "… wrote:", "… a écrit :", "… ha scritto:", "… escribió:",
/// "… escreveu:", "… napisał(a):", "… написал:", "… kirjoitti:", "… írta:", "… 写道：", ….
/// The verb and what follows it; a header has 4 to 400 characters before the verb
/// ([`verb_at_end`]).
static VERB_END: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)(?:\bwrote|\bwrites|\ba\s+écrit|\bha\s+scritto|\bescribió|\bescreveu|\bnapisał\S*|\bnapisala|\bnapsal\S*|\bнаписал\S*|\bнаписала|\bпише|\bkirjoitti|\bírta|\byazdı|\bđã\s+viết|\bέγραψε|\bskrev|\bschreef|\bschrieb|写道|寫道|書きました|작성\S*)\s*[:：]\s*$",
    )
});

/// Whether a [`VERB_END`] match starts 4 to 400 characters into `text` (the header before the
/// verb) — what `^.{4,400}?` in front of the pattern would say, without it: that prefix makes
/// the regex's lazy DFA build new states for nearly every new line (10 µs a line, against
/// 0.1 µs for the verb and the end alone, measured on the SpamAssassin corpus).
fn verb_at_end(text: &str) -> bool {
    if text.contains('\n') {
        // `.` stops at a line break: never so in a header line, but keep the exact meaning.
        static WITH_PREFIX: LazyLock<Regex> =
            LazyLock::new(|| re(&format!("(?i)^.{{4,400}}?(?:{})", VERB_END.as_str())));
        return WITH_PREFIX.is_match(text);
    }
    // Every start of a match, leftmost first (`find_at` keeps the text before `from` for `\b`).
    let mut from = 0;
    while let Some(found) = VERB_END.find_at(text, from) {
        let before = text[..found.start()].chars().count();
        if before > 400 {
            return false;
        }
        if before >= 4 {
            return true;
        }
        from = found.start()
            + text[found.start()..]
                .chars()
                .next()
                .map_or(1, char::len_utf8);
    }
    false
}

/// Headers with the verb in the middle and the colon at the end: "Am … schrieb Hans <…>:",
/// "Op … schreef X <…>:", "Den … skrev "…" <…> följande:", "tir. … kl. 13:09 skrev X <…>:".
static VERB_MID: LazyLock<Regex> = LazyLock::new(|| {
    re(r"(?i)^.{4,400}?\b(?:schrieb|schreef|skrev|geschreven)\b.{1,400}[:：]\s*$")
});

/// Words that open a quote header: On, Le, Am, El, Il, In data, Op, W dniu, Dnia, Den, Em, Vào,
/// 在, 於 (optionally after dashes).
static START_WORD: LazyLock<Regex> = LazyLock::new(|| {
    re(r"(?i)^(?:-+\s*)?(?:on|le|am|el|il|in data|op|w dniu|dnia|den|em|vào|在|於)\s")
});

/// A short word and a dot or comma: weekday abbreviations that open Gmail headers in many
/// languages ("tir. 18. apr. 2017 …", "ср, 30 апр. …", "Mon, Dec 9 …").
static WEEKDAY_START: LazyLock<Regex> = LazyLock::new(|| re(r"^\p{L}{2,12}[.,]\s"));

static EMAIL: LazyLock<Regex> = LazyLock::new(|| re(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+"));

static TIME: LazyLock<Regex> = LazyLock::new(|| re(r"\b\d{1,2}:\d{2}\b"));

/// Outlook and webmail "original message" rules in several languages.
static ORIGINAL_MESSAGE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)^[\s*]*-{2,}\s*(?:original message|ursprüngliche (?:nachricht|mail)|original[- ]?nachricht|mail original|message d['’]origine|mensaje original|messaggio originale|mensagem original|oorspronkelijk bericht|oprindelig (?:besked|meddelelse)|opprinnelig melding|ursprungligt meddelande|alkuperäinen viesti|wiadomość oryginalna|oryginalna wiadomość|původní zpráva|eredeti üzenet|исходное сообщение|原始邮件|原始郵件|元のメッセージ|원본 메시지|reply message)\s*-{2,}[\s*]*$",
    )
});

/// Forward separators: what is below them is a forwarded message, which is content.
static FORWARD: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)^[\s*]*(?:-{2,}\s*(?:forwarded message|forward message|weitergeleitete nachricht|message transféré|message réexpédié|mensaje reenviado|messaggio inoltrato|mensagem encaminhada|doorgestuurd bericht|videresendt (?:meddelelse|melding|besked)|vidarebefordrat meddelande|välitetty viesti|wiadomość przekazana|přeposlaná zpráva|továbbított üzenet|пересылаемое сообщение|转发的邮件|轉寄的郵件|転送されたメッセージ|전달된 메시지)\s*-*|(?:begin forwarded message|anfang der weitergeleiteten nachricht|début du message réexpédié|début du message transféré|inicio del mensaje reenviado|inizio messaggio inoltrato|início da mensagem reencaminhada|begin doorgestuurd bericht)\s*[:：]?)[\s*]*$",
    )
});

/// "Sent from my iPhone" and kin: a prefix, a few words without sentence punctuation, maybe a
/// link (`Sent from TypeApp<http://…>`, `Sent with Sparrow (http://…)`).
static MOBILE_SIGNATURE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)^(?:sent from|sent with|sent via|sent using|get outlook for|envoyé de|envoyé depuis|von meinem|gesendet von|enviado desde|enviado de|enviado do|inviato da|verzonden vanaf|verstuurd vanaf|skickat från|sendt fra|lähetetty|wysłane z|отправлено с|从我的)\s+[^,.;:!?<>()]{1,50}?(?:\s*(?:<[^>\s]+>|\([^)\s]+\)))?\s*\.?$",
    )
});

/// Outlook header labels, by role (from, date, to, subject, cc), in several languages.
static LABEL: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)^[*_\s]*(?:(?P<from>from|von|de|de la|da|van|od|от|від|από|från|fra|lähettäjä|feladó|kimden|发件人|寄件者|差出人|보낸 사람)|(?P<date>sent|date|gesendet|datum|envoyé(?: le)?|enviado(?: el)?|enviada|trimis|надіслано|στάλθηκε|ημερομηνία|fecha|data|inviato|verzonden|wysłano|отправлено|дата|skickat|sendt|dato|lähetetty|päivämäärä|elküldve|dátum|gönderildi|tarih|odesláno|发送时间|日期|傳送時間|送信日時|보낸 날짜)|(?P<to>to|an|à|a|para|aan|do|către|προς|кому|till|til|vastaanottaja|címzett|kime|komu|收件人|收件者|宛先|받는 사람)|(?P<subject>subject|betreff|objet|asunto|subiect|θέμα|oggetto|onderwerp|temat|тема|ämne|emne|aihe|tárgy|konu|předmět|assunto|主题|主旨|件名|제목)|(?P<cc>cc|kopie|copie|cópia|копия|kopia|dw|抄送|副本))[*_\s]*[:：]",
    )
});

const ROLE_FROM: u8 = 1;

/// The role of the Outlook header label opening `text`, as a bit.
fn label_role(text: &str) -> Option<u8> {
    let caps = LABEL.captures(text)?;
    ["from", "date", "to", "subject", "cc"]
        .iter()
        .position(|role| caps.name(role).is_some())
        .map(|i| 1 << i)
}

/// An Outlook header block opening at `start`: consecutive label lines (a wrapped value may add
/// up to two more lines) naming the sender and at least two of date, recipients, subject, cc.
fn outlook_block(lines: &[Line], start: usize) -> bool {
    let Some(first) = lines.get(start).and_then(|l| label_role(&l.text)) else {
        return false;
    };
    let mut roles = first;
    let mut others = 0;
    for line in lines[start + 1..].iter().take(12) {
        if !line.is_text() {
            break;
        }
        match label_role(&line.text) {
            Some(role) => roles |= role,
            None => {
                others += 1;
                if others > 2 {
                    break;
                }
            }
        }
    }
    roles & ROLE_FROM != 0 && roles.count_ones() >= 3
}

/// Where a quote header ending on line `end` starts, if it is one. Wrapped headers (up to three
/// lines) must start like a header, so the reply's last line is never taken for its beginning.
fn attribution_ending_at(lines: &[Line], end: usize) -> Option<usize> {
    let last = lines.get(end)?;
    if !last.is_text() || !ends_like_header(&last.text) {
        return None;
    }
    for span in [2, 1] {
        let Some(start) = end.checked_sub(span) else {
            continue;
        };
        let window = &lines[start..=end];
        if window.iter().any(|l| !l.is_text()) || !starts_like_header(&lines[start].text) {
            continue;
        }
        let joined = window
            .iter()
            .map(|l| l.text.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        if is_attribution(&joined) {
            return Some(start);
        }
    }
    is_attribution(&last.text).then_some(end)
}

/// Cheap filter before the regexes: a header ends with a colon, "wrote", or Zoho's dashes.
fn ends_like_header(text: &str) -> bool {
    text.ends_with(':')
        || text.ends_with('：')
        || text.ends_with('-')
        || text.to_lowercase().ends_with("wrote")
}

fn starts_like_header(text: &str) -> bool {
    // A line that ends a sentence is the reply's, not the start of a wrapped header.
    !text.ends_with(['.', '!', '?'])
        && (START_WORD.is_match(text)
            || text.starts_with(|c: char| c.is_ascii_digit())
            || WEEKDAY_START.is_match(text))
}

/// Whether `text` (one header, unwrapped) is a quote header. Every form needs a date or an
/// address, so prose such as "On Thursday:" or "my colleague wrote:" is not taken.
fn is_attribution(text: &str) -> bool {
    if text.len() > 600 {
        return false;
    }
    let has_digit = text.chars().any(|c| c.is_ascii_digit());
    let has_email = EMAIL.is_match(text);
    let has_time = TIME.is_match(text);
    if ON_WROTE.is_match(text) {
        return has_digit || has_email;
    }
    if verb_at_end(text) || VERB_MID.is_match(text) {
        return has_email || has_time || (START_WORD.is_match(text) && has_digit);
    }
    // Gmail in languages without a verb in the header: "<date>, <time>, <name> <address>:".
    (text.ends_with(':') || text.ends_with('：')) && has_email && has_time
}

/// A header in a language the table lacks, directly above a trailing quote: it ends with a colon
/// and names an address and a number (date or time).
fn loose_attribution(text: &str) -> bool {
    (text.ends_with(':') || text.ends_with('：'))
        && EMAIL.is_match(text)
        && text.chars().any(|c| c.is_ascii_digit())
}

// ---------------------------------------------------------------------------------------------
// HTML.

/// One line of an HTML body with where it starts in the document.
struct HtmlLine {
    line: Line,
    /// Document-order index of the line's first node (the next node for a blank line).
    position: usize,
    /// False for the second and later lines of one `<pre>` text node: a cut there cannot split
    /// the node, so it moves to the node's end (keeping some history rather than losing text).
    node_start: bool,
}

/// A parsed document in document order, with its lines.
struct HtmlDoc {
    /// Every node the walk entered, in document order.
    order: Vec<Handle>,
    /// For each node, the index just past its subtree.
    subtree_end: Vec<usize>,
    lines: Vec<HtmlLine>,
}

/// One step of the document walk (an explicit stack: mail HTML can nest deeper than the call
/// stack allows).
enum Step {
    Enter(Handle),
    Exit {
        index: usize,
        block: bool,
        quote: bool,
        pre: bool,
    },
}

/// Elements that end a line when they open and close.
const BLOCKS: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "body",
    "caption",
    "center",
    "dd",
    "details",
    "dialog",
    "dir",
    "div",
    "dl",
    "dt",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hgroup",
    "hr",
    "html",
    "li",
    "main",
    "menu",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "summary",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "tr",
    "ul",
];

/// Elements whose content is never shown as text.
const INVISIBLE: &[&str] = &["head", "script", "style", "template", "title", "noscript"];

/// Elements that are content even without text.
const EMBEDDED: &[&str] = &[
    "img", "video", "audio", "iframe", "object", "embed", "svg", "canvas", "picture", "math",
];

/// Stands for an image in a line's text, so a reply that is only a picture still counts.
const OBJECT_MARK: char = '\u{FFFC}';

struct LineBuilder {
    lines: Vec<HtmlLine>,
    text: String,
    first: Option<(usize, bool)>,
    depth: usize,
    line_depth: usize,
}

impl LineBuilder {
    fn flush(&mut self, position: usize) {
        let text = std::mem::take(&mut self.text);
        let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
        match self.first.take() {
            Some((node, node_start)) if !collapsed.trim().is_empty() => {
                self.lines.push(HtmlLine {
                    line: Line::with_depth(&collapsed, self.line_depth),
                    position: node,
                    node_start,
                });
            }
            _ => {
                // Runs of empty blocks are one blank line: spacing carries no meaning here.
                if self.lines.last().is_some_and(|l| !l.line.blank) {
                    self.lines.push(HtmlLine {
                        line: Line::with_depth("", self.depth),
                        position,
                        node_start: true,
                    });
                }
            }
        }
    }

    fn add(&mut self, text: &str, node: usize, node_start: bool) {
        if self.first.is_none() && !text.trim().is_empty() {
            self.first = Some((node, node_start));
            self.line_depth = self.depth;
        }
        self.text.push_str(text);
    }
}

fn element_name(node: &Handle) -> Option<String> {
    match &node.data {
        html2text::Element { name, .. } => {
            let local: &str = &name.local;
            Some(local.to_ascii_lowercase())
        }
        _ => None,
    }
}

fn attribute(node: &Handle, wanted: &str) -> Option<String> {
    match &node.data {
        html2text::Element { attrs, .. } => attrs
            .borrow()
            .iter()
            .find(|a| {
                let local: &str = &a.name.local;
                local.eq_ignore_ascii_case(wanted)
            })
            .map(|a| a.value.to_string()),
        _ => None,
    }
}

fn has_class(node: &Handle, class: &str) -> bool {
    attribute(node, "class").is_some_and(|c| c.split_whitespace().any(|token| token == class))
}

/// The text of a text node. html2text does not export the node type's text variant, so this
/// reads its public debug rendering, which prints a text node as `Text:<content>` (and nothing
/// for whitespace-only text).
fn text_of(node: &Handle) -> Option<String> {
    match &node.data {
        html2text::Element { .. } | html2text::Comment { .. } | html2text::Document => None,
        _ => {
            let rendered = RcDom::node_as_dom_string(node);
            let text = rendered.strip_prefix("Text:")?;
            Some(text.strip_suffix('\n').unwrap_or(text).to_owned())
        }
    }
}

impl HtmlDoc {
    fn read(dom: &RcDom) -> Self {
        let mut order: Vec<Handle> = Vec::new();
        let mut subtree_end: Vec<usize> = Vec::new();
        let mut builder = LineBuilder {
            lines: Vec::new(),
            text: String::new(),
            first: None,
            depth: 0,
            line_depth: 0,
        };
        let mut pre = 0usize;
        let mut stack = vec![Step::Enter(dom.document.clone())];
        while let Some(step) = stack.pop() {
            match step {
                Step::Enter(node) => {
                    let name = element_name(&node);
                    let tag = name.as_deref().unwrap_or("");
                    let block = BLOCKS.contains(&tag) || tag == "br";
                    if block && tag != "br" {
                        builder.flush(order.len());
                    }
                    let index = order.len();
                    order.push(node.clone());
                    subtree_end.push(index + 1);
                    if name.is_some() {
                        if INVISIBLE.contains(&tag) {
                            continue;
                        }
                        if EMBEDDED.contains(&tag) {
                            builder.add(&OBJECT_MARK.to_string(), index, true);
                        }
                        let quote = tag == "blockquote";
                        let is_pre = tag == "pre";
                        if quote {
                            builder.depth += 1;
                        }
                        if is_pre {
                            pre += 1;
                        }
                        stack.push(Step::Exit {
                            index,
                            block,
                            quote,
                            pre: is_pre,
                        });
                        for child in node.children.borrow().iter().rev() {
                            stack.push(Step::Enter(child.clone()));
                        }
                    } else if matches!(node.data, html2text::Document) {
                        stack.push(Step::Exit {
                            index,
                            block: false,
                            quote: false,
                            pre: false,
                        });
                        for child in node.children.borrow().iter().rev() {
                            stack.push(Step::Enter(child.clone()));
                        }
                    } else if let Some(text) = text_of(&node) {
                        if pre > 0 {
                            for (n, part) in text.split('\n').enumerate() {
                                if n > 0 {
                                    builder.flush(index);
                                }
                                builder.add(part, index, n == 0);
                            }
                        } else {
                            builder.add(&text, index, true);
                        }
                    } else if !matches!(node.data, html2text::Comment { .. }) {
                        // Whitespace-only text still separates words.
                        builder.add(" ", index, true);
                    }
                }
                Step::Exit {
                    index,
                    block,
                    quote,
                    pre: is_pre,
                } => {
                    if let Some(end) = subtree_end.get_mut(index) {
                        *end = order.len();
                    }
                    if block {
                        builder.flush(order.len());
                    }
                    if quote {
                        builder.depth = builder.depth.saturating_sub(1);
                    }
                    if is_pre {
                        pre = pre.saturating_sub(1);
                    }
                }
            }
        }
        builder.flush(order.len());
        Self {
            order,
            subtree_end,
            lines: builder.lines,
        }
    }

    /// The index of the first line at or after document position `position`.
    fn line_index_at(&self, position: usize) -> usize {
        self.lines.partition_point(|l| l.position < position)
    }

    /// The document position where cutting from line `index` on starts.
    fn cut_position(&self, index: usize) -> usize {
        match self.lines.get(index) {
            Some(line) if line.node_start => line.position,
            Some(line) => line.position + 1,
            None => self.order.len(),
        }
    }

    fn body(&self) -> Option<Handle> {
        self.order
            .iter()
            .find(|n| element_name(n).as_deref() == Some("body"))
            .cloned()
    }

    /// The first quote container or divider (before document position `limit`) that can be cut.
    fn structural_cut(&self, lines: &[Line], limit: usize) -> Option<(usize, &'static str)> {
        for (position, node) in self.order.iter().enumerate().take(limit) {
            let Some((kind, rule)) = structure_kind(node) else {
                continue;
            };
            let first_line = self.line_index_at(position).min(lines.len());
            if !has_content(lines, first_line) {
                continue;
            }
            match kind {
                Structure::Divider => return Some((position, rule)),
                Structure::Container => {
                    let end = self
                        .subtree_end
                        .get(position)
                        .copied()
                        .unwrap_or(self.order.len());
                    let after_line = self.line_index_at(end).min(lines.len());
                    let inside = &lines[first_line..after_line];
                    let before = lines[..first_line].iter().rposition(|l| !l.blank);
                    let forwarded = inside
                        .iter()
                        .chain(before.map(|b| &lines[b]))
                        .any(|l| l.is_text() && FORWARD.is_match(&l.text));
                    if forwarded || inline_answer(inside) || !is_tail(lines, after_line) {
                        continue;
                    }
                    return Some((self.with_attribution(lines, position, first_line), rule));
                }
            }
        }
        None
    }

    /// Extends a cut at a quote container upwards over its quote header: Thunderbird's
    /// `moz-cite-prefix` element, or a header line just above.
    fn with_attribution(&self, lines: &[Line], position: usize, first_line: usize) -> usize {
        if let Some(prefix) = previous_element(&self.order[position])
            && has_class(&prefix, "moz-cite-prefix")
            && let Some(at) = self
                .order
                .iter()
                .position(|n| std::rc::Rc::ptr_eq(n, &prefix))
            && has_content(lines, self.line_index_at(at))
        {
            return at;
        }
        if let Some(above) = lines[..first_line].iter().rposition(|l| !l.blank)
            && lines[above].is_text()
        {
            let start = attribution_ending_at(lines, above)
                .or_else(|| loose_attribution(&lines[above].text).then_some(above));
            if let Some(start) = start
                && has_content(lines, start)
            {
                return self.cut_position(start).min(position);
            }
        }
        position
    }

    /// Removes the node at document position `position` and everything after it.
    fn cut_from(&self, position: usize) {
        let Some(node) = self.order.get(position) else {
            return;
        };
        let mut current = node.clone();
        let mut include_self = true;
        while let Some(parent) = current.get_parent() {
            let mut children = parent.children.borrow_mut();
            if let Some(at) = children
                .iter()
                .position(|c| std::rc::Rc::ptr_eq(c, &current))
            {
                children.truncate(if include_self { at } else { at + 1 });
            }
            drop(children);
            include_self = false;
            current = parent;
        }
    }
}

/// Whether a quote container holds the writer's own words after a quote (Gmail puts inline
/// answers inside its `gmail_quote` div).
fn inline_answer(inside: &[Line]) -> bool {
    let mut quoted = false;
    for line in inside {
        if line.depth > 0 {
            quoted = true;
        } else if quoted && !line.blank && !is_signature_delimiter(&line.text) {
            return true;
        }
    }
    false
}

fn previous_element(node: &Handle) -> Option<Handle> {
    let parent = node.get_parent()?;
    let children = parent.children.borrow();
    let at = children.iter().position(|c| std::rc::Rc::ptr_eq(c, node))?;
    children[..at]
        .iter()
        .rev()
        .find(|c| {
            element_name(c).is_some_and(|name| name != "br")
                || text_of(c).is_some_and(|t| !t.trim().is_empty())
        })
        .filter(|c| element_name(c).is_some())
        .cloned()
}

enum Structure {
    /// Holds the quoted history; cut only when nothing new follows it.
    Container,
    /// Everything from it down is history.
    Divider,
}

fn structure_kind(node: &Handle) -> Option<(Structure, &'static str)> {
    let tag = element_name(node)?;
    let id = attribute(node, "id").unwrap_or_default();
    if tag == "div" && (has_class(node, "gmail_quote") || has_class(node, "gmail_quote_container"))
    {
        return Some((Structure::Container, "html-gmail-quote"));
    }
    if tag == "blockquote"
        && attribute(node, "type").is_some_and(|t| t.eq_ignore_ascii_case("cite"))
    {
        return Some((Structure::Container, "html-blockquote-cite"));
    }
    if id.contains("yahoo_quoted") || has_class(node, "yahoo_quoted") {
        return Some((Structure::Container, "html-yahoo-quoted"));
    }
    if has_class(node, "protonmail_quote") {
        return Some((Structure::Container, "html-protonmail-quote"));
    }
    if [
        "divRplyFwdMsg",
        "appendonsend",
        "OLK_SRC_BODY_SECTION",
        "mail-editor-reference-message-container",
    ]
    .contains(&id.as_str())
    {
        return Some((Structure::Divider, "html-outlook-divider"));
    }
    if tag == "hr"
        && (id == "stopSpelling"
            || id == "zwchr"
            || attribute(node, "data-marker").as_deref() == Some("__DIVIDER__"))
    {
        return Some((Structure::Divider, "html-hr-divider"));
    }
    if tag == "div"
        && let Some(style) = attribute(node, "style")
    {
        let style = style.to_ascii_lowercase();
        if style.contains("border-top") && (style.contains("#e1e1e1") || style.contains("#b5c4df"))
        {
            return Some((Structure::Divider, "html-outlook-border"));
        }
    }
    None
}

/// A node with no visible content: whitespace, comments, breaks, rules, empty elements.
fn is_empty_node(node: &Handle) -> bool {
    let mut stack = vec![node.clone()];
    while let Some(current) = stack.pop() {
        match element_name(&current) {
            Some(tag) if EMBEDDED.contains(&tag.as_str()) => return false,
            Some(tag) if INVISIBLE.contains(&tag.as_str()) => {}
            Some(_) => stack.extend(current.children.borrow().iter().cloned()),
            None => {
                if text_of(&current).is_some_and(|t| !t.trim().is_empty()) {
                    return false;
                }
            }
        }
    }
    true
}

/// Drops the empty nodes a cut leaves at the end (`<br>`s, the `<hr>` above an Outlook header,
/// emptied wrappers), so the reply does not end in blank space.
fn trim_trailing_empty(root: &Handle) {
    let mut current = root.clone();
    loop {
        loop {
            let last = current.children.borrow().last().cloned();
            match last {
                Some(child) if is_empty_node(&child) => {
                    current.children.borrow_mut().pop();
                }
                _ => break,
            }
        }
        let last = current.children.borrow().last().cloned();
        match last {
            Some(child) if element_name(&child).is_some() => current = child,
            _ => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPLY: &str = "Thanks, that fixed it.";

    fn cut(text: &str) -> (String, Option<&'static str>) {
        let stripped = strip_text(text, Signatures::Strip);
        (stripped.text, stripped.rule)
    }

    #[test]
    fn the_verb_at_the_end_is_found_as_the_prefixed_pattern_finds_it() {
        let prefixed = re(&format!("(?i)^.{{4,400}}?(?:{})", VERB_END.as_str()));
        let long = "x".repeat(396);
        let mut cases: Vec<String> = [
            "On Mon, 3 Mar 2025 at 10:00, Ann <ann@example.com> wrote:",
            "wrote:",
            "Ann wrote:",
            "Anna wrote:",
            "Annie wrote :",
            "Le lun. 3 mars 2025 à 10:00, Ann <ann@example.com> a écrit :",
            "Am 03.03.2025 um 10:00 schrieb Hans <hans@example.com>:",
            "2025-03-03 10:00 GMT+01:00 Ann <ann@example.com>:",
            "Jan napisał(a):",
            "Иван написал:",
            "éé wrote:",
            "ééé wrote:",
            "éééé wrote:",
            "wrote wrote:",
            "a wrote wrote:",
            "Dear support:",
            "The printer wrote nothing:",
            "Ann wrote: thanks",
            "Ann wrote:\nmore",
            "2025年3月3日 Ann 写道：",
        ]
        .iter()
        .map(|c| (*c).to_owned())
        .collect();
        for n in [395, 396, 397, 400, 401] {
            cases.push(format!("{} wrote:", "x".repeat(n)));
            cases.push(format!("{} wrote: wrote:", "é".repeat(n)));
        }
        cases.push(format!("{long}wrote wrote:"));
        for case in &cases {
            assert_eq!(verb_at_end(case), prefixed.is_match(case), "{case:?}");
        }
    }

    #[test]
    fn a_message_without_quote_is_unchanged() {
        let text =
            "Hello,\n\n  the printer on floor 2 is broken again.\n\nOn Monday it worked.\nBob";
        assert_eq!(cut(text), (text.to_owned(), None));
    }

    #[test]
    fn a_message_that_is_only_a_quote_is_kept() {
        let text = "> On Mon, 1 Jan 2024 at 10:00, Support <s@example.com> wrote:\n> Hi\n> there";
        assert_eq!(cut(text), (text.to_owned(), None));
        let header_only = "On Mon, 1 Jan 2024 at 10:00, Support <s@example.com> wrote:\n\nHi";
        assert_eq!(cut(header_only).0, header_only);
    }

    #[test]
    fn crlf_becomes_lf() {
        let text = "Line one\r\nLine two\r\n\r\nOn Tue, 2 Jan 2024 at 09:00, A <a@example.com> wrote:\r\n> old\r\n";
        assert_eq!(cut(text).0, "Line one\nLine two");
    }

    #[test]
    fn our_marker_cuts_everything_below() {
        let text = format!(
            "{REPLY}\n\n{REPLY_MARKER}\nYou wrote something\nand more\nSent from my iPhone"
        );
        assert_eq!(cut(&text), (REPLY.to_owned(), Some("marker")));
    }

    #[test]
    fn a_quoted_marker_takes_its_quote_header_along() {
        let text = format!(
            "{REPLY}\n\nOn Wed, 3 Jan 2024 at 11:00, Helpline <help@example.net> wrote:\n> {REPLY_MARKER}\n> Ticket #12 was updated."
        );
        assert_eq!(cut(&text), (REPLY.to_owned(), Some("marker")));
    }

    #[test]
    fn a_marker_with_nothing_above_is_ignored() {
        let text = format!("{REPLY_MARKER}\n{REPLY}");
        assert_eq!(cut(&text).0, text);
    }

    #[test]
    fn english_quote_header_also_wrapped() {
        let text = format!(
            "{REPLY}\n\nOn Dec 16, 2011, at 12:47 PM, Corey Donohoe\n<reply@reply.github.com>\nwrote:\n\n> Was this fixed?"
        );
        assert_eq!(cut(&text), (REPLY.to_owned(), Some("quote-header")));
        let no_colon = format!(
            "{REPLY}\n\nOn Wed, 14 Nov 2018 08:14:43 -0200 John Doe <john@doe.com> wrote\n\nOld text"
        );
        assert_eq!(cut(&no_colon).0, REPLY);
    }

    #[test]
    fn quote_headers_in_other_languages() {
        let headers = [
            "Le 15 janv. 2024 à 14:30, Pierre Dubois <pierre@example.fr> a écrit :",
            "Le lun. 15 nov. 2021 à 19:42, John - Acme <john@acme.example>\na écrit :",
            "Am 14.01.2024 um 10:00 schrieb Hans Mueller <hans@example.de>:",
            "El 12 ene 2024, a las 9:15, Ana <ana@example.es> escribió:",
            "Il giorno 11 ott 2017, alle ore 21:11, Mario <mario@example.it> ha scritto:",
            "Op 12 december 2016 19:05 schreef Company Questions <\nq@company.example>:",
            "W dniu 2017-01-09 11:59:39 użytkownik Company <q@company.example> napisał:",
            "Dnia 27 grudnia 2016 12:08 Company <q@company.example> napisał(a):",
            "02.04.2012 14:20 пользователь \"bob@example.org\" <\nbob@example.org> написал:",
            "ср, 30 апр. 2025 г. в 15:19, John Doe <doe@example.com>:",
            "Den 3 jan. 2024 kl. 10:00 skrev Sven <sven@example.se>:",
            "tir. 18. apr. 2017 kl. 13:09 skrev Test user <test@example.com\n>:",
            "ti 9. tammik. 2024 klo 10.00 Matti <matti@example.fi> kirjoitti:",
            "2025年1月6日(月) 10:00 Taro <taro@example.jp>:",
            "在 2024年1月6日 10:00，张三 <zhang@example.cn> 写道：",
            "Em 6 de jan. de 2024, às 10:00, Ana <ana@example.pt> escreveu:",
            "---- On Wed, 24 Feb 2021 14:02:50 +0530 john@gmail.com wrote ----",
            "Am Mo., 6. Jan. 2025 um 10:00 Uhr schrieb Hans <hans@example.de>:",
            "Op ma 6 jan 2025 om 10:00 schreef Jan <jan@example.nl>:",
            "El lun, 6 ene 2025 a las 10:00, Ana (<ana@example.es>) escribió:",
            "Den 6. jan. 2025 kl. 10.00 skrev Jens <jens@example.dk>:",
            "Dne 6. 1. 2025 10:00 Jan <jan@example.cz> napsal(a):",
            "2025년 1월 6일 (월) 오전 10:00, Name <a@example.kr>님이 작성:",
            "张三 <zhang@example.cn> 于2025年1月6日周一 10:00写道：",
            "Ivan <ivan@example.com>, 6 Oca 2025 Pzt, 10:00 tarihinde şunu yazdı:",
            "Name <a@example.hu> ezt írta (időpont: 2025. jan. 6., H, 10:00):",
            "Στις Δευ 6 Ιαν 2025 στις 10:00, ο/η Name <a@example.gr> έγραψε:",
        ];
        for header in headers {
            let text = format!("{REPLY}\n\n{header}\n\nThe old message.\nMore of it.");
            assert_eq!(cut(&text).0, REPLY, "header: {header}");
            let quoted = format!("{REPLY}\n{header}\n> The old message.\n>");
            assert_eq!(cut(&quoted).0, REPLY, "quoted, header: {header}");
        }
    }

    #[test]
    fn outlook_original_message_and_header_blocks() {
        let blocks = [
            "-----Original Message-----\nFrom: Bob\nSent: Monday\nTo: Al\nSubject: Hi",
            "-----Ursprüngliche Nachricht-----\nVon: Bob",
            "-------- Original-Nachricht --------\nDatum: 06.01.2025 10:00",
            "Från: Sven <sven@example.se>\nSkickat: den 6 januari 2025 10:00\nTill: Support\nÄmne: Skrivare",
            "差出人: 太郎 <taro@example.jp>\n送信日時: 2025年1月6日 10:00\n宛先: サポート\n件名: プリンター",
            "发件人: 张三 <zhang@example.cn>\n发送时间: 2025年1月6日 10:00\n收件人: 支持\n主题: 打印机",
            "-------- Message d'origine --------\nDe : A B C <abc@abc.org>",
            "________________________________\nFrom: The Engine <e@example.com>\nSent: Wednesday, September 25, 2019 5:45 PM\nTo: k@example.com\nSubject: Hello",
            "From: CRM [crm@example.com]\nSent: Friday, 23 March 2012 5:08 p.m.\nTo: John\nSubject: [contact:106]",
            "Von: John Doe <service@example.de>\nGesendet: Donnerstag, 23. März 2023 17:11\nAn: John Doe <service@example.de>\nBetreff: AW: Hi there!",
            "      De : Someone <someone@yahoo.fr>\n À : mycompany <q@mycompany.com>\n Envoyé le : Mercredi 30 novembre 2016 10h30\n Objet : Re: Vous",
            "De: Ana <ana@example.es>\nEnviado: lunes, 8 de enero de 2024 10:00\nPara: Soporte <s@example.es>\nAsunto: Impresora",
            " ------------------------------\n\n*From:* Google Apps [mailto:noreply@google.com]\n*Sent:* Thursday, February 09, 2012 1:36 PM\n*To:* jow@example.com\n*Subject:* Updated!",
        ];
        for block in blocks {
            let text = format!("{REPLY}\n\n{block}\n\nThe old message.\n");
            let (visible, rule) = cut(&text);
            assert_eq!(visible, REPLY, "block: {block}");
            assert!(
                matches!(rule, Some("original-message" | "outlook-header")),
                "{rule:?}"
            );
        }
    }

    #[test]
    fn from_in_the_middle_of_a_sentence_is_not_a_header() {
        let text = "I need to parse emails that come from: john@example.com\n\nThe data comes From: our database.\nFrom: me\nTo: you";
        assert_eq!(cut(text).0, text);
    }

    #[test]
    fn trailing_quoted_lines_go() {
        let text = format!(
            "{REPLY}\n> On 22 Aug 2015, at 19:21, Adam <a@example.com> wrote:\n>\n> Hi there!\n"
        );
        assert_eq!(cut(&text), (REPLY.to_owned(), Some("trailing-quote")));
        let unknown_language =
            format!("{REPLY}\n\n2013.02.08. 7:31 xyz, \"Eszter\" <e@example.hu> blah:\n> old\n");
        assert_eq!(cut(&unknown_language).0, REPLY);
    }

    #[test]
    fn an_inline_reply_keeps_its_quotes() {
        let text = "Hi,\nOn Tue, 2011-03-01 at 18:02 +0530, Abhishek Kona wrote:\n> What is the best way?\n\nList the keys and delete each.\n\n> And the rest?\n\nThat too.";
        assert_eq!(cut(text).0, text);
        // The trailing quote after the last answer still goes.
        let with_tail = format!("{text}\n\n> old footer\n> more");
        assert_eq!(cut(&with_tail).0, text);
    }

    #[test]
    fn a_bottom_posted_reply_is_kept_whole() {
        let text = "On 04/02/2012 06:26 PM, Megan One wrote:\n> Hi\n\nHello";
        assert_eq!(cut(text).0, text);
    }

    #[test]
    fn a_rewrapped_quote_line_stays_in_the_quote() {
        let text = format!(
            "{REPLY}\n\nIl giovedì, 8 dicembre 2016, Company <q@company.example>\nha scritto:\n> Lorem ipsum dolor sit amet, pharetra d\nignissim odio?\n>\n\n-- \n\nDisclaimer text"
        );
        assert_eq!(cut(&text).0, REPLY);
    }

    #[test]
    fn signatures_go_at_the_end_only() {
        assert_eq!(
            cut("this is a -- signature.\n\n-- \nrick"),
            ("this is a -- signature.".to_owned(), Some("signature"))
        );
        assert_eq!(cut("no empty line\n--\nrick").0, "no empty line");
        assert_eq!(
            cut("Here is another email\n\nSent from my iPhone"),
            ("Here is another email".to_owned(), Some("mobile-signature"))
        );
        assert_eq!(
            cut("Here\n\nSent from my Verizon Wireless BlackBerry").0,
            "Here"
        );
        assert_eq!(cut("Hi\n\nVon meinem iPhone gesendet").0, "Hi");
        assert_eq!(
            cut("Hi\n\nGet Outlook for iOS<https://aka.ms/o0ukef>").0,
            "Hi"
        );
        let sentence =
            "Here is another email\n\nSent from my desk, is much easier then my mobile phone.";
        assert_eq!(cut(sentence).0, sentence);
        let middle = "Hi\n\nSent from my iPhone\n\nBut one more thing: the printer.";
        assert_eq!(cut(middle).0, middle);
        let dash_in_line = "And here is a fix -- this is not a signature.\n\nkthxbai";
        assert_eq!(cut(dash_in_line).0, dash_in_line);
        let footer = "Question?\n\n-Abhishek\n\n\n____\nriak-users mailing list\nriak-users@lists.example.com";
        assert_eq!(cut(footer).0, "Question?\n\n-Abhishek");
    }

    #[test]
    fn keep_mode_leaves_signatures() {
        let text = "Hello\n\nSent from my iPhone\n\nOn Apr 3, 2012, at 4:19 PM, bob <bob@example.com> wrote:\n\n> Hi\n";
        assert_eq!(
            strip_text(text, Signatures::Keep).text,
            "Hello\n\nSent from my iPhone"
        );
        assert_eq!(visible_text(text), "Hello");
    }

    #[test]
    fn a_forward_is_content() {
        let text = "See the forwarded message below.\n\n---------- Forwarded message ---------\nFrom: John <john@example.com>\nDate: Mon, Dec 15, 2024 at 3:00 PM\nSubject: Update\nTo: Team <team@example.com>\n\nForwarded content.\n\n-- \nJohn";
        assert_eq!(cut(text).0, text);
    }

    #[test]
    fn prose_that_looks_like_a_header_stays() {
        for text in [
            "On your remote host you can run:\n\n  telnet 127.0.0.1 52698\n\nThanks",
            "On Thursday:\n\nLorem ipsum.\n\nOn Thursday:\n\nMore.",
            "Timestamps: 2024-01-15 14:30:25\n15.01.2024 14:30\n\nAll of these are content.",
            "Check https://example.com/on-date-someone-wrote-about-parsing\n\nBest regards,\nJohn",
        ] {
            assert_eq!(cut(text).0, text);
        }
    }

    #[test]
    fn long_quotes_are_fast() {
        let mut text = String::from(
            "Short answer.\n\nOn Mon, 1 Jan 2024 at 10:00, A <a@example.com> wrote:\n",
        );
        for i in 0..50_000 {
            text.push_str(&format!("> quoted line {i} with some words in it\n"));
        }
        let started = std::time::Instant::now();
        assert_eq!(visible_text(&text), "Short answer.");
        assert!(started.elapsed().as_secs() < 5);
    }

    fn html_text(html: &str) -> String {
        html2text::config::plain_no_decorate()
            .string_from_read(html.as_bytes(), 200)
            .unwrap_or_default()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn cut_html(html: &str) -> (String, Option<&'static str>) {
        let stripped = strip_html(html, Signatures::Strip);
        (html_text(&stripped.text), stripped.rule)
    }

    #[test]
    fn html_without_quote_is_returned_as_is() {
        let html = "<div>Hello<br>there</div><blockquote class=\"gmail_quote\">a quote</blockquote><div>and my answer</div>";
        assert_eq!(strip_html(html, Signatures::Strip).text, html);
        assert_eq!(strip_html(html, Signatures::Strip).rule, None);
    }

    #[test]
    fn html_that_is_only_a_quote_is_kept() {
        let html = "<div class=\"gmail_quote\">On Mon, 1 Jan 2024 at 10:00, A &lt;a@example.com&gt; wrote:<blockquote>old</blockquote></div>";
        assert_eq!(strip_html(html, Signatures::Strip).text, html);
    }

    #[test]
    fn html_gmail_quote() {
        let html = "<div dir=\"ltr\">Hi. I am fine.</div><div class=\"gmail_extra\"><br><div class=\"gmail_quote\">On Thu, Jun 26, 2014 at 2:14 PM, Alexander &lt;<a href=\"mailto:a@example.com\">a@example.com</a>&gt; wrote:<br><blockquote class=\"gmail_quote\">Hello!</blockquote></div><br></div>";
        let stripped = strip_html(html, Signatures::Strip);
        assert_eq!(html_text(&stripped.text), "Hi. I am fine.");
        assert_eq!(stripped.rule, Some("html-gmail-quote"));
        assert!(!stripped.text.contains("gmail_extra"), "{}", stripped.text);
    }

    #[test]
    fn html_gmail_inline_answers_stay() {
        let html = "<div>Hi</div><div class=\"gmail_quote\"><div class=\"gmail_attr\">On Mon, 1 Jan 2024 at 10:00, A &lt;a@example.com&gt; wrote:</div><blockquote class=\"gmail_quote\">Question one?</blockquote><div>Answer one.</div><blockquote class=\"gmail_quote\">Question two?</blockquote></div>";
        let (text, _) = cut_html(html);
        assert!(text.contains("Answer one."), "{text}");
    }

    #[test]
    fn html_blockquote_cite_and_thunderbird_prefix() {
        let html = "<body>Hi. I am fine.<br><div class=\"moz-cite-prefix\">Am 26.06.2014 14:41, schrieb Alexander:<br></div><blockquote type=\"cite\">Hello! How are you?</blockquote><br></body>";
        assert_eq!(
            cut_html(html),
            ("Hi. I am fine.".to_owned(), Some("html-blockquote-cite"))
        );
        let bottom_posted = "<body><p>On Apr 3, 2012, at 4:19 PM, bob wrote:</p><blockquote type=\"cite\">Hi</blockquote><p>Hello</p></body>";
        assert_eq!(strip_html(bottom_posted, Signatures::Strip).rule, None);
    }

    #[test]
    fn html_apple_mail_attribution_in_its_own_quote() {
        let html = "<div>Reply</div><div><br><blockquote type=\"cite\">On Jan 6, 2025, at 10:00, A &lt;a@example.com&gt; wrote:<br><br></blockquote></div><blockquote type=\"cite\"><div>old</div></blockquote>";
        assert_eq!(cut_html(html).0, "Reply");
    }

    #[test]
    fn html_outlook_dividers() {
        let cases = [
            "<div>Reply</div><div id=\"appendonsend\"></div><hr style=\"display:inline-block\"><div id=\"divRplyFwdMsg\" dir=\"ltr\"><b>From:</b> A<br><b>Sent:</b> B</div><div>old</div>",
            "<div>Reply</div><div style=\"border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0in 0in 0in\"><p><b>Von:</b> A</p></div><p>old</p>",
            "<div>Reply<div><hr id=\"stopSpelling\">Date: Thu, 26 Jun 2014<br>Subject: Test<br>old</div></div>",
            "<div>Reply</div><span id=\"OLK_SRC_BODY_SECTION\"><div>From: Bob</div><div>old</div></span>",
            "<div>Reply</div><div id=\"yahoo_quoted_123\" class=\"yahoo_quoted\"><div>On Monday, X wrote:</div><div>old</div></div>",
        ];
        for html in cases {
            let (text, rule) = cut_html(html);
            assert_eq!(text, "Reply", "{html}");
            assert!(rule.is_some_and(|r| r.starts_with("html-")), "{rule:?}");
        }
    }

    #[test]
    fn html_text_headers_and_blockquotes() {
        let outlook = "<p>Hi</p><p><b>From:</b> Foo [mailto:foo@bar.com]<br><b>Sent:</b> Monday<br><b>To:</b> john@bar.com<br><b>Subject:</b> Conversation</p><p>old</p>";
        assert_eq!(cut_html(outlook), ("Hi".to_owned(), Some("outlook-header")));
        let yandex = "<p>Hi.<br><br>26.06.2014, 14:41, \"Alexander L\" &lt;<a href=\"mailto:abc@example.com\">abc@example.com</a>&gt;:</p><blockquote> Hello!</blockquote>";
        assert_eq!(cut_html(yandex).0, "Hi.");
        let aol = "Hello<br><br><div>-----Original Message-----<br>From: bob<br>old</div>";
        assert_eq!(cut_html(aol).0, "Hello");
    }

    #[test]
    fn html_marker_and_signature() {
        let html = format!(
            "<div>Done, thanks.</div><div>-- </div><div>Jane</div><div style=\"display:none\">{REPLY_MARKER}</div><div>Ticket history</div>"
        );
        let stripped = strip_html(&html, Signatures::Strip);
        assert_eq!(html_text(&stripped.text), "Done, thanks.");
        assert_eq!(stripped.rule, Some("marker"));
        let kept = strip_html(&html, Signatures::Keep);
        assert_eq!(html_text(&kept.text), "Done, thanks. -- Jane");
    }
}
