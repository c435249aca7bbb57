//! The JSON the v1 API answers with.

use helpline_core::StoreError;
use helpline_core::attachment::Attachment;
use helpline_core::catalog::{Department, HelpTopic, Priority, Staff, TicketStatus};
use helpline_core::ids::UserId;
use helpline_core::store::Reader;
use helpline_core::thread::{Author, ThreadEntry};
use helpline_core::ticket::Ticket;
use helpline_core::user::User;
use serde::Serialize;
use std::collections::HashMap;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;

/// RFC 3339 text of a time.
pub fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

fn opt_rfc3339(at: Option<OffsetDateTime>) -> Option<String> {
    at.map(rfc3339)
}

/// A catalogue entry named in a ticket.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Named {
    /// Its id.
    pub id: i64,
    /// Its name.
    pub name: String,
}

/// A ticket's status.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StatusView {
    /// Id.
    pub id: i64,
    /// Name (`Open`, `Resolved`, …).
    pub name: String,
    /// `open`, `closed` or `archived`.
    pub state: String,
    /// Whether a customer message reopens a ticket in this status.
    pub allow_reopen: bool,
}

impl From<&TicketStatus> for StatusView {
    fn from(status: &TicketStatus) -> Self {
        Self {
            id: status.id.0,
            name: status.name.clone(),
            state: status.state.as_str().to_owned(),
            allow_reopen: status.allow_reopen,
        }
    }
}

/// A customer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserView {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Addresses, primary first.
    pub emails: Vec<String>,
    /// Phone.
    pub phone: Option<String>,
    /// Internal notes.
    pub notes: Option<String>,
    /// First seen (RFC 3339).
    pub created_at: String,
    /// Last change (RFC 3339).
    pub updated_at: String,
}

impl From<&User> for UserView {
    fn from(user: &User) -> Self {
        Self {
            id: user.id.0,
            name: user.name.clone(),
            emails: user.emails.iter().map(ToString::to_string).collect(),
            phone: user.phone.clone(),
            notes: user.notes.clone(),
            created_at: rfc3339(user.created_at),
            updated_at: rfc3339(user.updated_at),
        }
    }
}

/// A customer as shown inside a ticket.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CustomerRef {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Primary address.
    pub email: Option<String>,
}

/// A staff member.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StaffView {
    /// Id.
    pub id: i64,
    /// Login name.
    pub username: String,
    /// Name.
    pub name: String,
    /// Address.
    pub email: String,
    /// Primary department id.
    pub department_id: i64,
    /// Whether they can be assigned and post.
    pub active: bool,
}

impl From<&Staff> for StaffView {
    fn from(staff: &Staff) -> Self {
        Self {
            id: staff.id.0,
            username: staff.username.clone(),
            name: staff.name.clone(),
            email: staff.email.to_string(),
            department_id: staff.department_id.0,
            active: staff.active,
        }
    }
}

/// A department.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DepartmentView {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// New tickets go here unless a topic says otherwise.
    pub is_default: bool,
}

impl From<&Department> for DepartmentView {
    fn from(d: &Department) -> Self {
        Self {
            id: d.id.0,
            name: d.name.clone(),
            is_default: d.is_default,
        }
    }
}

/// A help topic.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TopicView {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Department its tickets go to.
    pub department_id: i64,
    /// Priority its tickets get.
    pub priority_id: Option<i64>,
    /// Whether it can be chosen.
    pub active: bool,
}

impl From<&HelpTopic> for TopicView {
    fn from(t: &HelpTopic) -> Self {
        Self {
            id: t.id.0,
            name: t.name.clone(),
            department_id: t.department_id.0,
            priority_id: t.priority_id.map(|p| p.0),
            active: t.active,
        }
    }
}

/// A priority.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PriorityView {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// 1 is the most urgent.
    pub urgency: i32,
    /// New tickets get it by default.
    pub is_default: bool,
}

impl From<&Priority> for PriorityView {
    fn from(p: &Priority) -> Self {
        Self {
            id: p.id.0,
            name: p.name.clone(),
            urgency: p.urgency,
            is_default: p.is_default,
        }
    }
}

