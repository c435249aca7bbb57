//! Customers ("users" in osTicket's words) and their addresses.

use crate::email::EmailAddress;
use crate::ids::{OrganizationId, UserId};
use time::OffsetDateTime;

/// The longest display name accepted.
pub const MAX_NAME_LEN: usize = 128;

/// Checks a one-line name (a person's, a note poster's): at most [`MAX_NAME_LEN`] characters,
/// no control characters. `Ok(None)` for a blank one.
pub fn check_name(raw: Option<&str>) -> Result<Option<String>, String> {
    let Some(name) = raw.map(str::trim).filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    if name.chars().count() > MAX_NAME_LEN {
        return Err(format!("is longer than {MAX_NAME_LEN} characters"));
    }
    if name.chars().any(char::is_control) {
        return Err("must be one line without control characters".into());
    }
    Ok(Some(name.to_owned()))
}

/// Checks free text kept on a customer (phone, notes): no NUL or other control characters
/// except line breaks and tabs, at most `max` characters. `Ok(None)` for a blank one.
pub fn check_text(raw: Option<&str>, max: usize) -> Result<Option<String>, String> {
    let Some(text) = raw.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    if text.chars().count() > max {
        return Err(format!("is longer than {max} characters"));
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
    {
        return Err("must not contain control characters".into());
    }
    Ok(Some(text.to_owned()))
}

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
    /// The organisation the customer belongs to.
    pub organization_id: Option<OrganizationId>,
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

/// A customer organisation (a company whose people write in).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Organization {
    /// Row id.
    pub id: OrganizationId,
    /// Display name, unique.
    pub name: String,
    /// Mail domain(s) whose senders belong to it, as the source desk kept them.
    pub domain: Option<String>,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

/// Checked input for a new organisation.
#[derive(Debug, Clone)]
pub struct NewOrganization {
    /// Display name.
    pub name: String,
    /// Mail domain(s).
    pub domain: Option<String>,
    /// Creation time (an import keeps the source's).
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
}
