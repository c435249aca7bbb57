//! Typed row identifiers, so a user id can never be passed where a ticket id is expected.

macro_rules! id_type {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    )*};
}

id_type! {
    /// A ticket's internal id (customers see its [`crate::ticket::TicketNumber`] instead).
    TicketId;
    /// A thread entry.
    EntryId;
    /// A customer.
    UserId;
    /// A staff member.
    StaffId;
    /// A department.
    DepartmentId;
    /// A help topic.
    TopicId;
    /// A ticket status.
    StatusId;
    /// A priority.
    PriorityId;
    /// An API key.
    ApiKeyId;
    /// An attachment (one file linked to one thread entry).
    AttachmentId;
    /// Stored file content, shared by every attachment with the same bytes.
    FileId;
    /// An audit event.
    EventId;
    /// A job in the outbox (a change to announce, a mail to send, a webhook delivery).
    JobId;
    /// A webhook endpoint.
    WebhookId;
    /// A customer organisation.
    OrganizationId;
    /// A service-level agreement.
    SlaId;
}
