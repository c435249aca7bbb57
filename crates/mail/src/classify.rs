//! Sorting inbound mail into normal, auto-reply, bulk and bounce (loop and auto-reply
//! protection).
//!
//! The intake pipeline must never answer, reopen a ticket for, or notify anyone about a
//! message that a machine sent: that is how mail loops start. [`classify`] looks at one parsed
//! message and names its [`MailClass`] together with the rule that decided it, so an admin can
//! see *why* a message was treated as a bounce or an auto-reply.
//!
//! The rules follow RFC 3834 (automatic responses), RFC 3464 / RFC 6522 (delivery status
//! reports), RFC 5965 (abuse feedback reports), RFC 8098 (read receipts), RFC 2369 / RFC 2919
//! (list headers), plus the vendor headers and subjects that osTicket, Request Tracker, Zammad
//! and FreeScout recognise. They are checked in a fixed order, strongest evidence first:
//!
//! 1. **Bounce, by structure**: a `multipart/report` message or a report part
//!    (`message/delivery-status`, `message/feedback-report`, …), `X-Failed-Recipients`, an
//!    Apple Mail unsubscribe request, an Amazon SES bounce/complaint notification.
//! 2. **Bounce, by sender or subject**: `From` a mailer-daemon or postmaster mailbox (or an
//!    empty `From`), or a subject that only mail servers write ("Undelivered Mail Returned to
//!    Sender", "Undeliverable: …").
//! 3. **Auto-reply, explicit**: `Auto-Submitted: auto-replied`, `X-Autoreply`,
//!    `X-Autorespond`, `Precedence: auto_reply`, the Exchange out-of-office pair of headers, an
//!    out-of-office subject, and similar.
//! 4. **Bounce, by envelope**: a null `Return-Path: <>`. It comes after the explicit
//!    auto-replies because vacation responders usually send with a null envelope sender too
//!    (so that nothing answers them), and "auto-reply" is the more precise name for those.
//! 5. **Auto-reply, other automatic mail**: any other `Auto-Submitted` value than `no`
//!    (`auto-generated`, `auto-notified`).
//! 6. **Bulk**: `Precedence: bulk|junk|list`, `List-Id`, `List-Unsubscribe`, `List-Post`.
//!
//! Everything is decided from headers and MIME structure. The body is read only for one
//! machine format (a body that *is* an Amazon SES JSON notification), because a human reply
//! that quotes a bounce or says "delivery failed" must stay a normal message.
//!
//! `X-Auto-Response-Suppress` is deliberately **not** a rule on its own: it asks the receiver
//! not to auto-respond and Outlook and many newsletters set it on ordinary mail (MS-OXCMAIL
//! 2.1.3.2.20; Sisimai dropped it for that reason). It only counts together with Exchange's
//! `X-MS-Exchange-Inbox-Rules-Loop`, and [`auto_response_suppressed`] reports it separately so
//! the auto-acknowledgement can honour it.

use std::fmt;

use crate::parse::{InboundMail, Mailbox};

/// What kind of sender a message comes from, as far as loop protection is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MailClass {
    /// Written by a person: may open or reopen a ticket and get an auto-acknowledgement.
    Normal,
    /// An automatic response or other machine-generated mail (vacation notice, RFC 3834
    /// `Auto-Submitted`): attach as a note at most, never answer it, never reopen.
    AutoReply,
    /// Mailing-list or bulk mail: may create a ticket, but never gets an auto-acknowledgement.
    Bulk,
    /// A delivery failure, delay or other report about mail (DSN, abuse feedback report, read
    /// receipt): never a customer message, never answered, never reopens or notifies.
    Bounce,
}

impl MailClass {
    /// The stable lower-case name (`normal`, `auto_reply`, `bulk`, `bounce`), as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            MailClass::Normal => "normal",
            MailClass::AutoReply => "auto_reply",
            MailClass::Bulk => "bulk",
            MailClass::Bounce => "bounce",
        }
    }

    /// Whether a machine sent it on its own (bounce or auto-reply): such mail must never get
    /// an automatic response and must never reopen a ticket.
    pub fn is_automatic(self) -> bool {
        matches!(self, MailClass::AutoReply | MailClass::Bounce)
    }
}

impl fmt::Display for MailClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The class of a message and the rule that decided it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Classification {
    /// The class.
    pub class: MailClass,
    /// Which rule matched, in words an admin understands, e.g.
    /// `Auto-Submitted: auto-replied (RFC 3834)` or `From: MAILER-DAEMON`; `no rule matched`
    /// for normal mail.
    pub rule: String,
}

impl Classification {
    fn new(class: MailClass, rule: impl Into<String>) -> Self {
        Self {
            class,
            rule: rule.into(),
        }
    }
}