/// A ticket.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TicketView {
    /// The number people quote; the ticket's address in this API.
    pub number: String,
    /// Subject.
    pub subject: String,
    /// Current status.
    pub status: StatusView,
    /// Priority.
    pub priority: Named,
    /// Department.
    pub department: Named,
    /// Help topic.
    pub topic: Option<Named>,
    /// The customer who owns it.
    pub customer: CustomerRef,
    /// Assigned staff member.
    pub assignee: Option<Named>,
    /// `api`, `email`, `web`, `phone` or `other`.
    pub source: String,
    /// The customer's address when known.
    pub ip: Option<String>,
    /// True once staff answered the latest customer message.
    pub is_answered: bool,
    /// Due date (RFC 3339).
    pub due_at: Option<String>,
    /// Created (RFC 3339).
    pub created_at: String,
    /// Last change (RFC 3339).
    pub updated_at: String,
    /// Last customer message (RFC 3339).
    pub last_message_at: Option<String>,
    /// Last staff response (RFC 3339).
    pub last_response_at: Option<String>,
    /// Last closed (RFC 3339; cleared on reopen).
    pub closed_at: Option<String>,
    /// Last reopened (RFC 3339).
    pub reopened_at: Option<String>,
}

/// The catalogues a ticket view names, loaded once per request.
pub struct Catalog {
    statuses: HashMap<i64, TicketStatus>,
    priorities: HashMap<i64, Priority>,
    departments: HashMap<i64, Department>,
    topics: HashMap<i64, HelpTopic>,
    staff: HashMap<i64, Staff>,
    users: HashMap<i64, User>,
}

impl Catalog {
    /// Loads the catalogues.
    pub async fn load(reader: &mut dyn Reader) -> Result<Self, StoreError> {
        let lists = reader.catalog().await?;
        Ok(Self {
            statuses: lists.statuses.into_iter().map(|s| (s.id.0, s)).collect(),
            priorities: lists.priorities.into_iter().map(|p| (p.id.0, p)).collect(),
            departments: lists.departments.into_iter().map(|d| (d.id.0, d)).collect(),
            topics: lists.topics.into_iter().map(|t| (t.id.0, t)).collect(),
            staff: lists.staff.into_iter().map(|s| (s.id.0, s)).collect(),
            users: HashMap::new(),
        })
    }

    /// Takes a customer read already (with its ticket), so that rendering reads it not again.
    pub fn add_customer(&mut self, customer: User) {
        self.users.insert(customer.id.0, customer);
    }

    /// Reads the customers of `tickets` at once, so that rendering them reads none one by one.
    pub async fn load_customers(
        &mut self,
        reader: &mut dyn Reader,
        tickets: &[Ticket],
    ) -> Result<(), StoreError> {
        let missing: Vec<UserId> = tickets
            .iter()
            .map(|ticket| ticket.user_id)
            .filter(|id| !self.users.contains_key(&id.0))
            .collect();
        if !missing.is_empty() {
            for user in reader.users_by_ids(&missing).await? {
                self.users.insert(user.id.0, user);
            }
        }
        Ok(())
    }

    /// The view of `ticket` (the owner is read through `reader` once per request).
    pub async fn ticket(
        &mut self,
        reader: &mut dyn Reader,
        ticket: &Ticket,
    ) -> Result<TicketView, StoreError> {
        let owner = ticket.user_id.0;
        if !self.users.contains_key(&owner)
            && let Some(user) = reader.user(ticket.user_id).await?
        {
            self.users.insert(owner, user);
        }
        let customer = match self.users.get(&owner) {
            Some(user) => CustomerRef {
                id: owner,
                name: user.name.clone(),
                email: user.primary_email().map(ToString::to_string),
            },
            None => CustomerRef {
                id: owner,
                name: String::new(),
                email: None,
            },
        };
        let status = self
            .statuses
            .get(&ticket.status_id.0)
            .map(StatusView::from)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown status {}", ticket.status_id)))?;
        Ok(TicketView {
            number: ticket.number.to_string(),
            subject: ticket.subject.as_str().to_owned(),
            status,
            priority: named(
                ticket.priority_id.0,
                self.priorities
                    .get(&ticket.priority_id.0)
                    .map(|p| p.name.as_str()),
            ),
            department: named(
                ticket.department_id.0,
                self.departments
                    .get(&ticket.department_id.0)
                    .map(|d| d.name.as_str()),
            ),
            topic: ticket
                .topic_id
                .map(|t| named(t.0, self.topics.get(&t.0).map(|t| t.name.as_str()))),
            customer,
            assignee: ticket
                .assignee_id
                .map(|s| named(s.0, self.staff.get(&s.0).map(|s| s.name.as_str()))),
            source: ticket.source.as_str().to_owned(),
            ip: ticket.ip.map(|ip| ip.to_string()),
            is_answered: ticket.is_answered,
            due_at: opt_rfc3339(ticket.due_at),
            created_at: rfc3339(ticket.created_at),
            updated_at: rfc3339(ticket.updated_at),
            last_message_at: opt_rfc3339(ticket.last_message_at),
            last_response_at: opt_rfc3339(ticket.last_response_at),
            closed_at: opt_rfc3339(ticket.closed_at),
            reopened_at: opt_rfc3339(ticket.reopened_at),
        })
    }
}

