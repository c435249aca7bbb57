//! The words of each notification: a subject, a plain-text and an HTML template per
//! [`Notice`], rendered with [MiniJinja](https://docs.rs/minijinja) from a [`NoticeContext`].
//!
//! The builtin templates live in `templates/` beside this file and are compiled into the
//! binary. A folder of overrides may replace any of them, file by file: `{name}.subject.txt`,
//! `{name}.txt`, `{name}.html` (names from [`Notice::name`]). [`Templates::load`] compiles
//! and test-renders every template, builtin or not, so a mistake in an override — a syntax
//! error, a misspelt variable, a misspelt file name — stops the start-up with the file named
//! instead of failing each notification later.
//!
//! Rules the templates run under:
//!
//! - `.html` templates escape every value (`<` → `&lt;`, …); `entry.html`, already sanitised
//!   HTML, is written with `|safe` explicitly. `.txt` templates escape nothing.
//! - Printing a variable that does not exist is an error (MiniJinja's semi-strict mode);
//!   testing one with `{% if %}` is not, so optional values are tested before use.
//! - Block tags take the line break after them (`trim_blocks`) and the indentation before
//!   them (`lstrip_blocks`), so `{% if %}` lines leave no blank lines behind.
//! - The rendered subject is made one line: control characters (CR, LF, …) become spaces and
//!   runs of spaces one space, so a ticket subject cannot add a header to the mail.
//!
//! Customer-facing notices (autoresponse, staff reply) start with [`REPLY_MARKER`]: the text
//! part's first line, and a small grey paragraph first in the HTML part. When the customer
//! answers, [`crate::strip`] cuts the quoted copy of our mail at that marker.
//!
//! [`REPLY_MARKER`]: crate::strip::REPLY_MARKER

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Serde, Value};
use minijinja::{Environment, UndefinedBehavior};

/// A kind of notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Notice {
    /// To the customer: their ticket was opened.
    Autoresponse,
    /// To the customer: a staff member's reply.
    StaffReply,
    /// To staff: a new ticket.
    NewTicketAlert,
    /// To staff: the customer wrote on a ticket.
    NewMessageAlert,
    /// To staff: an internal note was added.
    NoteAlert,
    /// To anyone: a test that outbound mail works.
    Test,
}

impl Notice {
    /// Every notice.
    pub const ALL: [Notice; 6] = [
        Notice::Autoresponse,
        Notice::StaffReply,
        Notice::NewTicketAlert,
        Notice::NewMessageAlert,
        Notice::NoteAlert,
        Notice::Test,
    ];

    /// The name its template files start with.
    pub fn name(self) -> &'static str {
        match self {
            Notice::Autoresponse => "autoresponse",
            Notice::StaffReply => "staff_reply",
            Notice::NewTicketAlert => "new_ticket_alert",
            Notice::NewMessageAlert => "new_message_alert",
            Notice::NoteAlert => "note_alert",
            Notice::Test => "test",
        }
    }
}

/// The three templates of a notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Subject,
    Text,
    Html,
}

impl Part {
    const ALL: [Part; 3] = [Part::Subject, Part::Text, Part::Html];

    /// The template's file name; its extension also decides the escaping (`.html` only).
    fn file_name(self, notice: Notice) -> String {
        let suffix = match self {
            Part::Subject => "subject.txt",
            Part::Text => "txt",
            Part::Html => "html",
        };
        format!("{}.{suffix}", notice.name())
    }
}

/// What the templates can use.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NoticeContext {
    /// The help desk's name, as signed under mail.
    pub desk_name: String,
    /// The ticket the notice is about.
    pub ticket: TicketContext,
    /// The ticket's customer.
    pub customer: PersonContext,
    /// Who this mail goes to (the customer, or a staff member for alerts).
    pub recipient: PersonContext,
    /// The message, reply or note the notice is about, if any.
    pub entry: Option<EntryContext>,
    /// The marker line customer-facing mail starts with: [`crate::strip::REPLY_MARKER`].
    pub reply_marker: String,
}

