//! The loop through the customer: a staff reply goes out, the customer answers quoting it the
//! way mail clients do, and [`crate::strip`] must keep only the customer's new words — else
//! every answer would copy our whole reply back onto the thread.

use super::compose::{Address, OutgoingMail, render};
use super::templates::{Notice, NoticeContext, Templates};
use crate::parse::{DEFAULT_MAX_MESSAGE_BYTES, InboundMail};
use crate::strip::{visible_html, visible_text};

const NEW_TEXT: &str = "Thanks, that fixed it! The printer works again.";
const ATTRIBUTION: &str =
    "On Mon, 6 Jan 2025 at 10:00, Example Support <support@desk.example> wrote:";

/// Our staff reply as the customer's mail client receives it (rendered, composed, parsed).
fn received_staff_reply() -> (String, String) {
    let templates = Templates::builtin();
    let mut context = NoticeContext::sample();
    if let Some(entry) = context.entry.as_mut() {
        entry.text = "Hello,\n\nwe replaced the fuser unit.\nPlease try again.".to_owned();
        entry.html = Some(
            "<p>Hello,</p><p>we replaced the <b>fuser unit</b>.<br>Please try again.</p>"
                .to_owned(),
        );
    }
    let notice = templates
        .render(Notice::StaffReply, &context)
        .expect("renders");
    let mail = OutgoingMail {
        from: Address::named("Example Support", "support@desk.example"),
        reply_to: None,
        to: vec![Address::named("Angry User", "user@example.com")],
        subject: notice.subject,
        text: notice.text,
        html: Some(notice.html),
        message_id: "<hl.1.2.abcd1234.mac@desk.example>".to_owned(),
        in_reply_to: None,
        references: Vec::new(),
        auto_submitted: None,
        extra_headers: Vec::new(),
        attachments: Vec::new(),
    };
    let raw = render(&mail).expect("composes");
    let inbound = InboundMail::parse(&raw, DEFAULT_MAX_MESSAGE_BYTES).expect("parses");
    (
        inbound.text.expect("text part"),
        inbound.html.expect("HTML part"),
    )
}

/// The inside of `<body>`: what clients put in their quote.
fn body_of(html: &str) -> &str {
    html.split_once("<body")
        .and_then(|(_, rest)| rest.split_once('>'))
        .map(|(_, rest)| rest)
        .and_then(|rest| rest.rsplit_once("</body>"))
        .map_or(html, |(inside, _)| inside)
}

fn quoted(text: &str) -> String {
    text.lines()
        .map(|line| {
            if line.is_empty() {
                ">".to_owned()
            } else {
                format!("> {line}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn html_words(html: &str) -> String {
    html2text::config::plain_no_decorate()
        .string_from_read(html.as_bytes(), 200)
        .unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn a_quoted_plain_text_reply_keeps_only_the_new_text() {
    let (ours, _) = received_staff_reply();
    let replies = [
        // Gmail, Apple Mail, Thunderbird: attribution, then the quote.
        format!("{NEW_TEXT}\n\n{ATTRIBUTION}\n\n{}\n", quoted(&ours)),
        // No blank lines, CRLF line ends.
        format!("{NEW_TEXT}\r\n{ATTRIBUTION}\r\n{}\r\n", quoted(&ours)).replace('\n', "\r\n"),
        // Only `>` quoting, no attribution.
        format!("{NEW_TEXT}\n\n{}", quoted(&ours)),
        // Outlook: an unquoted copy under "-----Original Message-----".
        format!(
            "{NEW_TEXT}\n\n-----Original Message-----\nFrom: Example Support \
             <support@desk.example>\nSent: Monday, January 6, 2025 10:00 AM\nTo: Angry User\n\
             Subject: Re: Printer on fire [#482913]\n\n{ours}\n"
        ),
        // A client that quotes nothing at all and just appends the copy: only the marker
        // tells where it starts.
        format!("{NEW_TEXT}\n\n{ours}\n"),
    ];
    for reply in replies {
        assert_eq!(visible_text(&reply), NEW_TEXT, "reply:\n{reply}");
    }
}

#[test]
fn an_html_reply_keeps_only_the_new_text() {
    let (_, ours) = received_staff_reply();
    let ours = body_of(&ours);
    let replies = [
        // Gmail.
        format!(
            "<div dir=\"ltr\">{NEW_TEXT}</div><br><div class=\"gmail_quote\"><div dir=\"ltr\" \
             class=\"gmail_attr\">On Mon, 6 Jan 2025 at 10:00, Example Support &lt;<a \
             href=\"mailto:support@desk.example\">support@desk.example</a>&gt; wrote:<br></div>\
             <blockquote class=\"gmail_quote\" style=\"margin:0px 0px 0px 0.8ex;border-left:1px \
             solid rgb(204,204,204);padding-left:1ex\">{ours}</blockquote></div>"
        ),
        // Thunderbird.
        format!(
            "<html><body><p>{NEW_TEXT}</p><div class=\"moz-cite-prefix\">On 06.01.25 10:00, \
             Example Support wrote:<br></div><blockquote type=\"cite\">{ours}</blockquote>\
             </body></html>"
        ),
        // Outlook on the web.
        format!(
            "<div>{NEW_TEXT}</div><div id=\"appendonsend\"></div><hr \
             style=\"display:inline-block;width:98%\"><div id=\"divRplyFwdMsg\" dir=\"ltr\">\
             <b>From:</b> Example Support &lt;support@desk.example&gt;<br><b>Sent:</b> Monday, \
             January 6, 2025 10:00<br><b>Subject:</b> Re: Printer on fire [#482913]</div>\
             <div>{ours}</div>"
        ),
        // A client whose quote container strip.rs does not know: only the marker cuts.
        format!("<div>{NEW_TEXT}</div><div class=\"unknown-client-quote\">{ours}</div>"),
    ];
    for reply in replies {
        let visible = visible_html(&reply);
        assert_eq!(
            html_words(&visible),
            NEW_TEXT,
            "reply:\n{reply}\nvisible:\n{visible}"
        );
    }
}
