//! The desk's configuration catalogues: departments, help topics, staff, statuses and priorities.

use crate::email::EmailAddress;
use crate::ids::{DepartmentId, PriorityId, SlaId, StaffId, StatusId, TopicId};
use time::OffsetDateTime;

/// A department tickets are routed to ("Support", "Billing", …).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Department {
    /// Row id.
    pub id: DepartmentId,
    /// Display name, unique.
    pub name: String,
    /// New tickets without another rule land here.
    pub is_default: bool,
    /// When it was created.
    pub created_at: OffsetDateTime,
}

/// A help topic a customer picks when opening a ticket; it decides department and priority.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HelpTopic {
    /// Row id (osTicket's `topicId`).
    pub id: TopicId,
    /// Display name, unique.
    pub name: String,
    /// Department its tickets go to.
    pub department_id: DepartmentId,
    /// Priority its tickets get unless the request names one.
    pub priority_id: Option<PriorityId>,
    /// Inactive topics cannot be chosen for new tickets.
    pub active: bool,
    /// When it was created.
    pub created_at: OffsetDateTime,
}

/// A staff member (agent).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Staff {
    /// Row id.
    pub id: StaffId,
    /// Login name, unique.
    pub username: String,
    /// Display name.
    pub name: String,
    /// Address, unique among staff.
    pub email: EmailAddress,
    /// Primary department.
    pub department_id: DepartmentId,
    /// Inactive staff cannot be assigned or post.
    pub active: bool,
    /// When the account was created.
    pub created_at: OffsetDateTime,
}

/// Whether a status counts as open or closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatusState {
    /// Work is pending.
    Open,
    /// Work is done; the ticket may be reopened if its status allows.
    Closed,
    /// Kept for the record only.
    Archived,
}

impl StatusState {
    /// The name stored in the database and shown in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Closed => "closed",
            Self::Archived => "archived",
        }
    }

    /// Parses a stored or requested state name.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "open" => Some(Self::Open),
            "closed" => Some(Self::Closed),
            "archived" => Some(Self::Archived),
            _ => None,
        }
    }
}

/// A ticket status ("Open", "Resolved", …).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TicketStatus {
    /// Row id.
    pub id: StatusId,
    /// Display name, unique.
    pub name: String,
    /// Open, closed or archived.
    pub state: StatusState,
    /// Whether a customer message reopens a ticket in this status.
    pub allow_reopen: bool,
    /// New tickets get the default status.
    pub is_default: bool,
}

/// A ticket priority.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Priority {
    /// Row id (osTicket's `priority` / `priorityId` values).
    pub id: PriorityId,
    /// Display name ("Normal").
    pub name: String,
    /// 1 is the most urgent.
    pub urgency: i32,
    /// New tickets get the default priority unless a topic or the request says otherwise.
    pub is_default: bool,
}

/// Checked input for a new department.
#[derive(Debug, Clone)]
pub struct NewDepartment {
    /// Display name.
    pub name: String,
}

/// Checked input for a new help topic.
#[derive(Debug, Clone)]
pub struct NewTopic {
    /// Display name.
    pub name: String,
    /// Department its tickets go to.
    pub department_id: DepartmentId,
    /// Priority its tickets get.
    pub priority_id: Option<PriorityId>,
}

/// Checked input for a new staff member.
#[derive(Debug, Clone)]
pub struct NewStaff {
    /// Login name.
    pub username: String,
    /// Display name.
    pub name: String,
    /// Address.
    pub email: EmailAddress,
    /// Primary department.
    pub department_id: DepartmentId,
}

/// A service-level agreement: how long tickets under it may wait.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Sla {
    /// Row id.
    pub id: SlaId,
    /// Display name, unique.
    pub name: String,
    /// Hours a ticket may stay unanswered before it is overdue.
    pub grace_hours: i32,
    /// When it was created.
    pub created_at: OffsetDateTime,
}

/// Checked input for a new SLA.
#[derive(Debug, Clone)]
pub struct NewSla {
    /// Display name.
    pub name: String,
    /// Hours a ticket may stay unanswered.
    pub grace_hours: i32,
}

/// Checked input for a new ticket status.
#[derive(Debug, Clone)]
pub struct NewStatus {
    /// Display name.
    pub name: String,
    /// Open, closed or archived.
    pub state: StatusState,
    /// Whether a customer message reopens a ticket in this status.
    pub allow_reopen: bool,
}

/// Checked input for a new priority.
#[derive(Debug, Clone)]
pub struct NewPriority {
    /// Display name.
    pub name: String,
    /// 1 is the most urgent.
    pub urgency: i32,
}
