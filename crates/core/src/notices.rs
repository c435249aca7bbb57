//! Who is mailed about a change: the rules of notification, without IO.
//!
//! A dispatched [`Announcement`] becomes a list of [`PlannedNotice`]s, one per recipient. The
//! rules: the new-ticket autoresponse goes to the customer; a staff reply goes to the customer
//! and the collaborators; alerts go to the department's active staff and the assignee. Each
//! kind can be switched off globally or per department, the API's `"notify": false` turns a
//! change's mail off, and nothing is ever sent to the desk's own addresses or to addresses
//! that only robots read (`mailer-daemon@`, `no-reply@`, …). Automatic mail (bounces,
//! auto-replies, bulk) never causes mail: intake announces it with every notice switched off.

use crate::catalog::Staff;
use crate::email::EmailAddress;
use crate::ids::{DepartmentId, StaffId, UserId};
use crate::outbox::{Announcement, EventType};
use crate::ticket::Ticket;
use crate::user::User;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};

/// The kinds of notification mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    /// "We got your request" to the customer who opened a ticket.
    Autoresponse,
    /// A staff reply, mailed to the customer and collaborators.
    StaffReply,
    /// A new ticket, to staff.
    NewTicketAlert,
    /// A new customer message, to staff.
    NewMessageAlert,
    /// A new internal note, to staff.
    NoteAlert,
}

impl NoticeKind {
    /// Every kind.
    pub const ALL: [NoticeKind; 5] = [
        Self::Autoresponse,
        Self::StaffReply,
        Self::NewTicketAlert,
        Self::NewMessageAlert,
        Self::NoteAlert,
    ];

    /// Whether customers receive it (then replies to it are customer messages).
    pub fn to_customer(self) -> bool {
        matches!(self, Self::Autoresponse | Self::StaffReply)
    }

    /// The `Auto-Submitted` value (RFC 3834) it carries, if any: a staff reply is written by a
    /// person and carries none.
    pub fn auto_submitted(self) -> Option<&'static str> {
        match self {
            Self::Autoresponse => Some("auto-replied"),
            Self::StaffReply => None,
            Self::NewTicketAlert | Self::NewMessageAlert | Self::NoteAlert => {
                Some("auto-generated")
            }
        }
    }
}

/// Per-kind switches; `None` in a department's overrides means "as the global switch".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NoticeOverrides {
    /// New-ticket autoresponse.
    pub autoresponse: Option<bool>,
    /// Staff replies mailed to customers.
    pub staff_reply: Option<bool>,
    /// New-ticket alerts.
    pub new_ticket_alert: Option<bool>,
    /// New-message alerts.
    pub new_message_alert: Option<bool>,
    /// Internal-note alerts.
    pub note_alert: Option<bool>,
}

impl NoticeOverrides {
    fn get(&self, kind: NoticeKind) -> Option<bool> {
        match kind {
            NoticeKind::Autoresponse => self.autoresponse,
            NoticeKind::StaffReply => self.staff_reply,
            NoticeKind::NewTicketAlert => self.new_ticket_alert,
            NoticeKind::NewMessageAlert => self.new_message_alert,
            NoticeKind::NoteAlert => self.note_alert,
        }
    }
}

/// A department's own settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DepartmentNotices {
    /// Switches that differ from the global ones.
    pub switches: NoticeOverrides,
    /// The department's sender (and Reply-To) address, instead of the desk's.
    pub mail_from: Option<EmailAddress>,
}

/// The desk's notification settings (from the configuration; never global).
#[derive(Debug, Clone)]
pub struct NoticeSettings {
    /// Mail goes out at all (an SMTP server or sendmail is configured).
    pub enabled: bool,
    /// The global switches.
    pub switches: NoticeOverrides,
    /// Department settings by department name, compared case-insensitively.
    pub departments: BTreeMap<String, DepartmentNotices>,
    /// The desk's sender address.
    pub mail_from: Option<EmailAddress>,
    /// The desk's own addresses (lower case): never mailed.
    pub system_addresses: Vec<String>,
    /// At most this many autoresponses per recipient…
    pub autoresponse_limit: u32,
    /// …within this many minutes.
    pub autoresponse_window_minutes: u32,
}

impl Default for NoticeSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            switches: NoticeOverrides {
                autoresponse: Some(true),
                staff_reply: Some(true),
                new_ticket_alert: Some(true),
                new_message_alert: Some(true),
                note_alert: Some(false),
            },
            departments: BTreeMap::new(),
            mail_from: None,
            system_addresses: Vec::new(),
            autoresponse_limit: 10,
            autoresponse_window_minutes: 180,
        }
    }
}