fn named(id: i64, name: Option<&str>) -> Named {
    Named {
        id,
        name: name.unwrap_or_default().to_owned(),
    }
}

/// Loads the catalogues and renders one ticket.
pub async fn ticket_view(
    reader: &mut dyn Reader,
    ticket: &Ticket,
) -> Result<TicketView, StoreError> {
    Catalog::load(reader).await?.ticket(reader, ticket).await
}

/// Who wrote an entry.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuthorView {
    /// `user` (a customer), `staff` or `system`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The customer's or staff member's id.
    pub id: Option<i64>,
}

/// An attachment's metadata.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AttachmentView {
    /// Id.
    pub id: i64,
    /// File name.
    pub filename: String,
    /// MIME type.
    pub content_type: String,
    /// Size in bytes.
    pub size: i64,
    /// Hex SHA-256 of the content.
    pub sha256: String,
    /// Where to download it.
    pub url: String,
}

/// A thread entry.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EntryView {
    /// Id; entries are ordered by it.
    pub id: i64,
    /// `message` (customer), `response` (staff) or `note` (internal).
    pub kind: String,
    /// Who wrote it.
    pub author: AuthorView,
    /// The name shown for the author.
    pub display_name: String,
    /// Note title or first-message subject.
    pub title: Option<String>,
    /// The body (sanitised HTML when `format` is `html`).
    pub body: String,
    /// `text` or `html`.
    pub format: String,
    /// Channel.
    pub source: String,
    /// The author's address.
    pub ip: Option<String>,
    /// The API key that posted it, apart from the author (absent for mail, CLI, web).
    pub api_key_id: Option<i64>,
    /// Posted (RFC 3339).
    pub created_at: String,
    /// Files.
    pub attachments: Vec<AttachmentView>,
}

/// Renders an entry of ticket `number`.
pub fn entry_view(number: &str, entry: &ThreadEntry) -> EntryView {
    let author = match entry.author {
        Author::User(id) => AuthorView {
            kind: "user".into(),
            id: Some(id.0),
        },
        Author::Staff(id) => AuthorView {
            kind: "staff".into(),
            id: Some(id.0),
        },
        Author::System => AuthorView {
            kind: "system".into(),
            id: None,
        },
    };
    EntryView {
        id: entry.id.0,
        kind: entry.kind.as_str().to_owned(),
        author,
        display_name: entry.display_name.clone(),
        title: entry.title.clone(),
        body: link_inline_images(number, entry),
        format: entry.body.format().as_str().to_owned(),
        source: entry.source.as_str().to_owned(),
        ip: entry.ip.map(|ip| ip.to_string()),
        api_key_id: entry.api_key_id.map(|k| k.0),
        created_at: rfc3339(entry.created_at),
        attachments: entry
            .attachments
            .iter()
            .map(|a| attachment_view(number, a))
            .collect(),
    }
}

/// An HTML body with its `cid:` image references pointing at the stored attachments' download
/// URLs (mail clients send inline images as parts the HTML names by Content-ID).
fn link_inline_images(number: &str, entry: &ThreadEntry) -> String {
    let mut body = entry.body.as_str().to_owned();
    if entry.body.format() != helpline_core::body::BodyFormat::Html {
        return body;
    }
    for attachment in &entry.attachments {
        if let Some(cid) = &attachment.content_id {
            let url = format!("/api/v1/tickets/{number}/attachments/{}", attachment.id);
            body = body.replace(&format!("cid:{cid}"), &url);
        }
    }
    body
}

fn attachment_view(number: &str, attachment: &Attachment) -> AttachmentView {
    AttachmentView {
        id: attachment.id.0,
        filename: attachment.filename.clone(),
        content_type: attachment.content_type.clone(),
        size: attachment.size,
        sha256: attachment.sha256.clone(),
        url: format!("/api/v1/tickets/{number}/attachments/{}", attachment.id),
    }
}