/// A ticket, as templates show it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TicketContext {
    /// The number customers see (`482913`).
    pub number: String,
    /// The subject.
    pub subject: String,
    /// The status, as shown to people (`Open`).
    pub status: String,
    /// The department's name.
    pub department: String,
    /// The priority, as shown to people (`Normal`).
    pub priority: String,
}

/// A person: a customer or a staff member.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PersonContext {
    /// The name, possibly empty.
    pub name: String,
    /// The address.
    pub email: String,
}

/// A thread entry: a message, a reply or a note.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EntryContext {
    /// Who wrote it.
    pub author: String,
    /// A note's title, if it has one.
    pub title: Option<String>,
    /// Its plain text.
    pub text: String,
    /// Its HTML, **already sanitised**: the HTML templates write it unescaped.
    pub html: Option<String>,
}

impl NoticeContext {
    /// An example with every field filled in (an entry with a title and HTML): what
    /// [`Templates::load`] test-renders every template with, and handy for previews.
    pub fn sample() -> Self {
        Self {
            desk_name: "Example Support".to_owned(),
            ticket: TicketContext {
                number: "482913".to_owned(),
                subject: "Printer on fire".to_owned(),
                status: "Open".to_owned(),
                department: "Support".to_owned(),
                priority: "Normal".to_owned(),
            },
            customer: PersonContext {
                name: "Angry User".to_owned(),
                email: "user@example.com".to_owned(),
            },
            recipient: PersonContext {
                name: "Alice Agent".to_owned(),
                email: "alice@example.com".to_owned(),
            },
            entry: Some(EntryContext {
                author: "Alice Agent".to_owned(),
                title: Some("Called the customer".to_owned()),
                text: "The printer is no longer on fire.".to_owned(),
                html: Some("<p>The printer is <b>no longer</b> on fire.</p>".to_owned()),
            }),
            reply_marker: crate::strip::REPLY_MARKER.to_owned(),
        }
    }
}

/// A rendered notice, ready for [`super::compose::OutgoingMail`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedNotice {
    /// The subject, one line.
    pub subject: String,
    /// The plain-text part.
    pub text: String,
    /// The HTML part.
    pub html: String,
}

/// Why the templates cannot be loaded or a notice cannot be rendered. Each names the file.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// The override folder cannot be listed.
    #[error("cannot read the template folder {}: {source}", dir.display())]
    ReadDir {
        /// The folder.
        dir: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// An override cannot be read (or is not UTF-8).
    #[error("cannot read the template {}: {source}", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The override folder holds a file that is no template's name (a typo?).
    #[error(
        "{} is not a template name; the folder may hold only {{notice}}.subject.txt, \
         {{notice}}.txt and {{notice}}.html with notice one of {notices}",
        path.display()
    )]
    UnknownFile {
        /// The file.
        path: PathBuf,
        /// The notice names, comma-separated.
        notices: String,
    },
    /// A template does not compile.
    #[error("the template {file} has an error: {reason}")]
    Syntax {
        /// The file (a path for overrides, `builtin NAME` for the builtin ones).
        file: String,
        /// MiniJinja's message, with the line.
        reason: String,
    },
    /// A template fails to render (a misspelt variable, a bad filter, …).
    #[error("the template {file} cannot be rendered: {reason}")]
    Render {
        /// The file (a path for overrides, `builtin NAME` for the builtin ones).
        file: String,
        /// MiniJinja's message, with the line.
        reason: String,
    },
}

/// Where a template came from: named in errors.
#[derive(Debug, Clone)]
enum Origin {
    Builtin(String),
    File(PathBuf),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Builtin(name) => write!(f, "builtin {name}"),
            Origin::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// The compiled templates of every notice. Cheap to share (`Send + Sync`); render from many
/// tasks at once.
pub struct Templates {
    environment: Environment<'static>,
    /// Template file name → where its source came from.
    origins: BTreeMap<String, Origin>,
}

impl fmt::Debug for Templates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Templates")
            .field("overrides", &self.overrides())
            .finish_non_exhaustive()
    }
}

