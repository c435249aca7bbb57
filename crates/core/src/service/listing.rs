//! Finding tickets: filters, full-text search and stable cursor paging.

use crate::catalog::StatusState;
use crate::email::EmailAddress;
use crate::error::Error;
use crate::ids::{DepartmentId, StaffId, StatusId, TicketId, TopicId};
use crate::store::{Store, TicketQuery};
use crate::ticket::Ticket;
use crate::user::User;
use time::OffsetDateTime;

/// The most tickets one page holds.
pub const MAX_PAGE: u32 = 100;

/// Filters as a client gives them.
#[derive(Debug, Clone, Default)]
pub struct TicketFilter {
    /// Exact status.
    pub status: Option<StatusId>,
    /// Open or closed (archived counts as closed).
    pub state: Option<StatusState>,
    /// Tickets of the customer with this address.
    pub customer_email: Option<EmailAddress>,
    /// Department.
    pub department: Option<DepartmentId>,
    /// Assignee.
    pub assignee: Option<StaffId>,
    /// Help topic.
    pub topic: Option<TopicId>,
    /// Changed at or after.
    pub updated_since: Option<OffsetDateTime>,
    /// Words that must all appear in the subject or an entry body.
    pub text: Option<String>,
}

/// One page of tickets, newest first, and where the next page starts.
#[derive(Debug, Clone)]
pub struct TicketPage {
    /// The tickets.
    pub tickets: Vec<Ticket>,
    /// Pass back to get the next page; `None` on the last page.
    pub next: Option<TicketId>,
    /// The customer the listing was filtered by, as read to find their tickets.
    pub customer: Option<User>,
}

/// Lists tickets newest first. Paging goes by ticket id, so every ticket that existed when a
/// client fetched its first page is seen exactly once however many are created meanwhile (those
/// may or may not appear: on PostgreSQL a ticket can commit after one with a higher id).
pub async fn list_tickets(
    store: &dyn Store,
    filter: TicketFilter,
    before: Option<TicketId>,
    limit: u32,
) -> Result<TicketPage, Error> {
    let limit = limit.clamp(1, MAX_PAGE);
    let mut reader = store.reader().await?;
    let customer = match &filter.customer_email {
        Some(email) => match reader.user_by_email(email).await? {
            Some(user) => Some(user),
            None => {
                return Ok(TicketPage {
                    tickets: Vec::new(),
                    next: None,
                    customer: None,
                });
            }
        },
        None => None,
    };
    let text = filter
        .text
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned);
    let query = TicketQuery {
        status: filter.status,
        state: filter.state,
        customer: customer.as_ref().map(|user| user.id),
        department: filter.department,
        assignee: filter.assignee,
        topic: filter.topic,
        updated_since: filter.updated_since,
        text,
        before,
        limit: limit + 1,
    };
    let mut tickets = reader.tickets(&query).await?;
    let next = if tickets.len() > limit as usize {
        tickets.truncate(limit as usize);
        tickets.last().map(|t| t.id)
    } else {
        None
    };
    Ok(TicketPage {
        tickets,
        next,
        customer,
    })
}
