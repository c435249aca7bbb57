//! Records carried over from another help desk (osTicket), and the map from the source's row
//! ids to ours. The map is what makes a re-run of an import skip what it already brought over,
//! and what lets mail threading find an imported entry by the id an old Message-ID carries.

use crate::catalog::NewStaff;
use crate::email::EmailAddress;
use crate::ids::OrganizationId;
use time::OffsetDateTime;

/// The setting that holds the imported osTicket installation's `SECRET_SALT` (given to the
/// import with `--secret-salt`), with which mail intake recognises osTicket's signed Message-IDs.
pub const OSTICKET_SECRET_SALT_SETTING: &str = "osticket.secret_salt";

/// The setting that identifies the osTicket desk this database was imported from (its help
/// desk URL and first ticket), so that `--resume` never continues from another desk: the id
/// map would take that desk's records for ones already imported.
pub const OSTICKET_SOURCE_SETTING: &str = "osticket.source";

/// The kinds of source record the id map knows. One source desk per Helpline database: the
/// map does not say which desk an id came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LegacyKind {
    /// osTicket `department.id` → `department_id`.
    Department,
    /// `help_topic.topic_id` → `topic_id`.
    Topic,
    /// `ticket_status.id` → `status_id`.
    Status,
    /// `ticket_priority.priority_id` → `priority_id`.
    Priority,
    /// `sla.id` → `sla_id`.
    Sla,
    /// `organization.id` → `organization_id`.
    Organization,
    /// `staff.staff_id` → `staff_id`.
    Staff,
    /// `user.id` → `user_id` (a duplicate user maps to the user whose address it shares).
    User,
    /// `ticket.ticket_id` → `ticket_id`.
    Ticket,
    /// `thread_entry.id` → `entry_id` (osTicket's signed Message-IDs carry this id).
    Entry,
    /// `thread_collaborator.id` → `ticket_id` (the collaborator row has no id of its own here).
    Collaborator,
    /// `thread_event.id` → `event_id`.
    Event,
    /// `api_key.id` → `api_key_id`.
    ApiKey,
}

impl LegacyKind {
    /// Every kind, in the order an import writes them.
    pub const ALL: [LegacyKind; 13] = [
        Self::Department,
        Self::Status,
        Self::Priority,
        Self::Sla,
        Self::Topic,
        Self::Organization,
        Self::Staff,
        Self::User,
        Self::Ticket,
        Self::Entry,
        Self::Collaborator,
        Self::Event,
        Self::ApiKey,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Department => "department",
            Self::Topic => "topic",
            Self::Status => "status",
            Self::Priority => "priority",
            Self::Sla => "sla",
            Self::Organization => "organization",
            Self::Staff => "staff",
            Self::User => "user",
            Self::Ticket => "ticket",
            Self::Entry => "entry",
            Self::Collaborator => "collaborator",
            Self::Event => "event",
            Self::ApiKey => "api_key",
        }
    }
}

/// A customer carried over with every address and its own timestamps.
#[derive(Debug, Clone)]
pub struct ImportedUser {
    /// Display name.
    pub name: String,
    /// Every address, primary first. May be empty: osTicket has users without an address row
    /// of their own.
    pub emails: Vec<EmailAddress>,
    /// Phone.
    pub phone: Option<String>,
    /// Internal notes.
    pub notes: Option<String>,
    /// Organisation.
    pub organization_id: Option<OrganizationId>,
    /// First seen.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

/// A staff member carried over with state, password hash and creation time.
#[derive(Debug, Clone)]
pub struct ImportedStaff {
    /// Login name, name, address, department.
    pub staff: NewStaff,
    /// Inactive staff cannot be assigned or post.
    pub active: bool,
    /// The source's password hash as stored (osTicket: PHP `password_hash` bcrypt `$2y$…`, or
    /// an older phpass/MD5 form), kept so the staff member can sign in with the old password once
    /// the web panel exists; it is replaced by Helpline's own hash at the first sign-in.
    pub password_hash: Option<String>,
    /// When the account was created.
    pub created_at: OffsetDateTime,
}