/// The builtin template of `file_name`.
fn builtin_source(file_name: &str) -> Option<&'static str> {
    Some(match file_name {
        "autoresponse.subject.txt" => include_str!("templates/autoresponse.subject.txt"),
        "autoresponse.txt" => include_str!("templates/autoresponse.txt"),
        "autoresponse.html" => include_str!("templates/autoresponse.html"),
        "staff_reply.subject.txt" => include_str!("templates/staff_reply.subject.txt"),
        "staff_reply.txt" => include_str!("templates/staff_reply.txt"),
        "staff_reply.html" => include_str!("templates/staff_reply.html"),
        "new_ticket_alert.subject.txt" => include_str!("templates/new_ticket_alert.subject.txt"),
        "new_ticket_alert.txt" => include_str!("templates/new_ticket_alert.txt"),
        "new_ticket_alert.html" => include_str!("templates/new_ticket_alert.html"),
        "new_message_alert.subject.txt" => {
            include_str!("templates/new_message_alert.subject.txt")
        }
        "new_message_alert.txt" => include_str!("templates/new_message_alert.txt"),
        "new_message_alert.html" => include_str!("templates/new_message_alert.html"),
        "note_alert.subject.txt" => include_str!("templates/note_alert.subject.txt"),
        "note_alert.txt" => include_str!("templates/note_alert.txt"),
        "note_alert.html" => include_str!("templates/note_alert.html"),
        "test.subject.txt" => include_str!("templates/test.subject.txt"),
        "test.txt" => include_str!("templates/test.txt"),
        "test.html" => include_str!("templates/test.html"),
        _ => return None,
    })
}

impl Templates {
    /// The builtin templates only.
    pub fn builtin() -> Self {
        // The builtin templates are part of the binary and checked by this module's tests.
        Self::load(None).expect("the builtin templates compile and render")
    }

    /// The builtin templates, replaced file by file by those in `dir` (when given). Every
    /// template is compiled and test-rendered with [`NoticeContext::sample`]; the first that
    /// fails is reported with its file. A file in `dir` that is no template's name is an
    /// error too; hidden files (`.gitkeep`, `.DS_Store`) are ignored.
    pub fn load(dir: Option<&Path>) -> Result<Self, TemplateError> {
        let mut sources: BTreeMap<String, (String, Origin)> = BTreeMap::new();
        for notice in Notice::ALL {
            for part in Part::ALL {
                let name = part.file_name(notice);
                let source = builtin_source(&name).unwrap_or_default();
                sources.insert(name.clone(), (source.to_owned(), Origin::Builtin(name)));
            }
        }
        if let Some(dir) = dir {
            read_overrides(dir, &mut sources)?;
        }

        let mut environment = Environment::new();
        environment.set_undefined_behavior(UndefinedBehavior::SemiStrict);
        let syntax = SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(|error| TemplateError::Syntax {
                file: "(template syntax settings)".to_owned(),
                reason: describe(&error),
            })?;
        environment.set_syntax(syntax);
        // The default auto-escape callback escapes templates whose name ends in `.html`
        // (ours: `{name}.html`) and nothing else (`.txt`).
        let mut origins = BTreeMap::new();
        for (name, (source, origin)) in sources {
            environment
                .add_template_owned(name.clone(), source)
                .map_err(|error| TemplateError::Syntax {
                    file: origin.to_string(),
                    reason: describe(&error),
                })?;
            origins.insert(name, origin);
        }
        let templates = Self {
            environment,
            origins,
        };
        let sample = NoticeContext::sample();
        for notice in Notice::ALL {
            templates.render(notice, &sample)?;
        }
        Ok(templates)
    }

    /// The override files in use, in name order.
    pub fn overrides(&self) -> Vec<&Path> {
        self.origins
            .values()
            .filter_map(|origin| match origin {
                Origin::File(path) => Some(path.as_path()),
                Origin::Builtin(_) => None,
            })
            .collect()
    }

    /// Renders the subject (made one line), text and HTML of `notice`.
    pub fn render(
        &self,
        notice: Notice,
        context: &NoticeContext,
    ) -> Result<RenderedNotice, TemplateError> {
        let context = Value::from(Serde(context));
        let subject = self.render_part(notice, Part::Subject, &context)?;
        Ok(RenderedNotice {
            subject: one_line(&subject),
            text: self.render_part(notice, Part::Text, &context)?,
            html: self.render_part(notice, Part::Html, &context)?,
        })
    }