/// Classifies `mail` as normal, auto-reply, bulk or bounce; see the module documentation for
/// the rules and their order.
pub fn classify(mail: &InboundMail) -> Classification {
    use MailClass::{AutoReply, Bounce, Bulk, Normal};

    // 1. Bounce by structure: the report formats only mail servers and feedback loops produce.
    if let Some(rule) = report_rule(mail) {
        return Classification::new(Bounce, rule);
    }
    if mail
        .header_values("x-failed-recipients")
        .any(|v| !v.trim().is_empty())
    {
        return Classification::new(Bounce, "X-Failed-Recipients (Exim bounce)");
    }
    if mail
        .header_values("x-apple-unsubscribe")
        .any(|v| first_word(v) == "true")
    {
        // Apple Mail's "Unsubscribe" button mails the List-Unsubscribe address for the user:
        // feedback about mail we sent, like an abuse report, not a customer's message.
        return Classification::new(
            Bounce,
            "X-Apple-Unsubscribe: true (unsubscribe request sent by Apple Mail)",
        );
    }
    if ses_notification(mail) {
        return Classification::new(
            Bounce,
            "Amazon SES bounce/complaint notification (JSON body)",
        );
    }

    // 2. Bounce by sender or subject.
    if let Some(rule) = daemon_sender_rule(mail) {
        return Classification::new(Bounce, rule);
    }
    if let Some(subject) = mail.subject.as_deref()
        && let Some(rule) = bounce_subject_rule(subject)
    {
        return Classification::new(Bounce, rule);
    }

    // 3. Explicit auto-replies: the headers responders set, then their subjects.
    if auto_submitted(mail) == AutoSubmitted::Replied {
        return Classification::new(AutoReply, "Auto-Submitted: auto-replied (RFC 3834)");
    }
    if let Some(rule) = auto_reply_header_rule(mail) {
        return Classification::new(AutoReply, rule);
    }
    if let Some(subject) = mail.subject.as_deref()
        && let Some(rule) = auto_reply_subject_rule(subject)
    {
        return Classification::new(AutoReply, rule);
    }

    // 4. Bounce by envelope: only bounces and auto-responses use the null sender, and the
    //    auto-responses that say so were caught above.
    if let Some(rule) = null_sender_rule(mail) {
        return Classification::new(Bounce, rule);
    }

    // 5. Other automatic mail (RFC 3834: any value other than "no").
    if let AutoSubmitted::Other(value) = auto_submitted(mail) {
        return Classification::new(AutoReply, format!("Auto-Submitted: {value} (RFC 3834)"));
    }

    // 6. Bulk and list mail.
    if let Some(rule) = bulk_rule(mail) {
        return Classification::new(Bulk, rule);
    }

    Classification::new(Normal, "no rule matched")
}

/// Whether the sender asked not to get automatic responses (Microsoft
/// `X-Auto-Response-Suppress` with `All`, `OOF` or `AutoReply`). This does not make the
/// message automatic (Outlook sets it on ordinary mail); it only means that an
/// auto-acknowledgement should not be sent.
pub fn auto_response_suppressed(mail: &InboundMail) -> bool {
    mail.header_values("x-auto-response-suppress").any(|v| {
        v.split([',', ' ', ';']).map(str::trim).any(|t| {
            ["all", "oof", "autoreply"]
                .iter()
                .any(|w| t.eq_ignore_ascii_case(w))
        })
    })
}

/// `multipart/report` at the top, or a report part anywhere in the message's own MIME tree.
///
/// Parts of an attached `message/rfc822` are not in `part_types`, so a person forwarding a
/// bounce as an attachment is not mistaken for the bounce itself.
fn report_rule(mail: &InboundMail) -> Option<String> {
    if let Some(ct) = mail.content_type.as_deref()
        && media_type(ct) == "multipart/report"
    {
        let report_type = parameter(ct, "report-type").unwrap_or_default();
        return Some(match report_type.as_str() {
            "delivery-status" | "global-delivery-status" => {
                format!("multipart/report; report-type={report_type} (RFC 3464)")
            }
            "feedback-report" => {
                "multipart/report; report-type=feedback-report (RFC 5965 abuse report)".to_owned()
            }
            "disposition-notification" | "global-disposition-notification" => {
                format!("multipart/report; report-type={report_type} (RFC 8098 read receipt)")
            }
            "" => "multipart/report (RFC 6522)".to_owned(),
            other => format!("multipart/report; report-type={other} (RFC 6522)"),
        });
    }
    for part in &mail.part_types {
        let rule = match part.as_str() {
            "message/delivery-status" | "message/global-delivery-status" => {
                format!("{part} part (RFC 3464)")
            }
            "message/feedback-report" => format!("{part} part (RFC 5965 abuse report)"),
            "message/disposition-notification" | "message/global-disposition-notification" => {
                format!("{part} part (RFC 8098 read receipt)")
            }
            _ => continue,
        };
        return Some(rule);
    }
    None
}

/// The body *is* an Amazon SES event (`{"notificationType":"Bounce"|"Complaint", …}`), as SES
/// sends it through SNS: a machine format that starts the body, so a human message quoting one
/// (which starts with the human's own words) does not match.
fn ses_notification(mail: &InboundMail) -> bool {
    let Some(text) = mail.text.as_deref() else {
        return false;
    };
    let text = text.trim_start();
    if !text.starts_with('{') {
        return false;
    }
    // The event is either the whole body or, when it went through SNS, a JSON string inside
    // the SNS envelope (`{"Type" : "Notification", …, "Message" : "{\"notificationType\"…`),
    // where its quotes are escaped. SNS puts it within the first few hundred characters.
    let compact: String = text
        .chars()
        .take(1000)
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .replace("\\\"", "\"");
    ["notificationType", "eventType"].iter().any(|key| {
        ["Bounce", "Complaint"]
            .iter()
            .any(|kind| compact.contains(&format!("\"{key}\":\"{kind}\"")))
    }) && (compact.starts_with("{\"notificationType\"")
        || compact.starts_with("{\"eventType\"")
        || compact.starts_with("{\"Type\":\"Notification\""))
}

/// Local parts that only mail servers send from.
const DAEMON_LOCAL_PARTS: &[&str] = &[
    "mailer-daemon",
    "mailer_daemon",
    "mailerdaemon",
    "mail-daemon",
    "postmaster",
    "post_master",
    "post-master",
];