impl NoticeSettings {
    /// Whether `kind` is on for the named department.
    pub fn is_on(&self, kind: NoticeKind, department: &str) -> bool {
        self.enabled
            && self
                .department(department)
                .and_then(|d| d.switches.get(kind))
                .or(self.switches.get(kind))
                .unwrap_or(false)
    }

    /// A department's settings, by name.
    pub fn department(&self, name: &str) -> Option<&DepartmentNotices> {
        self.departments
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name.trim()))
            .map(|(_, settings)| settings)
    }

    /// The sender for a department's mail: its own address, else the desk's.
    pub fn sender(&self, department: &str) -> Option<&EmailAddress> {
        self.department(department)
            .and_then(|d| d.mail_from.as_ref())
            .or(self.mail_from.as_ref())
    }

    /// Whether mail must never go to `address`: one of ours (configured, a sender address) or
    /// one that only robots read.
    pub fn never_mail(&self, address: &EmailAddress) -> bool {
        let key = address.key();
        self.system_addresses.contains(&key)
            || self.mail_from.as_ref().is_some_and(|own| own.key() == key)
            || self
                .departments
                .values()
                .any(|d| d.mail_from.as_ref().is_some_and(|own| own.key() == key))
            || is_robot_address(&key)
    }
}

/// Local parts that only machines read (RFC 3834 §2 and common practice): answering them
/// starts loops or feeds bounces.
pub fn is_robot_address(address: &str) -> bool {
    let local = address
        .rsplit_once('@')
        .map_or(address, |(local, _)| local)
        .to_ascii_lowercase();
    let local = local.split('+').next().unwrap_or_default();
    const ROBOTS: [&str; 13] = [
        "mailer-daemon",
        "postmaster",
        "noreply",
        "no-reply",
        "no_reply",
        "donotreply",
        "do-not-reply",
        "bounce",
        "bounces",
        "abuse",
        "listserv",
        "majordomo",
        "mailman",
    ];
    ROBOTS.contains(&local) || local.starts_with("bounce-") || local.starts_with("bounces-")
}

/// Addresses of mailing-list software (`owner-LIST@`, `LIST-request@`): never sent an
/// automatic response (RFC 3834 §2). Only a guess from the name, so people with such
/// addresses (`purchase-request@`) still get staff replies.
pub fn is_list_address(address: &str) -> bool {
    let local = address
        .rsplit_once('@')
        .map_or(address, |(local, _)| local)
        .to_ascii_lowercase();
    local.starts_with("owner-") || local.ends_with("-request") || local.ends_with("-owner")
}

/// Who receives a notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", content = "id", rename_all = "snake_case")]
pub enum Recipient {
    /// A customer (owner or collaborator).
    User(UserId),
    /// A staff member.
    Staff(StaffId),
}

/// One mail to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedNotice {
    /// What kind.
    pub kind: NoticeKind,
    /// To whom.
    pub recipient: Recipient,
    /// Their address.
    pub email: EmailAddress,
    /// Their name.
    pub name: String,
}

/// What the rules need to know about the ticket a change concerns.
#[derive(Debug, Clone)]
pub struct TicketFacts<'a> {
    /// The ticket.
    pub ticket: &'a Ticket,
    /// Its department's name.
    pub department_name: &'a str,
    /// Its owner.
    pub owner: &'a User,
    /// Its collaborators.
    pub collaborators: &'a [User],
    /// Every staff member (the rules pick the department's and the assignee).
    pub staff: &'a [Staff],
}