    fn render_part(
        &self,
        notice: Notice,
        part: Part,
        context: &Value,
    ) -> Result<String, TemplateError> {
        let name = part.file_name(notice);
        let file = || {
            self.origins
                .get(&name)
                .map_or_else(|| name.clone(), ToString::to_string)
        };
        let template =
            self.environment
                .get_template(&name)
                .map_err(|error| TemplateError::Render {
                    file: file(),
                    reason: describe(&error),
                })?;
        template
            .render(context)
            .map_err(|error| TemplateError::Render {
                file: file(),
                reason: describe(&error),
            })
    }
}

/// Reads the overrides of `dir` into `sources`, refusing unknown file names.
fn read_overrides(
    dir: &Path,
    sources: &mut BTreeMap<String, (String, Origin)>,
) -> Result<(), TemplateError> {
    let read_dir_error = |source| TemplateError::ReadDir {
        dir: dir.to_owned(),
        source,
    };
    let mut entries = std::fs::read_dir(dir)
        .map_err(read_dir_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(read_dir_error)?;
    // Name order, so that the first error reported does not depend on the file system.
    entries.sort_by_key(|entry| entry.file_name());
    for entry in entries {
        let path = entry.path();
        let file_name = entry.file_name();
        let name = file_name.to_string_lossy();
        if name.starts_with('.') {
            continue;
        }
        if !sources.contains_key(name.as_ref()) {
            return Err(TemplateError::UnknownFile {
                path,
                notices: Notice::ALL.map(Notice::name).join(", "),
            });
        }
        let source = std::fs::read_to_string(&path).map_err(|source| TemplateError::ReadFile {
            path: path.clone(),
            source,
        })?;
        sources.insert(name.into_owned(), (source, Origin::File(path)));
    }
    Ok(())
}

/// MiniJinja's message with the line it points at (its `Display` without the debug extras).
fn describe(error: &minijinja::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        text.push_str(&format!(": {inner}"));
        source = inner.source();
    }
    text
}