/// `From` a mailer-daemon or postmaster mailbox, a display name that MTAs use for their
/// bounces, or an empty `From: <>`.
fn daemon_sender_rule(mail: &InboundMail) -> Option<String> {
    let raw_from = mail.header("from").map(str::trim);
    // A bare `From: mailer-daemon` has no domain, so it is not parsed as a mailbox; read the
    // raw value then.
    let parsed_from = mail.from.clone().or_else(|| {
        let value = raw_from?.trim_matches(['<', '>', ' ']);
        (!value.is_empty() && !value.contains(char::is_whitespace)).then(|| Mailbox {
            name: None,
            address: value.to_owned(),
        })
    });
    if let Some(from) = &parsed_from {
        let local = local_part(&from.address);
        if let Some(daemon) = DAEMON_LOCAL_PARTS
            .iter()
            .find(|d| local.eq_ignore_ascii_case(d))
        {
            return Some(if daemon.contains("daemon") {
                "From: MAILER-DAEMON".to_owned()
            } else {
                "From: postmaster".to_owned()
            });
        }
        if let Some(name) = &from.name {
            let name = name.trim_matches(['"', '\'', ' ']);
            let lower = name.to_lowercase();
            // "Mail Delivery System" (Postfix, Exim), "Mail Delivery Subsystem" (Sendmail),
            // "Mail Delivery Service", "Mailer Daemon".
            if lower.contains("mailer-daemon")
                || lower.contains("mailer daemon")
                || lower.starts_with("mail deliver")
            {
                return Some(format!(
                    "From: \"{}\" (mail server sender name)",
                    shorten(name)
                ));
            }
        }
    } else if raw_from.is_some_and(|v| v.is_empty() || v.contains("<>")) {
        // Some MTAs put the null sender into From as well.
        return Some("From: <> (null sender)".to_owned());
    }
    None
}

/// Subjects that only mail servers write, lower case. Matched against the start of the
/// subject (no `Re:`/`Fwd:` stripping: a person replying to or forwarding a bounce writes a
/// normal message) and only where the phrase is specific enough that a customer would not
/// start a message with it; "Delivery status" or "Delivery failure" on their own are left
/// out because a shop's customers write exactly that about parcels.
const BOUNCE_SUBJECT_PREFIXES: &[&str] = &[
    // Postfix, Sendmail, Exim, qmail.
    "undelivered mail returned to sender",
    "returned mail:",
    "postmaster notify:",
    "warning: could not send message for past",
    "mail delivery failed: returning message to sender",
    "delayed mail (still being retried)",
    "failure notice:",
    "failure notice :",
    // Gmail, Exchange and others' DSN subjects (not the bare "Delivery status
    // notification", which parcel services send too).
    "delivery status notification (failure)",
    "delivery status notification (delay)",
    "delivery status notification (mail delivery delayed)",
    "delivery status notification: failed",
    "delivery status notification: delayed",
    "delivery status notification: error",
    "mail delivery status notification",
    // Exchange and its translations.
    "undeliverable:",
    "undeliverable mail",
    "undeliverable message",
    "unzustellbar:",
    "non remis :",
    "non remis:",
    "non recapitabile:",
    "no se puede entregar:",
    "onbestelbaar:",
    "não é possível entregar:",
    // Lotus Notes / Domino.
    "delivery failure:",
    "delivery notification: delivery has failed",
    // Japanese and Russian providers.
    "mail system error - returned mail",
    "ваше сообщение не доставлено",
];

/// Whole subjects that only mail servers write, lower case.
const BOUNCE_SUBJECTS: &[&str] = &[
    "failure notice", // qmail
    "mail delivery failed",
    "mail delivery failure",
    "message delivery has failed",
    "permanent delivery failure",
    "non delivery notification",
    "non-delivery notification",
    "mail could not be delivered",
    "sorry, your message could not be delivered",
    "недоставленное сообщение", // Yandex
];

fn bounce_subject_rule(subject: &str) -> Option<String> {
    let normalised = normalise_subject(subject);
    let hit = BOUNCE_SUBJECT_PREFIXES
        .iter()
        .any(|p| normalised.starts_with(p))
        || BOUNCE_SUBJECTS.contains(&normalised.as_str());
    if hit {
        return Some(format!(
            "Subject: \"{}\" (bounce subject)",
            shorten(subject)
        ));
    }
    // Hotmail/Outlook.com's older complaint format (JMRP) is no multipart/report but a
    // multipart/mixed with the subject "complaint about message from <sending IP>". Only the
    // IP address makes it specific: a customer may well complain "about message from Anna".
    normalised
        .strip_prefix("complaint about message from ")
        .and_then(|rest| rest.split_whitespace().next())
        .is_some_and(|ip| ip.parse::<std::net::IpAddr>().is_ok())
        .then(|| {
            format!(
                "Subject: \"{}\" (Hotmail/Outlook.com abuse complaint)",
                shorten(subject)
            )
        })
}

/// Which `Auto-Submitted` value a message carries.
#[derive(Debug, PartialEq, Eq)]
enum AutoSubmitted {
    /// Absent, empty or `no`.
    No,
    /// `auto-replied` (a response to a message).
    Replied,
    /// Any other value (`auto-generated`, `auto-notified`, …), lower case, without parameters.
    Other(String),
}

fn auto_submitted(mail: &InboundMail) -> AutoSubmitted {
    let mut found = AutoSubmitted::No;
    for value in mail.header_values("auto-submitted") {
        // The keyword ends at a parameter (`;`), a comment (`(`) or white space.
        let keyword = value
            .trim()
            .split(|c: char| c == ';' || c == '(' || c.is_whitespace())
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        match keyword.as_str() {
            "" | "no" => {}
            "auto-replied" => return AutoSubmitted::Replied,
            _ => found = AutoSubmitted::Other(keyword),
        }
    }
    found
}