/// The mails a change causes, one per recipient, each recipient once. Rate limits are the
/// caller's (they need the store).
pub fn plan(
    settings: &NoticeSettings,
    announcement: &Announcement,
    facts: &TicketFacts<'_>,
) -> Vec<PlannedNotice> {
    let department = facts.department_name;
    let notices = announcement.notices;
    let mut planned = Vec::new();
    let customers = |kind: NoticeKind, with_collaborators: bool| {
        let mut people = vec![facts.owner];
        if with_collaborators {
            people.extend(facts.collaborators);
        }
        people
            .into_iter()
            .filter(|user| Some(user.id) != announcement.actor.user_id)
            .filter_map(|user| {
                user.primary_email().map(|email| PlannedNotice {
                    kind,
                    recipient: Recipient::User(user.id),
                    email: email.clone(),
                    name: user.name.clone(),
                })
            })
            .collect::<Vec<_>>()
    };
    match announcement.event {
        EventType::TicketCreated => {
            if notices.customer && settings.is_on(NoticeKind::Autoresponse, department) {
                // The opener is the actor here, and the one to answer.
                planned.extend(facts.owner.primary_email().map(|email| PlannedNotice {
                    kind: NoticeKind::Autoresponse,
                    recipient: Recipient::User(facts.owner.id),
                    email: email.clone(),
                    name: facts.owner.name.clone(),
                }));
            }
            if notices.alert && settings.is_on(NoticeKind::NewTicketAlert, department) {
                planned.extend(staff_alerts(
                    NoticeKind::NewTicketAlert,
                    announcement,
                    facts,
                ));
            }
        }
        EventType::ReplyCreated => {
            if notices.customer && settings.is_on(NoticeKind::StaffReply, department) {
                planned.extend(customers(NoticeKind::StaffReply, true));
            }
        }
        EventType::MessageCreated => {
            if notices.alert && settings.is_on(NoticeKind::NewMessageAlert, department) {
                planned.extend(staff_alerts(
                    NoticeKind::NewMessageAlert,
                    announcement,
                    facts,
                ));
            }
        }
        EventType::NoteCreated => {
            if notices.alert && settings.is_on(NoticeKind::NoteAlert, department) {
                planned.extend(staff_alerts(NoticeKind::NoteAlert, announcement, facts));
            }
        }
        EventType::TicketUpdated | EventType::StatusChanged => {}
    }
    let mut seen = HashSet::new();
    planned.retain(|notice| {
        let list =
            notice.kind == NoticeKind::Autoresponse && is_list_address(notice.email.as_str());
        !list && !settings.never_mail(&notice.email) && seen.insert(notice.email.key())
    });
    planned
}