/// One line: control characters (CR, LF, tab, …) become spaces, runs of spaces one space.
fn one_line(subject: &str) -> String {
    subject
        .split(|c: char| c.is_control() || c.is_whitespace())
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strip::REPLY_MARKER;

    fn context() -> NoticeContext {
        NoticeContext::sample()
    }

    #[test]
    fn every_notice_renders_with_and_without_an_entry() {
        let templates = Templates::builtin();
        assert!(templates.overrides().is_empty());
        let expected_subjects = [
            (Notice::Autoresponse, "Support Ticket Opened [#482913]"),
            (Notice::StaffReply, "Re: Printer on fire [#482913]"),
            (Notice::NewTicketAlert, "New Ticket Alert [#482913]"),
            (Notice::NewMessageAlert, "New Message Alert [#482913]"),
            (Notice::NoteAlert, "New Internal Note Alert [#482913]"),
            (Notice::Test, "Helpline test message"),
        ];
        for (notice, subject) in expected_subjects {
            let rendered = templates.render(notice, &context()).expect("renders");
            assert_eq!(rendered.subject, subject, "{notice:?}");
            assert!(!rendered.text.trim().is_empty(), "{notice:?}");
            assert!(rendered.html.contains("</html>"), "{notice:?}");
            assert!(rendered.text.contains("Example Support"), "{notice:?}");

            let mut without_entry = context();
            without_entry.entry = None;
            let rendered = templates.render(notice, &without_entry).expect("renders");
            assert_eq!(rendered.subject, subject, "{notice:?} without an entry");
            assert!(
                !rendered.text.contains("none"),
                "{notice:?}: {}",
                rendered.text
            );
        }
    }

    #[test]
    fn entries_appear_in_the_notices_about_them() {
        let templates = Templates::builtin();
        for notice in [
            Notice::StaffReply,
            Notice::NewTicketAlert,
            Notice::NewMessageAlert,
            Notice::NoteAlert,
        ] {
            let rendered = templates.render(notice, &context()).expect("renders");
            assert!(
                rendered.text.contains("The printer is no longer on fire."),
                "{notice:?}: {}",
                rendered.text
            );
            assert!(
                rendered
                    .html
                    .contains("<p>The printer is <b>no longer</b> on fire.</p>"),
                "{notice:?}: sanitised HTML is written as is:\n{}",
                rendered.html
            );
        }
        let note = templates
            .render(Notice::NoteAlert, &context())
            .expect("renders");
        assert!(note.text.contains("Called the customer"));
        assert!(note.text.contains("Alice Agent added an internal note"));

        // Without HTML the text is shown, escaped and with its line breaks kept.
        let mut plain = context();
        if let Some(entry) = plain.entry.as_mut() {
            entry.html = None;
            entry.text = "Line 1 & <2>\nLine 3".to_owned();
        }
        let reply = templates
            .render(Notice::StaffReply, &plain)
            .expect("renders");
        assert!(
            reply
                .html
                .contains("white-space: pre-wrap;\">Line 1 &amp; &lt;2&gt;\nLine 3<"),
            "{}",
            reply.html
        );
        assert!(
            reply.text.contains("Line 1 & <2>\nLine 3"),
            "{}",
            reply.text
        );
    }

    #[test]
    fn customer_facing_notices_start_with_the_reply_marker() {
        let templates = Templates::builtin();
        for notice in [Notice::Autoresponse, Notice::StaffReply] {
            let rendered = templates.render(notice, &context()).expect("renders");
            assert_eq!(
                rendered.text.lines().next(),
                Some(REPLY_MARKER),
                "{notice:?}"
            );
            let body = rendered
                .html
                .split_once("<body")
                .and_then(|(_, rest)| rest.split_once('>'))
                .map(|(_, rest)| rest.trim_start())
                .unwrap_or_default();
            assert!(
                body.starts_with(&format!(
                    "<p style=\"color: #999999; font-size: 12px; margin: 0 0 16px 0;\">{REPLY_MARKER}</p>"
                )),
                "{notice:?}: {body}"
            );
        }
        for notice in [
            Notice::NewTicketAlert,
            Notice::NewMessageAlert,
            Notice::NoteAlert,
        ] {
            let rendered = templates.render(notice, &context()).expect("renders");
            assert!(!rendered.text.contains(REPLY_MARKER), "{notice:?}");
        }
    }

    #[test]
    fn html_escapes_values_and_text_does_not() {
        let templates = Templates::builtin();
        let mut hostile = context();
        hostile.ticket.subject = "<script>alert(1)</script> & \"quotes\"".to_owned();
        hostile.customer.name = "<b>Mallory</b>".to_owned();
        if let Some(entry) = hostile.entry.as_mut() {
            entry.author = "<img src=x onerror=alert(1)>".to_owned();
        }
        for notice in [Notice::StaffReply, Notice::NewTicketAlert] {
            let rendered = templates.render(notice, &hostile).expect("renders");
            assert!(!rendered.html.contains("<script>"), "{}", rendered.html);
            assert!(!rendered.html.contains("<b>Mallory"), "{}", rendered.html);
            assert!(!rendered.html.contains("<img"), "{}", rendered.html);
            assert!(
                rendered.html.contains(
                    "&lt;script&gt;alert(1)&lt;&#x2f;script&gt; &amp; &quot;quotes&quot;"
                ),
                "{}",
                rendered.html
            );
            assert!(rendered.text.contains("<script>alert(1)</script>"));
        }
        let reply = templates
            .render(Notice::StaffReply, &hostile)
            .expect("renders");
        assert_eq!(
            reply.subject,
            "Re: <script>alert(1)</script> & \"quotes\" [#482913]"
        );
    }

    #[test]
    fn subjects_are_one_line() {
        let templates = Templates::builtin();
        let mut context = context();
        context.ticket.subject = "Broken\r\nBcc: victim@example.org\n\tagain\u{7}".to_owned();
        let rendered = templates
            .render(Notice::StaffReply, &context)
            .expect("renders");
        assert_eq!(
            rendered.subject,
            "Re: Broken Bcc: victim@example.org again [#482913]"
        );
    }

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).expect("write");
    }

    #[test]
    fn an_override_replaces_one_file_and_keeps_the_rest() {
        let dir = tempfile::tempdir().expect("dir");
        write(
            dir.path(),
            "staff_reply.txt",
            "{{ reply_marker }}\nCustom: {{ entry.text }}\n",
        );
        write(dir.path(), ".gitkeep", "");
        let templates = Templates::load(Some(dir.path())).expect("loads");
        assert_eq!(templates.overrides(), [dir.path().join("staff_reply.txt")]);
        let builtin = Templates::builtin();
        let ours = templates
            .render(Notice::StaffReply, &context())
            .expect("renders");
        let theirs = builtin
            .render(Notice::StaffReply, &context())
            .expect("renders");
        assert_eq!(
            ours.text,
            format!("{REPLY_MARKER}\nCustom: The printer is no longer on fire.")
        );
        assert_eq!(ours.subject, theirs.subject);
        assert_eq!(ours.html, theirs.html);
        for notice in Notice::ALL {
            if notice != Notice::StaffReply {
                assert_eq!(
                    templates.render(notice, &context()).expect("renders"),
                    builtin.render(notice, &context()).expect("renders")
                );
            }
        }
        // Overrides are escaped by their extension too.
        write(dir.path(), "test.html", "<p>{{ ticket.subject }}</p>");
        let mut hostile = context();
        hostile.ticket.subject = "<i>x</i>".to_owned();
        let templates = Templates::load(Some(dir.path())).expect("loads");
        let rendered = templates.render(Notice::Test, &hostile).expect("renders");
        assert_eq!(rendered.html, "<p>&lt;i&gt;x&lt;&#x2f;i&gt;</p>");
    }

    #[test]
    fn a_broken_override_is_reported_with_its_file() {
        let dir = tempfile::tempdir().expect("dir");
        write(
            dir.path(),
            "autoresponse.html",
            "<p>{% if ticket.number %}</p>",
        );
        let error = Templates::load(Some(dir.path())).expect_err("syntax error");
        assert!(matches!(error, TemplateError::Syntax { .. }), "{error:?}");
        let text = error.to_string();
        assert!(
            text.contains(&dir.path().join("autoresponse.html").display().to_string()),
            "{text}"
        );

        // Compiles, but prints a variable that does not exist.
        let dir = tempfile::tempdir().expect("dir");
        write(
            dir.path(),
            "note_alert.subject.txt",
            "Note on {{ tikcet.number }}",
        );
        let error = Templates::load(Some(dir.path())).expect_err("undefined variable");
        assert!(matches!(error, TemplateError::Render { .. }), "{error:?}");
        assert!(
            error.to_string().contains("note_alert.subject.txt"),
            "{error}"
        );

        // A misspelt file name.
        let dir = tempfile::tempdir().expect("dir");
        write(dir.path(), "staff-reply.txt", "{{ reply_marker }}");
        let error = Templates::load(Some(dir.path())).expect_err("unknown file");
        assert!(
            matches!(error, TemplateError::UnknownFile { .. }),
            "{error:?}"
        );
        let text = error.to_string();
        assert!(text.contains("staff-reply.txt"), "{text}");
        assert!(text.contains("staff_reply"), "{text}");

        // A missing folder.
        let error = Templates::load(Some(&dir.path().join("missing"))).expect_err("missing folder");
        assert!(matches!(error, TemplateError::ReadDir { .. }), "{error:?}");

        // A file that is not UTF-8.
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join("test.txt"), [0xff, 0xfe, b'x']).expect("write");
        let error = Templates::load(Some(dir.path())).expect_err("not UTF-8");
        assert!(matches!(error, TemplateError::ReadFile { .. }), "{error:?}");
        assert!(error.to_string().contains("test.txt"), "{error}");
    }

    #[test]
    fn notice_names() {
        let names: Vec<_> = Notice::ALL.map(Notice::name).to_vec();
        assert_eq!(
            names,
            [
                "autoresponse",
                "staff_reply",
                "new_ticket_alert",
                "new_message_alert",
                "note_alert",
                "test"
            ]
        );
    }
}