/// The vendor headers of auto-responders (osTicket, FreeScout, RT lists; the
/// jpmckinney/multi_mail "Detecting autoresponders" survey).
fn auto_reply_header_rule(mail: &InboundMail) -> Option<String> {
    // Present with any value but an explicit "no": they only exist on automatic responses.
    for name in [
        "X-Autoreply",
        "X-Autorespond",
        "X-Autoresponder",
        "X-Autoresponse",
        "X-AutoReply-From",
        "X-Mail-Autoreply",
    ] {
        if let Some(value) = mail.header(name)
            && !matches!(
                value.trim().to_ascii_lowercase().as_str(),
                "no" | "false" | "0"
            )
        {
            return Some(format!("{name}: {}", shorten(value)));
        }
    }
    for name in ["Precedence", "X-Precedence"] {
        if mail
            .header_values(name)
            .any(|v| matches!(first_word(v).as_str(), "auto_reply" | "auto-reply"))
        {
            return Some(format!("{name}: auto_reply"));
        }
    }
    // CommuniGate: Reply; not Forward or Redirect, which carry a person's message.
    if mail
        .header_values("x-autogenerated")
        .any(|v| first_word(v) == "reply")
    {
        return Some("X-Autogenerated: Reply (CommuniGate)".to_owned());
    }
    if mail
        .header_values("x-fc-machinegenerated")
        .any(|v| first_word(v) == "true")
    {
        return Some("X-FC-MachineGenerated: true (FirstClass)".to_owned());
    }
    if mail
        .header_values("x-post-messageclass")
        .any(|v| v.to_ascii_lowercase().contains("autoresponder"))
    {
        return Some("X-POST-MessageClass: Autoresponder (Mailtraq)".to_owned());
    }
    if mail
        .header_values("delivered-to")
        .any(|v| v.trim().eq_ignore_ascii_case("autoresponder"))
    {
        return Some("Delivered-To: Autoresponder (qmail)".to_owned());
    }
    if mail
        .header_values("x-apple-action")
        .any(|v| first_word(v) == "vacation")
    {
        return Some("X-Apple-Action: VACATION (iCloud vacation reply)".to_owned());
    }
    // Exchange out-of-office: the inbox-rule loop marker together with a suppression of all
    // further responses (Zammad's rule). Either header alone also appears on person-written
    // mail: the loop marker on messages that an inbox rule forwarded, the suppression on
    // ordinary Outlook mail.
    if mail.has_header("x-ms-exchange-inbox-rules-loop")
        && mail.header_values("x-auto-response-suppress").any(|v| {
            v.split([',', ' '])
                .any(|t| t.eq_ignore_ascii_case("all") || t.eq_ignore_ascii_case("oof"))
        })
    {
        return Some(
            "X-MS-Exchange-Inbox-Rules-Loop with X-Auto-Response-Suppress (Exchange out of office)"
                .to_owned(),
        );
    }
    None
}

/// Subject prefixes of out-of-office and other automatic replies, lower case, each followed
/// by `:` in the subject (Outlook's "Automatic reply: <original subject>" and its
/// translations, RFC 3834's "Auto:" excepted, because "Auto" is also the German for car).
const AUTO_REPLY_SUBJECT_TAGS: &[&str] = &[
    "automatic reply",
    "auto reply",
    "auto-reply",
    "autoreply",
    "auto response",
    "auto-response",
    "autoresponse",
    "automatic response",
    "out of office",
    "out of office autoreply",
    "out of office reply",
    "out of the office",
    "automatische antwort",   // German
    "abwesenheitsnotiz",      // German (Lotus Notes, Outlook)
    "réponse automatique",    // French
    "risposta automatica",    // Italian
    "respuesta automática",   // Spanish
    "automatisch antwoord",   // Dutch
    "resposta automática",    // Portuguese
    "autosvar",               // Swedish, Norwegian
    "automatisk svar",        // Danish
    "automaattinen vastaus",  // Finnish
    "automatyczna odpowiedź", // Polish
    "automatická odpověď",    // Czech
    "automatikus válasz",     // Hungarian
    "автоматический ответ",   // Russian
    "自動回覆",               // Chinese (traditional)
    "自动回复",               // Chinese (simplified)
    "自動応答",               // Japanese
];

/// Whole subjects of automatic replies, lower case.
const AUTO_REPLY_SUBJECTS: &[&str] = &[
    "auto response",
    "auto reply",
    "autoreply",
    "automatic reply",
    "out of office",
    "out of office reply",
    "out of office alert",
    "out of the office",
    "abwesenheitsnotiz",
];

/// The low-weight subject fallback for responders that set no header (some Exchange and
/// Apple setups): an out-of-office tag at the very start, a whole out-of-office subject, or
/// Lotus Notes' "<name> is out of the office". Anchored, so a person's "Re: Automatic reply: …"
/// or "Out of office next week?" stays normal.
fn auto_reply_subject_rule(subject: &str) -> Option<String> {
    let normalised = normalise_subject(subject);
    let tagged = AUTO_REPLY_SUBJECT_TAGS.iter().any(|tag| {
        normalised
            .strip_prefix(tag)
            .is_some_and(|rest| rest.trim_start().starts_with([':', '：']))
    });
    let hit = tagged
        || AUTO_REPLY_SUBJECTS.contains(&normalised.as_str())
        || normalised
            .trim_end_matches('.')
            .ends_with(" is out of the office");
    hit.then(|| format!("Subject: \"{}\" (auto-reply subject)", shorten(subject)))
}