/// The department's active staff and the assignee, except the staff member who acted.
fn staff_alerts(
    kind: NoticeKind,
    announcement: &Announcement,
    facts: &TicketFacts<'_>,
) -> Vec<PlannedNotice> {
    let department: DepartmentId = facts.ticket.department_id;
    facts
        .staff
        .iter()
        .filter(|s| s.active)
        .filter(|s| s.department_id == department || Some(s.id) == facts.ticket.assignee_id)
        .filter(|s| Some(s.id) != announcement.actor.staff_id)
        .map(|s| PlannedNotice {
            kind,
            recipient: Recipient::Staff(s.id),
            email: s.email.clone(),
            name: s.name.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Actor;
    use crate::ids::{PriorityId, StatusId, TicketId};
    use crate::outbox::NoticeSwitches;
    use crate::ticket::{Source, Subject, TicketNumber};

    fn email(raw: &str) -> EmailAddress {
        EmailAddress::parse(raw).expect("address")
    }

    fn user(id: i64, address: &str) -> User {
        let now = crate::now();
        User {
            id: UserId(id),
            name: format!("User {id}"),
            emails: vec![email(address)],
            phone: None,
            notes: None,
            organization_id: None,
            created_at: now,
            updated_at: now,
        }
    }

    fn staff(id: i64, address: &str, department: i64, active: bool) -> Staff {
        Staff {
            id: StaffId(id),
            username: format!("s{id}"),
            name: format!("Staff {id}"),
            email: email(address),
            department_id: DepartmentId(department),
            active,
            created_at: crate::now(),
        }
    }

    fn ticket(assignee: Option<i64>) -> Ticket {
        let now = crate::now();
        Ticket {
            id: TicketId(1),
            number: TicketNumber::from_stored("100200".into()),
            subject: Subject::from_stored("Printer".into()),
            user_id: UserId(1),
            department_id: DepartmentId(1),
            topic_id: None,
            status_id: StatusId(1),
            priority_id: PriorityId(2),
            source: Source::Api,
            ip: None,
            assignee_id: assignee.map(StaffId),
            is_answered: false,
            due_at: None,
            created_at: now,
            updated_at: now,
            last_message_at: None,
            last_response_at: None,
            closed_at: None,
            reopened_at: None,
        }
    }

    fn announcement(event: EventType, actor: Actor, notices: NoticeSwitches) -> Announcement {
        Announcement {
            event,
            ticket_id: TicketId(1),
            entry_id: None,
            actor,
            notices,
            data: serde_json::Value::Null,
            occurred_at: crate::now(),
            ticket: None,
        }
    }

    fn enabled() -> NoticeSettings {
        NoticeSettings {
            enabled: true,
            mail_from: Some(email("help@desk.example")),
            system_addresses: vec!["support@desk.example".into()],
            ..NoticeSettings::default()
        }
    }

    fn addresses(planned: &[PlannedNotice]) -> Vec<(NoticeKind, String)> {
        planned
            .iter()
            .map(|n| (n.kind, n.email.to_string()))
            .collect()
    }

    #[test]
    fn a_new_ticket_answers_the_customer_and_alerts_department_and_assignee() {
        let owner = user(1, "ann@example.com");
        let team = [
            staff(1, "alice@desk.example", 1, true),
            staff(2, "bob@desk.example", 2, true),
            staff(3, "carol@desk.example", 1, false),
            staff(4, "dave@desk.example", 2, true),
        ];
        let ticket = ticket(Some(4));
        let facts = TicketFacts {
            ticket: &ticket,
            department_name: "Support",
            owner: &owner,
            collaborators: &[],
            staff: &team,
        };
        let planned = plan(
            &enabled(),
            &announcement(
                EventType::TicketCreated,
                Actor {
                    user_id: Some(UserId(1)),
                    ..Actor::default()
                },
                NoticeSwitches::ALL,
            ),
            &facts,
        );
        assert_eq!(
            addresses(&planned),
            vec![
                (NoticeKind::Autoresponse, "ann@example.com".into()),
                (NoticeKind::NewTicketAlert, "alice@desk.example".into()),
                (NoticeKind::NewTicketAlert, "dave@desk.example".into()),
            ]
        );
        let quiet = plan(
            &enabled(),
            &announcement(
                EventType::TicketCreated,
                Actor::default(),
                NoticeSwitches::NONE,
            ),
            &facts,
        );
        assert!(quiet.is_empty(), "notify: false sends nothing");
        let off = plan(
            &NoticeSettings::default(),
            &announcement(
                EventType::TicketCreated,
                Actor::default(),
                NoticeSwitches::ALL,
            ),
            &facts,
        );
        assert!(off.is_empty(), "nothing without a mail server");
    }

    #[test]
    fn a_staff_reply_goes_to_owner_and_collaborators_but_never_to_robots_or_ourselves() {
        let owner = user(1, "ann@example.com");
        let collaborators = [
            user(2, "cc@example.com"),
            user(3, "support@desk.example"),
            user(4, "no-reply@shop.example"),
            user(5, "ANN@example.com"),
        ];
        let ticket = ticket(None);
        let facts = TicketFacts {
            ticket: &ticket,
            department_name: "Support",
            owner: &owner,
            collaborators: &collaborators,
            staff: &[],
        };
        let planned = plan(
            &enabled(),
            &announcement(
                EventType::ReplyCreated,
                Actor {
                    staff_id: Some(StaffId(1)),
                    ..Actor::default()
                },
                NoticeSwitches::ALL,
            ),
            &facts,
        );
        assert_eq!(
            addresses(&planned),
            vec![
                (NoticeKind::StaffReply, "ann@example.com".into()),
                (NoticeKind::StaffReply, "cc@example.com".into()),
            ]
        );
    }

    #[test]
    fn department_switches_override_global_ones_and_notes_alert_only_when_on() {
        let mut settings = enabled();
        settings.departments.insert(
            "billing".into(),
            DepartmentNotices {
                switches: NoticeOverrides {
                    autoresponse: Some(false),
                    note_alert: Some(true),
                    ..NoticeOverrides::default()
                },
                mail_from: Some(email("billing@desk.example")),
            },
        );
        assert!(!settings.is_on(NoticeKind::Autoresponse, "Billing"));
        assert!(settings.is_on(NoticeKind::Autoresponse, "Support"));
        assert!(settings.is_on(NoticeKind::NoteAlert, "BILLING"));
        assert!(!settings.is_on(NoticeKind::NoteAlert, "Support"));
        assert_eq!(
            settings.sender("Billing").map(EmailAddress::as_str),
            Some("billing@desk.example")
        );
        assert_eq!(
            settings.sender("Support").map(EmailAddress::as_str),
            Some("help@desk.example")
        );
        assert!(settings.never_mail(&email("Billing@Desk.example")));
    }

    #[test]
    fn robot_addresses() {
        for robot in [
            "MAILER-DAEMON@x.example",
            "no-reply@x.example",
            "noreply+tag@x.example",
            "postmaster@x.example",
            "bounce-123@x.example",
            "LISTSERV@lists.example",
        ] {
            assert!(is_robot_address(robot), "{robot}");
        }
        for person in [
            "ann@example.com",
            "norbert@x.example",
            "replyto@x.example",
            "purchase-request@client.example",
        ] {
            assert!(!is_robot_address(person), "{person}");
        }
        assert!(is_list_address("owner-users@lists.example"));
        assert!(is_list_address("users-request@lists.example"));
    }
}
