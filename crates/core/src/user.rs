//! Customers ("users" in osTicket's words) and their addresses.

use crate::email::EmailAddress;
use crate::ids::UserId;
use time::OffsetDateTime;

/// The longest display name accepted.
pub const MAX_NAME_LEN: usize = 128;

/// A customer. One customer may have several addresses; the first one is the primary.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct User {
    /// Row id.
    pub id: UserId,
    /// Display name.
    pub name: String,
    /// Every address of this customer, primary first.
    pub emails: Vec<EmailAddress>,
    /// Phone number as given (osTicket upper-cases an `x` extension marker; so do we).
    pub phone: Option<String>,
    /// Internal notes about the customer.
    pub notes: Option<String>,
    /// When the customer was first seen.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

impl User {
    /// The address notifications go to.
    pub fn primary_email(&self) -> Option<&EmailAddress> {
        self.emails.first()
    }
}

/// Who a new ticket is for: found by address, created when new.
#[derive(Debug, Clone)]
pub struct CustomerContact {
    /// The customer's address (the lookup key).
    pub email: EmailAddress,
    /// Display name; for a new customer without one the address's local part is used.
    pub name: Option<String>,
    /// Phone, kept on a new customer.
    pub phone: Option<String>,
    /// Notes, kept on a new customer.
    pub notes: Option<String>,
}

impl CustomerContact {
    /// The name a new customer record gets.
    pub fn name_or_local_part(&self) -> String {
        match &self.name {
            Some(name) if !name.trim().is_empty() => name.trim().to_owned(),
            _ => self
                .email
                .as_str()
                .split('@')
                .next()
                .unwrap_or_default()
                .to_owned(),
        }
    }
}