/// A null envelope sender, as the delivering MTA records it in `Return-Path`: `<>`, or
/// `<MAILER-DAEMON>` as some local delivery agents write it. Only the topmost `Return-Path`
/// counts: it is the one the final delivery added.
fn null_sender_rule(mail: &InboundMail) -> Option<String> {
    let value = mail.header("return-path")?.trim();
    let inner = value.trim_start_matches('<').trim_end_matches('>').trim();
    if inner.is_empty() {
        return Some("Return-Path: <> (null envelope sender)".to_owned());
    }
    let local = local_part(inner);
    if DAEMON_LOCAL_PARTS
        .iter()
        .any(|d| d.contains("daemon") && local.eq_ignore_ascii_case(d))
    {
        return Some(format!(
            "Return-Path: {value} (mail server envelope sender)"
        ));
    }
    None
}

/// Mailing-list and bulk-sender headers.
fn bulk_rule(mail: &InboundMail) -> Option<String> {
    for name in ["Precedence", "X-Precedence"] {
        if let Some(word) = mail
            .header_values(name)
            .map(first_word)
            .find(|w| matches!(w.as_str(), "bulk" | "junk" | "list"))
        {
            return Some(format!("{name}: {word}"));
        }
    }
    // `Feedback-ID` is left out on purpose: Amazon SES and other providers put it on
    // transactional mail too (a web shop's contact form), and bulk senders that matter set
    // `List-Unsubscribe` anyway (Gmail and Yahoo require it since 2024).
    for (name, why) in [
        ("List-Id", "mailing list, RFC 2919"),
        ("List-Unsubscribe", "mailing list or newsletter, RFC 2369"),
        ("List-Post", "mailing list, RFC 2369"),
    ] {
        if mail.has_header(name) {
            return Some(format!("{name} ({why})"));
        }
    }
    None
}

/// The media type of a `Content-Type` value, lower case, without parameters.
fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// A `Content-Type` parameter's value, lower case, without quotes.
fn parameter(content_type: &str, name: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|param| {
        let (key, value) = param.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| value.trim().trim_matches('"').to_ascii_lowercase())
    })
}

/// The part of an address before the last `@` (the whole value when there is none, as in a
/// bare `MAILER-DAEMON`).
fn local_part(address: &str) -> &str {
    let address = address.trim().trim_matches(['<', '>']);
    address.rsplit_once('@').map_or(address, |(local, _)| local)
}

/// The first word of a header value, lower case.
fn first_word(value: &str) -> String {
    value
        .split(|c: char| c.is_whitespace() || c == ';' || c == ',')
        .find(|w| !w.is_empty())
        .unwrap_or_default()
        .to_lowercase()
}

/// Lower case with runs of white space made one space, for subject matching.
fn normalise_subject(subject: &str) -> String {
    subject
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// At most 80 characters of a header value, for a rule text.
fn shorten(value: &str) -> String {
    let value = value.trim();
    if value.chars().count() <= 80 {
        value.to_owned()
    } else {
        let mut short: String = value.chars().take(77).collect();
        short.push('…');
        short
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::DEFAULT_MAX_MESSAGE_BYTES;

    /// A message from `headers` (one per line, no trailing newline needed) and `body`.
    fn mail(headers: &str, body: &str) -> InboundMail {
        let raw = format!("{}\r\n\r\n{body}", headers.trim().replace('\n', "\r\n"));
        InboundMail::parse(raw.as_bytes(), DEFAULT_MAX_MESSAGE_BYTES).expect("test mail parses")
    }

    /// A person's message with `extra` headers added.
    fn person(extra: &str) -> InboundMail {
        mail(
            &format!(
                "From: Anna Berg <anna@example.com>\nTo: support@example.net\n\
                 Subject: Printer broken\nMessage-ID: <1@example.com>\n{extra}"
            ),
            "Hello, the printer is broken.\r\n",
        )
    }

    fn class_of(m: &InboundMail) -> (MailClass, String) {
        let c = classify(m);
        (c.class, c.rule)
    }

    fn assert_class(m: &InboundMail, class: MailClass) -> String {
        let (got, rule) = class_of(m);
        assert_eq!(got, class, "rule: {rule}");
        rule
    }

    const DSN: &str = "From: Mail Delivery System <MAILER-DAEMON@mx.example.org>
To: anna@example.com
Subject: Undelivered Mail Returned to Sender
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary=\"b1\"";

    const DSN_BODY: &str = "--b1\r\nContent-Type: text/plain\r\n\r\nI'm sorry to have to inform you...\r\n\
--b1\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.org\r\n\r\n\
Final-Recipient: rfc822; nobody@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n\
--b1\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: anna@example.com\r\nSubject: Hi\r\n\r\n\
--b1--\r\n";

    #[test]
    fn person_written_mail_is_normal() {
        let m = person("");
        assert_eq!(
            classify(&m),
            Classification {
                class: MailClass::Normal,
                rule: "no rule matched".to_owned()
            }
        );
    }

    #[test]
    fn class_names_are_stable() {
        for (class, name) in [
            (MailClass::Normal, "normal"),
            (MailClass::AutoReply, "auto_reply"),
            (MailClass::Bulk, "bulk"),
            (MailClass::Bounce, "bounce"),
        ] {
            assert_eq!(class.as_str(), name);
            assert_eq!(class.to_string(), name);
            assert_eq!(
                serde_json::to_string(&class).expect("serialises"),
                format!("\"{name}\"")
            );
        }
        assert!(MailClass::Bounce.is_automatic() && MailClass::AutoReply.is_automatic());
        assert!(!MailClass::Bulk.is_automatic() && !MailClass::Normal.is_automatic());
    }

    #[test]
    fn delivery_status_report_is_a_bounce() {
        let rule = assert_class(&mail(DSN, DSN_BODY), MailClass::Bounce);
        assert_eq!(
            rule,
            "multipart/report; report-type=delivery-status (RFC 3464)"
        );
    }

    #[test]
    fn feedback_report_and_read_receipt_are_bounces() {
        let arf = mail(
            "From: staff@feedback.example.org\nSubject: Abuse report\n\
             Content-Type: multipart/report; report-type=\"feedback-report\"; boundary=b",
            "--b\r\nContent-Type: text/plain\r\n\r\nComplaint\r\n--b\r\n\
             Content-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\n\r\n--b--\r\n",
        );
        let rule = assert_class(&arf, MailClass::Bounce);
        assert!(rule.contains("feedback-report"), "{rule}");
        let mdn = mail(
            "From: anna@example.com\nSubject: Read: Printer\n\
             Content-Type: multipart/report; report-type=disposition-notification; boundary=b",
            "--b\r\nContent-Type: text/plain\r\n\r\nRead.\r\n--b\r\n\
             Content-Type: message/disposition-notification\r\n\r\nDisposition: manual-action/MDN-sent-manually; displayed\r\n\r\n--b--\r\n",
        );
        let rule = assert_class(&mdn, MailClass::Bounce);
        assert!(rule.contains("read receipt"), "{rule}");
    }

    #[test]
    fn report_parts_inside_other_multiparts_are_bounces() {
        // Hotmail-style feedback and some MTAs' DSNs come as multipart/mixed.
        for (part, word) in [
            ("message/delivery-status", "RFC 3464"),
            ("message/feedback-report", "RFC 5965"),
        ] {
            let m = mail(
                "From: reports@example.org\nSubject: Report\nContent-Type: multipart/mixed; boundary=b",
                &format!(
                    "--b\r\nContent-Type: text/plain\r\n\r\nSee below.\r\n--b\r\n\
                     Content-Type: {part}\r\n\r\nAction: failed\r\n\r\n--b--\r\n"
                ),
            );
            let rule = assert_class(&m, MailClass::Bounce);
            assert!(rule.starts_with(part) && rule.contains(word), "{rule}");
        }
    }

    #[test]
    fn a_person_forwarding_a_bounce_as_attachment_is_normal() {
        // The DSN is inside a message/rfc822 attachment: its parts belong to the attached
        // message, not to this one.
        let inner = format!("{}\r\n\r\n{DSN_BODY}", DSN.replace('\n', "\r\n"));
        let m = mail(
            "From: Anna Berg <anna@example.com>\nTo: support@example.net\n\
             Subject: Fw: Undelivered Mail Returned to Sender\n\
             Content-Type: multipart/mixed; boundary=outer",
            &format!(
                "--outer\r\nContent-Type: text/plain\r\n\r\nWhy did this bounce?\r\n\
                 --outer\r\nContent-Type: message/rfc822\r\n\r\n{inner}\r\n--outer--\r\n"
            ),
        );
        assert!(m.part_types.iter().any(|t| t == "message/rfc822"));
        assert_class(&m, MailClass::Normal);
    }

    #[test]
    fn a_person_quoting_a_bounce_is_normal() {
        let m = mail(
            "From: Anna Berg <anna@example.com>\nTo: support@example.net\n\
             Subject: Re: Undelivered Mail Returned to Sender\n\
             In-Reply-To: <x@mx.example.org>",
            "Hi, my mail to you bounced, delivery failed. See below.\r\n\r\n\
             > From: Mail Delivery System <MAILER-DAEMON@mx.example.org>\r\n\
             > Subject: Undelivered Mail Returned to Sender\r\n\
             > Return-Path: <>\r\n\
             > Auto-Submitted: auto-replied\r\n\
             > Content-Type: multipart/report; report-type=delivery-status\r\n\
             >\r\n> Final-Recipient: rfc822; support@example.net\r\n\
             > Action: failed\r\n> Status: 5.1.1\r\n",
        );
        assert_class(&m, MailClass::Normal);
        let fwd = mail(
            "From: Anna Berg <anna@example.com>\nSubject: Fwd: Returned mail: see transcript for details",
            "Begin forwarded message:\r\n\r\n> From: Mail Delivery Subsystem <MAILER-DAEMON>\r\n\
             > X-Failed-Recipients: support@example.net\r\n",
        );
        assert_class(&fwd, MailClass::Normal);
    }

    #[test]
    fn exim_failed_recipients_is_a_bounce() {
        let rule = assert_class(
            &person("X-Failed-Recipients: nobody@example.net"),
            MailClass::Bounce,
        );
        assert_eq!(rule, "X-Failed-Recipients (Exim bounce)");
    }

    #[test]
    fn null_envelope_sender_is_a_bounce() {
        let rule = assert_class(&person("Return-Path: <>"), MailClass::Bounce);
        assert_eq!(rule, "Return-Path: <> (null envelope sender)");
        assert_class(&person("Return-Path: <MAILER-DAEMON>"), MailClass::Bounce);
        // Only the topmost Return-Path counts: the one the final delivery wrote.
        assert_class(
            &person("Return-Path: <anna@example.com>\nReturn-Path: <>"),
            MailClass::Normal,
        );
    }

    #[test]
    fn mail_server_senders_are_bounces() {
        for (from, rule) in [
            ("MAILER-DAEMON@mx.example.org", "From: MAILER-DAEMON"),
            (
                "Mail Delivery Subsystem <mailer-daemon@mx.example.org>",
                "From: MAILER-DAEMON",
            ),
            ("postmaster@example.org", "From: postmaster"),
            (
                "\"Microsoft Outlook\" <Postmaster@example.onmicrosoft.com>",
                "From: postmaster",
            ),
            ("mailer-daemon", "From: MAILER-DAEMON"),
            ("<>", "From: <> (null sender)"),
        ] {
            let m = mail(&format!("From: {from}\nSubject: Notice"), "x\r\n");
            assert_eq!(class_of(&m), (MailClass::Bounce, rule.to_owned()), "{from}");
        }
        let m = mail(
            "From: Mail Delivery System <bosscat@example.org>\nSubject: Notice",
            "x\r\n",
        );
        let rule = assert_class(&m, MailClass::Bounce);
        assert_eq!(
            rule,
            "From: \"Mail Delivery System\" (mail server sender name)"
        );
    }

    #[test]
    fn mail_server_subjects_are_bounces_case_insensitively() {
        for subject in [
            "Undelivered Mail Returned to Sender",
            "Delivery Status Notification (Failure)",
            "Undeliverable: Printer broken",
            "UNDELIVERABLE: Printer broken",
            "Mail delivery failed: returning message to sender",
            "Mail delivery failed",
            "failure notice",
            "Returned mail: see transcript for details",
            "DELIVERY FAILURE: User anna not listed in Domino Directory",
            "Unzustellbar: Drucker",
            "complaint about message from 192.0.2.1",
        ] {
            let m = mail(
                &format!("From: someone@example.org\nSubject: {subject}"),
                "x\r\n",
            );
            let rule = assert_class(&m, MailClass::Bounce);
            assert!(rule.starts_with("Subject:"), "{subject}: {rule}");
        }
    }

    #[test]
    fn subjects_a_customer_might_write_are_normal() {
        for subject in [
            "Re: Undelivered Mail Returned to Sender",
            "Fwd: Undeliverable: Printer broken",
            "Delivery failure of my order 4711",
            "Delivery status?",
            "Mail delivery failed to gmail since yesterday",
            "Complaint about message from your agent",
            "Re: Automatic reply: Printer broken",
            "Out of office next week?",
            "Auto: Reparatur am Montag",
            "Auto reply not working",
            "Vacation request",
        ] {
            let m = mail(
                &format!("From: Anna <anna@example.com>\nSubject: {subject}"),
                "x\r\n",
            );
            assert_class(&m, MailClass::Normal);
        }
    }

    #[test]
    fn amazon_ses_notifications_are_bounces_but_quotes_of_them_are_not() {
        let direct = mail(
            "From: no-reply@sns.amazonaws.com\nSubject: AWS Notification Message",
            "{\"notificationType\":\"Bounce\",\"bounce\":{\"bounceType\":\"Permanent\"}}\r\n",
        );
        assert_class(&direct, MailClass::Bounce);
        let via_sns = mail(
            "From: no-reply@sns.amazonaws.com\nSubject: AWS Notification Message",
            "{\r\n  \"Type\" : \"Notification\",\r\n  \"MessageId\" : \"1\",\r\n  \
             \"Message\" : \"{\\\"notificationType\\\":\\\"Complaint\\\"}\"\r\n}\r\n",
        );
        assert_class(&via_sns, MailClass::Bounce);
        let quoted = mail(
            "From: dev@example.com\nSubject: SES trouble",
            "We get this, why?\r\n{\"notificationType\":\"Bounce\"}\r\n",
        );
        assert_class(&quoted, MailClass::Normal);
        let alarm = mail(
            "From: no-reply@sns.amazonaws.com\nSubject: ALARM: disk full",
            "{\"Type\":\"Notification\",\"Message\":\"disk full\"}\r\n",
        );
        assert_class(&alarm, MailClass::Normal);
    }

    #[test]
    fn apple_unsubscribe_request_is_a_bounce() {
        let m = person("Auto-Submitted: auto-replied\nX-Apple-Unsubscribe: true");
        let rule = assert_class(&m, MailClass::Bounce);
        assert!(rule.starts_with("X-Apple-Unsubscribe"), "{rule}");
    }

    #[test]
    fn auto_submitted_marks_automatic_mail() {
        let rule = assert_class(
            &person("Auto-Submitted: auto-replied"),
            MailClass::AutoReply,
        );
        assert_eq!(rule, "Auto-Submitted: auto-replied (RFC 3834)");
        let rule = assert_class(
            &person("Auto-Submitted: Auto-Replied; owner-email=\"anna@example.com\""),
            MailClass::AutoReply,
        );
        assert_eq!(rule, "Auto-Submitted: auto-replied (RFC 3834)");
        let rule = assert_class(
            &person("Auto-Submitted: auto-generated"),
            MailClass::AutoReply,
        );
        assert_eq!(rule, "Auto-Submitted: auto-generated (RFC 3834)");
        assert_class(
            &person("Auto-Submitted: auto-notified"),
            MailClass::AutoReply,
        );
        assert_class(&person("Auto-Submitted: no"), MailClass::Normal);
    }

    #[test]
    fn bounce_rules_win_over_auto_submitted() {
        // Sendmail DSNs say auto-generated, Postfix and Exim bounces auto-replied.
        let m = person("Auto-Submitted: auto-generated (failure)\nReturn-Path: <>");
        assert_class(&m, MailClass::Bounce);
        let m = mail(
            "From: Mail Delivery System <MAILER-DAEMON@mx.example.org>\n\
             Auto-Submitted: auto-replied\nSubject: Mail delivery failed",
            "x\r\n",
        );
        assert_eq!(
            class_of(&m),
            (MailClass::Bounce, "From: MAILER-DAEMON".to_owned())
        );
    }

    #[test]
    fn vacation_reply_with_null_sender_is_an_auto_reply() {
        // RFC 3834 responders send with a null envelope sender; their own header names them.
        let m = person("Return-Path: <>\nAuto-Submitted: auto-replied");
        assert_class(&m, MailClass::AutoReply);
        let m = mail(
            "Return-Path: <>\nFrom: Anna <anna@example.com>\nSubject: Automatic reply: Printer",
            "I am away.\r\n",
        );
        assert_class(&m, MailClass::AutoReply);
    }

    #[test]
    fn auto_responder_vendor_headers_are_auto_replies() {
        for (header, rule_start) in [
            ("X-Autoreply: yes", "X-Autoreply"),
            ("X-Autorespond: Out of office", "X-Autorespond"),
            ("X-Autoresponder: 1", "X-Autoresponder"),
            ("X-AutoReply-From: anna@example.com", "X-AutoReply-From"),
            ("X-Mail-Autoreply: yes", "X-Mail-Autoreply"),
            ("X-Autogenerated: Reply", "X-Autogenerated: Reply"),
            ("Precedence: auto_reply", "Precedence: auto_reply"),
            ("X-Precedence: auto_reply", "X-Precedence: auto_reply"),
            ("X-FC-MachineGenerated: true", "X-FC-MachineGenerated"),
            (
                "X-POST-MessageClass: 9; Autoresponder",
                "X-POST-MessageClass",
            ),
            ("Delivered-To: Autoresponder", "Delivered-To: Autoresponder"),
            ("X-Apple-Action: VACATION", "X-Apple-Action"),
        ] {
            let rule = assert_class(&person(header), MailClass::AutoReply);
            assert!(rule.starts_with(rule_start), "{header}: {rule}");
        }
        // Forwarding rules carry a person's message.
        assert_class(&person("X-Autogenerated: Forward"), MailClass::Normal);
        assert_class(&person("X-Autoreply: no"), MailClass::Normal);
    }

    #[test]
    fn auto_response_suppress_alone_is_not_automatic() {
        // Outlook and many newsletters set it on mail a person wrote.
        let m = person("X-Auto-Response-Suppress: All");
        assert_class(&m, MailClass::Normal);
        assert!(auto_response_suppressed(&m));
        assert!(auto_response_suppressed(&person(
            "X-Auto-Response-Suppress: DR, OOF, AutoReply"
        )));
        assert!(!auto_response_suppressed(&person(
            "X-Auto-Response-Suppress: DR, RN"
        )));
        assert!(!auto_response_suppressed(&person("")));
        // An Exchange inbox rule that forwards a customer's mail also sets the loop marker.
        assert_class(
            &person("X-MS-Exchange-Inbox-Rules-Loop: anna@example.com"),
            MailClass::Normal,
        );
        // Both together are Exchange's out-of-office reply.
        let m = person(
            "X-Auto-Response-Suppress: All\nX-MS-Exchange-Inbox-Rules-Loop: anna@example.com",
        );
        let rule = assert_class(&m, MailClass::AutoReply);
        assert!(rule.contains("out of office"), "{rule}");
    }

    #[test]
    fn out_of_office_subjects_are_auto_replies() {
        for subject in [
            "Automatic reply: Printer broken",
            "Auto reply: Printer broken",
            "AutoReply: Printer broken",
            "Out of Office",
            "OUT OF OFFICE: Printer broken",
            "Out of Office AutoReply: Printer broken",
            "Abwesenheitsnotiz: Drucker",
            "Automatische Antwort: Drucker",
            "Réponse automatique : Imprimante",
            "Respuesta automática: Impresora",
            "Anna Berg is out of the office.",
            "自動応答: プリンター",
        ] {
            let m = mail(
                &format!("From: Anna <anna@example.com>\nSubject: {subject}"),
                "I am away.\r\n",
            );
            let rule = assert_class(&m, MailClass::AutoReply);
            assert!(rule.ends_with("(auto-reply subject)"), "{subject}: {rule}");
        }
    }

    #[test]
    fn list_and_bulk_mail_is_bulk() {
        for (header, rule_start) in [
            ("Precedence: bulk", "Precedence: bulk"),
            ("Precedence: junk", "Precedence: junk"),
            ("Precedence: list", "Precedence: list"),
            ("X-Precedence: bulk", "X-Precedence: bulk"),
            ("List-Id: Users <users.lists.example.org>", "List-Id"),
            (
                "List-Unsubscribe: <mailto:leave@example.org>",
                "List-Unsubscribe",
            ),
            ("List-Post: <mailto:users@lists.example.org>", "List-Post"),
        ] {
            let rule = assert_class(&person(header), MailClass::Bulk);
            assert!(rule.starts_with(rule_start), "{header}: {rule}");
        }
        assert_class(&person("Precedence: first-class"), MailClass::Normal);
        // Gmail's vacation replies say Precedence: bulk too; the auto-reply header wins.
        let m = person("Precedence: bulk\nAuto-Submitted: auto-replied\nX-Autoreply: yes");
        assert_class(&m, MailClass::AutoReply);
        // A bounce from a list server is still a bounce.
        let m = mail(
            &format!("{DSN}\nList-Id: <users.lists.example.org>"),
            DSN_BODY,
        );
        assert_class(&m, MailClass::Bounce);
    }
}
