//! The cases. Each receives a fresh, migrated store and panics on any deviation.

pub use crate::outbox_cases::*;

use futures::future::join_all;
use helpline_core::Error;
use helpline_core::StoreError;
use helpline_core::apikey::{KeySecret, NewApiKey, Scope};
use helpline_core::attachment::NewAttachment;
use helpline_core::body::{BodyFormat, MessageBody};
use helpline_core::catalog::{
    NewDepartment, NewPriority, NewSla, NewStaff, NewStatus, NewTopic, StatusState,
};
use helpline_core::email::EmailAddress;
use helpline_core::event::{Actor, EventKind, NewEvent};
use helpline_core::ids::{
    ApiKeyId, DepartmentId, EntryId, OrganizationId, PriorityId, StaffId, StatusId, TicketId,
    TopicId, UserId,
};
use helpline_core::inbound::{InboundId, InboundOutcome, InboundRecord, InboundStatus, NewInbound};
use helpline_core::legacy::{ImportedStaff, ImportedUser, LegacyKind};
use helpline_core::mailbox::{
    AfterFetch, MailProtocol, Mailbox, MailboxAddress, MailboxId, NewMailbox,
};
use helpline_core::number::NumberFormat;
use helpline_core::service::DeskSettings;
use helpline_core::service::idempotency::{
    IdempotencyKey, IdempotencyRecord, Idempotent, StoredResponse, run_idempotent,
};
use helpline_core::service::tickets::{OpenedTicket, open_ticket, open_ticket_work};
use helpline_core::store::{CatalogLists, RowCounts, Store, TicketDraft, TicketQuery};
use helpline_core::thread::{Author, EntryFlags, EntryKind, MailIds, NewEntry, ThreadEntry};
use helpline_core::ticket::{NewTicket, NotifyOptions, Source, Subject, Ticket, TicketNumber};
use helpline_core::user::{CustomerContact, NewOrganization, Organization, User};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

fn email(raw: &str) -> EmailAddress {
    EmailAddress::parse(raw).expect("test address is valid")
}

fn contact(address: &str, name: &str) -> CustomerContact {
    CustomerContact {
        email: email(address),
        name: Some(name.to_owned()),
        phone: Some("555-0100X12".into()),
        notes: None,
    }
}

pub(crate) fn text(body: &str) -> MessageBody {
    MessageBody::parse(body, BodyFormat::Text).expect("test body is valid")
}

/// A valid new ticket for `address` (also for the outbox cases and stores' own tests).
pub fn sample_ticket(address: &str) -> NewTicket {
    new_ticket(address)
}

fn new_ticket(address: &str) -> NewTicket {
    NewTicket {
        contact: contact(address, "Test Customer"),
        subject: Subject::parse("Printer on fire").expect("subject"),
        message: text("It is on fire. Please advise."),
        topic_id: None,
        priority_id: None,
        source: Source::Api,
        ip: Some("192.0.2.10".parse().expect("ip")),
        attachments: vec![],
        notify: NotifyOptions::default(),
        mail: MailIds::default(),
        flags: EntryFlags::default(),
    }
}

/// Runs a unit of work that creates a user and returns it.
async fn create_user(store: &dyn Store, address: &str) -> helpline_core::user::User {
    let contact = contact(address, "Someone");
    store
        .write(move |tx| {
            Box::pin(async move {
                Ok(tx
                    .find_or_create_user(&contact, helpline_core::now())
                    .await?
                    .0)
            })
        })
        .await
        .expect("user created")
}

/// The installer's seed data is present and the defaults are found.
pub async fn seeded_catalogues(store: &dyn Store) {
    let mut r = store.reader().await.expect("reader");
    let departments = r.departments().await.expect("departments");
    assert_eq!(departments.len(), 1);
    assert_eq!(departments[0].name, "Support");
    assert!(departments[0].is_default);
    assert_eq!(
        r.default_department().await.expect("default").id,
        departments[0].id
    );

    let statuses = r.statuses().await.expect("statuses");
    let summary: Vec<_> = statuses
        .iter()
        .map(|s| (s.name.as_str(), s.state, s.allow_reopen))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("Open", StatusState::Open, false),
            ("Resolved", StatusState::Closed, true),
            ("Closed", StatusState::Closed, true),
            ("Archived", StatusState::Archived, false),
        ]
    );
    assert_eq!(r.default_status().await.expect("status").name, "Open");

    let priorities = r.priorities().await.expect("priorities");
    let names: Vec<_> = priorities
        .iter()
        .map(|p| (p.name.as_str(), p.urgency))
        .collect();
    assert_eq!(
        names,
        vec![("Low", 4), ("Normal", 3), ("High", 2), ("Emergency", 1)]
    );
    assert_eq!(r.default_priority().await.expect("priority").name, "Normal");
    assert_eq!(
        r.new_ticket_defaults().await.expect("defaults together"),
        helpline_core::store::NewTicketDefaults {
            department_id: r.default_department().await.expect("department").id,
            status_id: r.default_status().await.expect("status").id,
            priority_id: r.default_priority().await.expect("priority").id,
        }
    );
    assert_eq!(
        r.priority(PriorityId(3))
            .await
            .expect("lookup")
            .map(|p| p.name),
        Some("High".to_owned())
    );
    assert!(r.priority(PriorityId(99)).await.expect("lookup").is_none());

    let topics = r.topics().await.expect("topics");
    assert_eq!(topics.len(), 1);
    assert_eq!(topics[0].name, "General Inquiry");
    assert_eq!(topics[0].department_id, departments[0].id);
    assert!(topics[0].active);
    assert_eq!(
        r.topic(topics[0].id).await.expect("topic"),
        Some(topics[0].clone())
    );
    assert!(r.topic(TopicId(99)).await.expect("topic").is_none());
    assert!(r.staff().await.expect("staff").is_empty());
}

/// A ticket read with its catalogues sees every catalogue change committed before it, also
/// when an earlier read kept the catalogues (the PostgreSQL store keeps them between requests),
/// and a unit of work sees its own changes.
pub async fn ticket_views_see_catalogue_changes_at_once(store: &dyn Store) {
    let opened = open_ticket(
        store,
        &DeskSettings::default(),
        new_ticket("catalogue-reader@example.com"),
        Actor::system(),
    )
    .await
    .expect("ticket opened");
    let number = opened.ticket.number.clone();
    let customer = opened.ticket.user_id;
    // Read as a ticket's view reads them, and as a listing's does: the same.
    let read = |number: TicketNumber| async move {
        let mut r = store.reader().await.expect("reader");
        let (ticket, owner) = r
            .ticket_with_customer(&number)
            .await
            .expect("ticket")
            .expect("ticket exists");
        assert_eq!(owner.map(|c| c.id), Some(ticket.user_id));
        let first = r.catalog().await.expect("catalog");
        assert_eq!(
            r.catalog().await.expect("again"),
            first,
            "read twice, the same"
        );
        let mut r = store.reader().await.expect("reader");
        let listed = r
            .tickets(&TicketQuery {
                customer: Some(customer),
                limit: 10,
                ..TicketQuery::default()
            })
            .await
            .expect("listing");
        assert_eq!(listed.len(), 1);
        assert_eq!(
            r.catalog().await.expect("catalog"),
            first,
            "as a listing reads them"
        );
        first
    };
    let before = read(number.clone()).await;
    assert_eq!(read(number.clone()).await, before, "nothing changed");

    let (department, status) = store
        .write(|tx| {
            Box::pin(async move {
                let now = helpline_core::now();
                let department = tx
                    .insert_department(
                        &NewDepartment {
                            name: "Escalations".into(),
                        },
                        now,
                    )
                    .await?;
                let status = tx
                    .insert_status(&NewStatus {
                        name: "Waiting on vendor".into(),
                        state: StatusState::Open,
                        allow_reopen: false,
                    })
                    .await?;
                Ok((department, status))
            })
        })
        .await
        .expect("catalogue changes");
    let after = read(number.clone()).await;
    assert!(after.departments.contains(&department), "{after:?}");
    assert!(after.statuses.contains(&status), "{after:?}");
    assert_eq!(after.departments.len(), before.departments.len() + 1);

    let staff = store
        .write(move |tx| {
            Box::pin(async move {
                Ok(tx
                    .insert_staff(
                        &NewStaff {
                            username: "vera".into(),
                            name: "Vera Vendor".into(),
                            email: email("vera@example.com"),
                            department_id: department.id,
                        },
                        helpline_core::now(),
                    )
                    .await?)
            })
        })
        .await
        .expect("staff added");
    assert_eq!(read(number.clone()).await.staff, vec![staff]);

    // Inside a unit of work: its own change, not yet committed.
    let priority = store
        .write(|tx| {
            Box::pin(async move {
                let priority = tx
                    .insert_priority(&NewPriority {
                        name: "Critical".into(),
                        urgency: 1,
                    })
                    .await?;
                let lists = tx.catalog().await?;
                assert!(lists.priorities.contains(&priority), "{lists:?}");
                Ok(priority)
            })
        })
        .await
        .expect("priority added");
    assert!(read(number).await.priorities.contains(&priority));
}

/// Departments, topics and staff insert, list, look up, and refuse duplicates.
pub async fn catalogue_inserts_and_uniqueness(store: &dyn Store) {
    let (billing, topic, staff) = store
        .write(|tx| {
            Box::pin(async move {
                let now = helpline_core::now();
                let billing = tx
                    .insert_department(
                        &NewDepartment {
                            name: "Billing".into(),
                        },
                        now,
                    )
                    .await?;
                let topic = tx
                    .insert_topic(
                        &NewTopic {
                            name: "Invoices".into(),
                            department_id: billing.id,
                            priority_id: Some(PriorityId(3)),
                        },
                        now,
                    )
                    .await?;
                let staff = tx
                    .insert_staff(
                        &NewStaff {
                            username: "alice".into(),
                            name: "Alice Agent".into(),
                            email: email("Alice@Example.com"),
                            department_id: billing.id,
                        },
                        now,
                    )
                    .await?;
                Ok((billing, topic, staff))
            })
        })
        .await
        .expect("catalogue writes");

    let mut r = store.reader().await.expect("reader");
    assert_eq!(
        r.department(billing.id).await.expect("dept"),
        Some(billing.clone())
    );
    assert_eq!(r.departments().await.expect("depts").len(), 2);
    assert_eq!(r.topic(topic.id).await.expect("topic"), Some(topic.clone()));
    assert_eq!(
        r.staff_member(staff.id).await.expect("staff"),
        Some(staff.clone())
    );
    assert_eq!(r.staff().await.expect("staff"), vec![staff.clone()]);
    // The five lists read together are the five read one by one.
    assert_eq!(
        r.catalog().await.expect("catalog"),
        CatalogLists {
            statuses: r.statuses().await.expect("statuses"),
            priorities: r.priorities().await.expect("priorities"),
            departments: r.departments().await.expect("departments"),
            topics: r.topics().await.expect("topics"),
            staff: vec![staff.clone()],
        }
    );
    assert!(
        r.department(DepartmentId(999))
            .await
            .expect("dept")
            .is_none()
    );
    drop(r);

    // Same names (in another case) and the same staff address are refused by the schema.
    for attempt in 0..3 {
        let outcome = store
            .write(move |tx| {
                Box::pin(async move {
                    let now = helpline_core::now();
                    match attempt {
                        0 => tx
                            .insert_department(
                                &NewDepartment {
                                    name: "BILLING".into(),
                                },
                                now,
                            )
                            .await
                            .map(|_| ()),
                        1 => tx
                            .insert_topic(
                                &NewTopic {
                                    name: "invoices".into(),
                                    department_id: DepartmentId(1),
                                    priority_id: None,
                                },
                                now,
                            )
                            .await
                            .map(|_| ()),
                        _ => tx
                            .insert_staff(
                                &NewStaff {
                                    username: "bob".into(),
                                    name: "Bob".into(),
                                    email: email("alice@example.com"),
                                    department_id: DepartmentId(1),
                                },
                                now,
                            )
                            .await
                            .map(|_| ()),
                    }
                    .map_err(Error::from)
                })
            })
            .await;
        assert!(
            matches!(outcome, Err(Error::Store(StoreError::Constraint { .. }))),
            "duplicate #{attempt} gave {outcome:?}"
        );
    }
}

/// Finding a customer compares addresses case-insensitively and keeps the address as written.
pub async fn find_or_create_user_is_case_insensitive(store: &dyn Store) {
    let created = create_user(store, "Mixed.Case@Example.com").await;
    let (found, was_created) = store
        .write(|tx| {
            Box::pin(async move {
                Ok(tx
                    .find_or_create_user(
                        &contact("mixed.case@EXAMPLE.com", "Other Name"),
                        helpline_core::now(),
                    )
                    .await?)
            })
        })
        .await
        .expect("second lookup");
    assert!(!was_created);
    assert_eq!(found.id, created.id);
    assert_eq!(found.name, "Someone");
    assert_eq!(found.emails[0].as_str(), "Mixed.Case@Example.com");
    assert_eq!(found.phone.as_deref(), Some("555-0100X12"));

    let mut r = store.reader().await.expect("reader");
    assert_eq!(
        r.user_by_email(&email("MIXED.CASE@example.COM"))
            .await
            .expect("lookup"),
        Some(created.clone())
    );
    assert_eq!(r.user(created.id).await.expect("lookup"), Some(created));
    assert!(
        r.user_by_email(&email("nobody@example.com"))
            .await
            .expect("lookup")
            .is_none()
    );
    assert!(r.user(UserId(424_242)).await.expect("lookup").is_none());
}

/// 100 concurrent units of work for the same new address make exactly one customer.
pub async fn concurrent_find_or_create_makes_one_user(store: &dyn Store) {
    let results = join_all((0..100).map(|_| create_user(store, "race@example.com"))).await;
    let ids: HashSet<_> = results.iter().map(|u| u.id).collect();
    assert_eq!(ids.len(), 1, "one customer for one address, got {ids:?}");
    let users = store
        .reader()
        .await
        .expect("reader")
        .users(None, 100)
        .await
        .expect("users");
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].emails.len(), 1);
}

/// Customers page by id without skipping or repeating.
pub async fn users_page_by_id(store: &dyn Store) {
    for i in 0..7 {
        create_user(store, &format!("user{i}@example.com")).await;
    }
    let mut r = store.reader().await.expect("reader");
    let first = r.users(None, 3).await.expect("page 1");
    let second = r
        .users(first.last().map(|u| u.id), 3)
        .await
        .expect("page 2");
    let third = r
        .users(second.last().map(|u| u.id), 3)
        .await
        .expect("page 3");
    assert_eq!((first.len(), second.len(), third.len()), (3, 3, 1));
    let all: Vec<_> = first
        .iter()
        .chain(&second)
        .chain(&third)
        .map(|u| u.emails[0].to_string())
        .collect();
    let expected: Vec<_> = (0..7).map(|i| format!("user{i}@example.com")).collect();
    assert_eq!(all, expected);

    // Several at once: each existing one once, by id, whatever the order asked; unknown ids
    // are left out.
    let everyone: Vec<User> = first.into_iter().chain(second).chain(third).collect();
    let asked = [
        everyone[5].id,
        everyone[1].id,
        everyone[5].id,
        UserId(i64::MAX),
        everyone[3].id,
    ];
    let found = r.users_by_ids(&asked).await.expect("users by ids");
    assert_eq!(
        found,
        vec![
            everyone[1].clone(),
            everyone[3].clone(),
            everyone[5].clone()
        ]
    );
    assert!(r.users_by_ids(&[]).await.expect("no ids").is_empty());
}

/// A ticket row round-trips exactly; a taken number is reported, not an error.
pub async fn ticket_insert_round_trips_and_reports_number_collisions(store: &dyn Store) {
    let user = create_user(store, "owner@example.com").await;
    let draft = TicketDraft {
        number: TicketNumber::parse("100200").expect("number"),
        subject: Subject::parse("Quotes ' \" ; -- and ünïcödé").expect("subject"),
        user_id: user.id,
        department_id: DepartmentId(1),
        topic_id: Some(TopicId(1)),
        status_id: helpline_core::ids::StatusId(1),
        priority_id: PriorityId(2),
        source: Source::Email,
        ip: Some("2001:db8::7".parse().expect("ip")),
        created_at: helpline_core::now(),
    };
    let (first, second) = {
        let draft = draft.clone();
        store
            .write(move |tx| {
                Box::pin(async move {
                    let first = tx.insert_ticket(&draft).await?;
                    let second = tx.insert_ticket(&draft).await?;
                    Ok((first, second))
                })
            })
            .await
            .expect("ticket insert")
    };
    let first = first.expect("first insert gets the number");
    assert!(
        second.is_none(),
        "the same number twice must be reported as taken"
    );
    let mut r = store.reader().await.expect("reader");
    let by_number = r.ticket_by_number(&draft.number).await.expect("lookup");
    assert_eq!(by_number.as_ref(), Some(&first));
    assert_eq!(
        r.ticket_with_customer(&draft.number)
            .await
            .expect("ticket with customer"),
        Some((first.clone(), Some(user.clone())))
    );
    let unknown = TicketNumber::parse("999999").expect("number");
    assert_eq!(
        r.ticket_with_customer(&unknown).await.expect("unknown"),
        None
    );
    assert_eq!(
        r.ticket(first.id).await.expect("lookup"),
        Some(first.clone())
    );
    assert_eq!(first.created_at, draft.created_at);
    assert_eq!(first.last_message_at, Some(draft.created_at));
    assert!(!first.is_answered);
    assert!(
        r.ticket_by_number(&TicketNumber::parse("999999").expect("n"))
            .await
            .expect("lookup")
            .is_none()
    );
}

/// Entries come back in order with attachments; equal content is stored once.
pub async fn entries_keep_order_and_attachments_dedupe(store: &dyn Store) {
    let opened = open_ticket(
        store,
        &DeskSettings::default(),
        new_ticket("files@example.com"),
        Actor::system(),
    )
    .await
    .expect("ticket");
    let ticket_id = opened.ticket.id;
    let png = vec![0x89, b'P', b'N', b'G', 0, 1, 2, 3, 255];
    let image_bytes = png.clone();
    let entries = store
        .write(move |tx| {
            Box::pin(async move {
                let png = image_bytes;
                let now = helpline_core::now();
                let mut out = Vec::new();
                for (i, kind) in [EntryKind::Response, EntryKind::Note, EntryKind::Message]
                    .into_iter()
                    .enumerate()
                {
                    let entry = NewEntry {
                        kind,
                        author: Author::System,
                        display_name: format!("poster {i}"),
                        title: None,
                        body: MessageBody::parse(&format!("<p>body {i}</p>"), BodyFormat::Html)
                            .expect("body"),
                        source: Source::Web,
                        ip: None,
                        api_key_id: None,
                        mail: MailIds {
                            message_id: Some(format!("<m{i}@example.com>")),
                            in_reply_to: None,
                            references: None,
                        },
                        flags: EntryFlags::default(),
                        attachments: vec![
                            NewAttachment::new("pixel.png", "image/png", png.clone(), 1 << 20)
                                .expect("file"),
                            NewAttachment::new(
                                &format!("note{i}.txt"),
                                "text/plain",
                                format!("text {i}").into_bytes(),
                                1 << 20,
                            )
                            .expect("file"),
                        ],
                    };
                    out.push(tx.insert_entry(ticket_id, &entry, now).await?);
                }
                Ok(out)
            })
        })
        .await
        .expect("entries");
    let file_ids: HashSet<_> = entries.iter().map(|e| e.attachments[0].file_id).collect();
    assert_eq!(file_ids.len(), 1, "identical content is stored once");

    let mut r = store.reader().await.expect("reader");
    let stored = r.entries(ticket_id).await.expect("entries");
    assert_eq!(stored.len(), 4);
    assert_eq!(stored[0], opened.first_entry);
    assert_eq!(&stored[1..], &entries[..]);
    let kinds: Vec<_> = stored.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        vec![
            EntryKind::Message,
            EntryKind::Response,
            EntryKind::Note,
            EntryKind::Message
        ]
    );
    assert_eq!(
        stored[2].mail.message_id.as_deref(),
        Some("<m1@example.com>")
    );

    let attachment = &stored[3].attachments[1];
    let (meta, content) = r
        .attachment(attachment.id)
        .await
        .expect("attachment")
        .expect("exists");
    assert_eq!(&meta, attachment);
    assert_eq!(content, b"text 2");
    assert_eq!(meta.size, 6);
    let (_, image) = r
        .attachment(stored[1].attachments[0].id)
        .await
        .expect("attachment")
        .expect("exists");
    assert_eq!(image, png);
    assert!(
        r.attachment(helpline_core::ids::AttachmentId(987_654))
            .await
            .expect("lookup")
            .is_none()
    );
}

/// Events keep who, which key, what and when.
pub async fn events_are_recorded_per_ticket_and_system(store: &dyn Store) {
    let key = store
        .write(|tx| {
            Box::pin(async move {
                Ok(tx
                    .insert_api_key(
                        &NewApiKey {
                            secret: KeySecret::generate(),
                            ip_rules: vec!["127.0.0.1".parse().expect("rule")],
                            scopes: vec![Scope::Admin],
                            note: None,
                        },
                        helpline_core::now(),
                    )
                    .await?)
            })
        })
        .await
        .expect("key");
    let opened = open_ticket(
        store,
        &DeskSettings::default(),
        new_ticket("events@example.com"),
        Actor::api_key(key.id),
    )
    .await
    .expect("ticket");
    let ticket_id = opened.ticket.id;
    store
        .write(move |tx| {
            Box::pin(async move {
                tx.insert_event(
                    &NewEvent {
                        ticket_id: Some(ticket_id),
                        kind: EventKind::Edited,
                        actor: Actor::api_key(key.id),
                        data: r#"{"priority":[2,3]}"#.into(),
                    },
                    helpline_core::now(),
                )
                .await?;
                Ok(())
            })
        })
        .await
        .expect("event");
    let mut r = store.reader().await.expect("reader");
    let events = r.ticket_events(ticket_id).await.expect("events");
    let kinds: Vec<_> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, vec!["ticket_created", "edited"]);
    assert!(events.iter().all(|e| e.actor.api_key_id == Some(key.id)));
    assert_eq!(events[0].actor.user_id, Some(opened.ticket.user_id));
    assert_eq!(events[1].data, r#"{"priority":[2,3]}"#);
    let system = r.system_events().await.expect("events");
    assert_eq!(system.len(), 1, "the new customer is recorded once");
    assert_eq!(system[0].kind, "user_created");
}

/// Keys are found by hash only, listed, and revoked; a secret cannot be stored twice.
pub async fn api_keys_store_hashes_and_revoke(store: &dyn Store) {
    let secret = KeySecret::parse("BA00B76BAA30F62E1940B46CC1C3C73C").expect("secret");
    let new_key = NewApiKey {
        secret: secret.clone(),
        ip_rules: vec![
            "10.0.0.0/8".parse().expect("rule"),
            "192.0.2.1".parse().expect("rule"),
        ],
        scopes: vec![Scope::TicketsCreate, Scope::CronRun],
        note: Some("imported from osTicket".into()),
    };
    let stored = {
        let new_key = new_key.clone();
        store
            .write(move |tx| {
                Box::pin(
                    async move { Ok(tx.insert_api_key(&new_key, helpline_core::now()).await?) },
                )
            })
            .await
            .expect("insert")
    };
    assert_eq!(stored.prefix, "BA00B76");
    let mut r = store.reader().await.expect("reader");
    assert_eq!(
        r.api_key_by_hash(&secret.hash()).await.expect("lookup"),
        Some(stored.clone())
    );
    assert!(
        r.api_key_by_hash(secret.expose())
            .await
            .expect("lookup")
            .is_none(),
        "the raw secret is not a lookup key"
    );
    assert_eq!(r.api_keys().await.expect("list"), vec![stored.clone()]);
    drop(r);

    let duplicate = store
        .write(move |tx| {
            Box::pin(async move { Ok(tx.insert_api_key(&new_key, helpline_core::now()).await?) })
        })
        .await;
    assert!(matches!(
        duplicate,
        Err(Error::Store(StoreError::Constraint { .. }))
    ));

    let id = stored.id;
    let revoked = store
        .write(move |tx| {
            Box::pin(async move { Ok(tx.revoke_api_key(id, helpline_core::now()).await?) })
        })
        .await
        .expect("revoke")
        .expect("key exists");
    assert!(revoked.revoked_at.is_some());
    let missing = store
        .write(|tx| {
            Box::pin(async move {
                Ok(tx
                    .revoke_api_key(helpline_core::ids::ApiKeyId(777), helpline_core::now())
                    .await?)
            })
        })
        .await
        .expect("revoke");
    assert!(missing.is_none());
    let mut r = store.reader().await.expect("reader");
    assert_eq!(r.api_key(id).await.expect("lookup"), Some(revoked));
}

/// Counters start at 1 and count per name.
pub async fn sequences_count_per_name(store: &dyn Store) {
    let values = store
        .write(|tx| {
            Box::pin(async move {
                let mut values = Vec::new();
                for name in ["a", "a", "b", "a"] {
                    values.push(tx.next_sequence(name).await?);
                }
                Ok(values)
            })
        })
        .await
        .expect("sequence");
    assert_eq!(values, vec![1, 2, 1, 3]);
}

/// A unit of work that fails leaves nothing behind.
pub async fn failed_work_rolls_back_everything(store: &dyn Store) {
    let outcome: Result<(), Error> = store
        .write(|tx| {
            Box::pin(async move {
                let now = helpline_core::now();
                tx.insert_department(
                    &NewDepartment {
                        name: "Ghost".into(),
                    },
                    now,
                )
                .await?;
                tx.find_or_create_user(&contact("ghost@example.com", "Ghost"), now)
                    .await?;
                Err(Error::Conflict("changed my mind".into()))
            })
        })
        .await;
    assert!(matches!(outcome, Err(Error::Conflict(_))));
    let mut r = store.reader().await.expect("reader");
    assert_eq!(r.departments().await.expect("depts").len(), 1);
    assert!(
        r.user_by_email(&email("ghost@example.com"))
            .await
            .expect("lookup")
            .is_none()
    );
}

/// How one of [`concurrent_units_commit_or_fail_alone`]'s units ends.
#[derive(Debug, Clone, Copy, PartialEq)]
enum UnitPlan {
    /// Writes its department and succeeds.
    Commit,
    /// Writes its department, then returns an error.
    Fail,
    /// Writes its department, then breaks a uniqueness rule (the department "Shared", written
    /// before): the database refuses the statement and the unit returns that error.
    Violate,
    /// Writes its department, then panics.
    Panic,
}

/// Many units of work at once, as a store that commits them together (group commit) sees them:
/// each one that succeeds is committed and visible, each one that fails, breaks a constraint or
/// panics leaves nothing behind, and none of them affects another.
pub async fn concurrent_units_commit_or_fail_alone(store: &dyn Store) {
    use futures::FutureExt;
    use std::panic::AssertUnwindSafe;

    store
        .write(|tx| {
            Box::pin(async move {
                tx.insert_department(
                    &NewDepartment {
                        name: "Shared".into(),
                    },
                    helpline_core::now(),
                )
                .await?;
                Ok(())
            })
        })
        .await
        .expect("first department");

    let plans: Vec<UnitPlan> = (0..80)
        .map(|i| match i % 8 {
            1 => UnitPlan::Fail,
            4 => UnitPlan::Violate,
            6 if i == 38 => UnitPlan::Panic,
            _ => UnitPlan::Commit,
        })
        .collect();
    let outcomes = join_all(plans.iter().copied().enumerate().map(|(i, plan)| {
        let name = format!("Unit {i}");
        AssertUnwindSafe(store.write(move |tx| {
            Box::pin(async move {
                let now = helpline_core::now();
                let department = tx.insert_department(&NewDepartment { name }, now).await?;
                match plan {
                    UnitPlan::Commit => Ok(department.id),
                    UnitPlan::Fail => Err(Error::Conflict("changed my mind".into())),
                    UnitPlan::Violate => {
                        tx.insert_department(
                            &NewDepartment {
                                name: "Shared".into(),
                            },
                            now,
                        )
                        .await?;
                        Ok(department.id)
                    }
                    UnitPlan::Panic => panic!("a unit of work gives up"),
                }
            })
        }))
        .catch_unwind()
    }))
    .await;

    let mut committed = HashSet::new();
    for ((i, plan), outcome) in plans.iter().enumerate().zip(outcomes) {
        match (plan, outcome) {
            (UnitPlan::Commit, Ok(Ok(id))) => {
                committed.insert(id);
            }
            (UnitPlan::Fail, Ok(Err(Error::Conflict(_)))) => {}
            (UnitPlan::Violate, Ok(Err(Error::Store(StoreError::Constraint { .. })))) => {}
            // A store may answer a panicking unit with an error, or let the panic reach the
            // caller; either way nothing of it may stay.
            (UnitPlan::Panic, Ok(Err(Error::Store(_))) | Err(_)) => {}
            (plan, outcome) => panic!("unit {i} ({plan:?}) ended as {outcome:?}"),
        }
    }
    let mut r = store.reader().await.expect("reader");
    let names: HashSet<String> = r
        .departments()
        .await
        .expect("departments")
        .into_iter()
        .map(|d| {
            if d.name.starts_with("Unit ") {
                assert!(
                    committed.contains(&d.id),
                    "{} was not reported committed",
                    d.name
                );
            }
            d.name
        })
        .collect();
    for (i, plan) in plans.iter().enumerate() {
        let name = format!("Unit {i}");
        assert_eq!(
            names.contains(&name),
            *plan == UnitPlan::Commit,
            "{name} ({plan:?}) after the concurrent writes"
        );
    }
    assert_eq!(committed.len(), 59);

    // The store still takes writes afterwards.
    store
        .write(|tx| {
            Box::pin(async move {
                tx.insert_department(
                    &NewDepartment {
                        name: "After".into(),
                    },
                    helpline_core::now(),
                )
                .await?;
                Ok(())
            })
        })
        .await
        .expect("a write after the concurrent ones");
}

/// The open-ticket service stores customer, ticket, first message and events together.
pub async fn open_ticket_service_writes_ticket_entry_and_events(store: &dyn Store) {
    let mut new = new_ticket("service@example.com");
    new.topic_id = Some(TopicId(1));
    new.priority_id = Some(PriorityId(4));
    new.attachments = vec![
        NewAttachment::new("log.txt", "text/plain", b"line 1\nline 2".to_vec(), 1024)
            .expect("file"),
    ];
    let opened = open_ticket(store, &DeskSettings::default(), new, Actor::system())
        .await
        .expect("opened");
    let ticket = &opened.ticket;
    assert_eq!(ticket.number.as_str().len(), 6);
    assert!(ticket.number.as_str().chars().all(|c| c.is_ascii_digit()));
    assert_eq!(ticket.priority_id, PriorityId(4));
    assert_eq!(ticket.topic_id, Some(TopicId(1)));
    assert_eq!(ticket.department_id, DepartmentId(1));
    let mut r = store.reader().await.expect("reader");
    let entries = r.entries(ticket.id).await.expect("entries");
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].kind, EntryKind::Message);
    assert_eq!(entries[0].author, Author::User(ticket.user_id));
    assert_eq!(entries[0].display_name, "Test Customer");
    assert_eq!(entries[0].title.as_deref(), Some("Printer on fire"));
    assert_eq!(entries[0].attachments.len(), 1);
    assert_eq!(entries[0].attachments[0].filename, "log.txt");
    let user = r.user(ticket.user_id).await.expect("user").expect("exists");
    assert_eq!(user.emails[0].as_str(), "service@example.com");
}

/// Unknown topic or priority: a validation error naming both, and nothing written.
pub async fn open_ticket_with_bad_references_writes_nothing(store: &dyn Store) {
    let mut new = new_ticket("nobody-yet@example.com");
    new.topic_id = Some(TopicId(77));
    new.priority_id = Some(PriorityId(88));
    let outcome = open_ticket(store, &DeskSettings::default(), new, Actor::system()).await;
    let Err(Error::Validation(fields)) = outcome else {
        panic!("expected a validation error, got {outcome:?}");
    };
    let names: Vec<_> = fields.iter().map(|f| f.field.as_str()).collect();
    assert_eq!(names, vec!["topic_id", "priority_id"]);
    let mut r = store.reader().await.expect("reader");
    assert!(r.users(None, 10).await.expect("users").is_empty());
    assert!(r.system_events().await.expect("events").is_empty());
}

/// Sequential numbering follows the pattern and counts up.
pub async fn sequential_ticket_numbers(store: &dyn Store) {
    let settings = DeskSettings {
        number_format: NumberFormat::Sequential("HD-####".parse().expect("pattern")),
        ..DeskSettings::default()
    };
    let mut numbers = Vec::new();
    for i in 0..3 {
        let opened = open_ticket(
            store,
            &settings,
            new_ticket(&format!("seq{i}@example.com")),
            Actor::system(),
        )
        .await
        .expect("opened");
        numbers.push(opened.ticket.number.to_string());
    }
    assert_eq!(numbers, vec!["HD-0001", "HD-0002", "HD-0003"]);
}

/// Concurrent creation in a small number space still yields unique numbers.
pub async fn concurrent_ticket_creation_keeps_numbers_unique(store: &dyn Store) {
    let settings = Arc::new(DeskSettings {
        number_format: NumberFormat::Random("###".parse().expect("pattern")),
        ..DeskSettings::default()
    });
    let results = join_all((0..60).map(|i| {
        let settings = Arc::clone(&settings);
        async move {
            open_ticket(
                store,
                &settings,
                new_ticket(&format!("c{i}@example.com")),
                Actor::system(),
            )
            .await
        }
    }))
    .await;
    let numbers: HashSet<_> = results
        .into_iter()
        .map(|r| r.expect("opened").ticket.number.to_string())
        .collect();
    assert_eq!(numbers.len(), 60);
}

/// Collaborators are added once, listed in order, and removed.
pub async fn collaborators_are_added_once_and_removed(store: &dyn Store) {
    let opened = open_ticket(
        store,
        &DeskSettings::default(),
        new_ticket("owner-c@example.com"),
        Actor::system(),
    )
    .await
    .expect("ticket");
    let ticket = opened.ticket.id;
    let first = create_user(store, "cc1@example.com").await.id;
    let second = create_user(store, "cc2@example.com").await.id;
    let added = store
        .write(move |tx| {
            Box::pin(async move {
                let now = helpline_core::now();
                Ok(vec![
                    tx.add_collaborator(ticket, first, now).await?,
                    tx.add_collaborator(ticket, first, now).await?,
                    tx.add_collaborator(ticket, second, now).await?,
                ])
            })
        })
        .await
        .expect("added");
    assert_eq!(added, vec![true, false, true]);
    let listed: Vec<_> = store
        .reader()
        .await
        .expect("reader")
        .collaborators(ticket)
        .await
        .expect("collaborators")
        .into_iter()
        .map(|c| (c.ticket_id, c.user_id))
        .collect();
    assert_eq!(listed, vec![(ticket, first), (ticket, second)]);
    let removed = store
        .write(move |tx| {
            Box::pin(async move {
                Ok(vec![
                    tx.remove_collaborator(ticket, first).await?,
                    tx.remove_collaborator(ticket, first).await?,
                ])
            })
        })
        .await
        .expect("removed");
    assert_eq!(removed, vec![true, false]);
    let left = store
        .reader()
        .await
        .expect("reader")
        .collaborators(ticket)
        .await
        .expect("collaborators");
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].user_id, second);
}

// ---------------------------------------------------------------------------------------------
// The ticket API: status lookup, listing and search, locking and updating, idempotency keys.
// Search cases use ASCII words only: SQLite's unicode61 tokenizer folds diacritics (`cafe`
// finds `café`) while PostgreSQL's 'simple' configuration does not.
// ---------------------------------------------------------------------------------------------

/// Opens a ticket with this owner, subject and first message.
async fn open_with(store: &dyn Store, address: &str, subject: &str, message: &str) -> Ticket {
    let mut new = new_ticket(address);
    new.subject = Subject::parse(subject).expect("subject");
    new.message = text(message);
    open_ticket(store, &DeskSettings::default(), new, Actor::system())
        .await
        .expect("ticket opened")
        .ticket
}

/// Appends an entry with this body to a ticket's thread.
async fn add_entry(store: &dyn Store, ticket: TicketId, kind: EntryKind, body: &str) {
    let body = text(body);
    store
        .write(move |tx| {
            Box::pin(async move {
                tx.insert_entry(
                    ticket,
                    &NewEntry {
                        kind,
                        author: Author::System,
                        display_name: "Agent".into(),
                        title: None,
                        body,
                        source: Source::Api,
                        ip: None,
                        api_key_id: None,
                        mail: MailIds::default(),
                        flags: EntryFlags::default(),
                        attachments: vec![],
                    },
                    helpline_core::now(),
                )
                .await?;
                Ok(())
            })
        })
        .await
        .expect("entry added");
}

/// Locks a ticket, changes it with `change`, writes it back, and returns what was written.
async fn change_ticket(
    store: &dyn Store,
    number: &TicketNumber,
    change: impl FnOnce(&mut Ticket) + Send + 'static,
) -> Ticket {
    let number = number.clone();
    store
        .write(move |tx| {
            Box::pin(async move {
                let mut ticket = tx
                    .lock_ticket(&number)
                    .await?
                    .ok_or_else(|| Error::not_found(number.to_string()))?;
                change(&mut ticket);
                tx.update_ticket(&ticket).await?;
                Ok(ticket)
            })
        })
        .await
        .expect("ticket changed")
}

/// The tickets a query selects, as ids.
async fn ticket_ids(store: &dyn Store, query: &TicketQuery) -> Vec<TicketId> {
    store
        .reader()
        .await
        .expect("reader")
        .tickets(query)
        .await
        .unwrap_or_else(|e| panic!("tickets({query:?}): {e}"))
        .into_iter()
        .map(|t| t.id)
        .collect()
}

/// A query for `words` and nothing else.
fn search(words: &str) -> TicketQuery {
    TicketQuery {
        text: Some(words.to_owned()),
        limit: 100,
        ..TicketQuery::default()
    }
}

/// A new API key's id (idempotency keys belong to one).
async fn api_key_id(store: &dyn Store) -> ApiKeyId {
    store
        .write(|tx| {
            Box::pin(async move {
                let key = tx
                    .insert_api_key(
                        &NewApiKey {
                            secret: KeySecret::generate(),
                            ip_rules: vec![],
                            scopes: vec![Scope::TicketsCreate],
                            note: None,
                        },
                        helpline_core::now(),
                    )
                    .await?;
                Ok(key.id)
            })
        })
        .await
        .expect("api key")
}

fn idempotency_key(api_key_id: ApiKeyId, key: &str, request_hash: &str) -> IdempotencyKey {
    IdempotencyKey {
        api_key_id,
        key: key.to_owned(),
        request_hash: request_hash.to_owned(),
    }
}

fn response(status: u16, body: &str) -> StoredResponse {
    StoredResponse {
        status,
        body: body.to_owned(),
    }
}

/// Claims `key` in its own transaction, completing it with `answer` when the claim is granted.
async fn claim(
    store: &dyn Store,
    key: &IdempotencyKey,
    expired_before: OffsetDateTime,
    now: OffsetDateTime,
    answer: Option<StoredResponse>,
) -> Option<IdempotencyRecord> {
    let key = key.clone();
    store
        .write(move |tx| {
            Box::pin(async move {
                let existing = tx.claim_idempotency_key(&key, expired_before, now).await?;
                if existing.is_none()
                    && let Some(answer) = answer
                {
                    tx.complete_idempotency_key(&key, &answer).await?;
                }
                Ok(existing)
            })
        })
        .await
        .expect("claim")
}

/// `status(id)` finds each seeded status and nothing else.
pub async fn status_by_id(store: &dyn Store) {
    let mut r = store.reader().await.expect("reader");
    let statuses = r.statuses().await.expect("statuses");
    assert_eq!(statuses.len(), 4);
    for status in statuses {
        assert_eq!(r.status(status.id).await.expect("status"), Some(status));
    }
    assert!(r.status(StatusId(99)).await.expect("status").is_none());
}

/// Every filter alone and in combination selects exactly the tickets it should, newest first.
pub async fn tickets_filter_alone_and_combined(store: &dyn Store) {
    let (billing, invoices, alice, bob) = store
        .write(|tx| {
            Box::pin(async move {
                let now = helpline_core::now();
                let billing = tx
                    .insert_department(
                        &NewDepartment {
                            name: "Billing".into(),
                        },
                        now,
                    )
                    .await?;
                let invoices = tx
                    .insert_topic(
                        &NewTopic {
                            name: "Invoices".into(),
                            department_id: billing.id,
                            priority_id: None,
                        },
                        now,
                    )
                    .await?;
                let mut staff = Vec::new();
                for name in ["alice", "bob"] {
                    staff.push(
                        tx.insert_staff(
                            &NewStaff {
                                username: name.into(),
                                name: name.into(),
                                email: email(&format!("{name}@desk.example.com")),
                                department_id: billing.id,
                            },
                            now,
                        )
                        .await?
                        .id,
                    );
                }
                Ok((billing.id, invoices.id, staff[0], staff[1]))
            })
        })
        .await
        .expect("catalogue");

    // Twelve tickets whose attributes cycle with different periods, so that every combination
    // below selects a different, non-trivial subset.
    let base = helpline_core::now() - Duration::days(1);
    let mut all = Vec::new();
    for i in 0..12_i64 {
        let owner = if i % 2 == 0 {
            "even@example.com"
        } else {
            "odd@example.com"
        };
        let opened = open_with(store, owner, &format!("Ticket {i}"), "Details.").await;
        let changed = change_ticket(store, &opened.number, move |t| {
            t.status_id = StatusId(1 + i % 4);
            t.department_id = if i % 3 == 0 { billing } else { DepartmentId(1) };
            t.assignee_id = [None, Some(alice), Some(bob)][(i % 3) as usize];
            t.topic_id = [None, Some(TopicId(1)), Some(invoices)][((i / 2) % 3) as usize];
            t.updated_at = base + Duration::minutes(i);
        })
        .await;
        all.push(changed);
    }
    all.reverse();
    let even_owner = all[all.len() - 1].user_id;
    let odd_owner = all[all.len() - 2].user_id;
    let mut r = store.reader().await.expect("reader");
    let states: HashMap<StatusId, StatusState> = r
        .statuses()
        .await
        .expect("statuses")
        .into_iter()
        .map(|s| (s.id, s.state))
        .collect();
    drop(r);

    let everything = TicketQuery {
        limit: 100,
        ..TicketQuery::default()
    };
    let queries = vec![
        everything.clone(),
        TicketQuery {
            status: Some(StatusId(2)),
            ..everything.clone()
        },
        TicketQuery {
            state: Some(StatusState::Open),
            ..everything.clone()
        },
        TicketQuery {
            state: Some(StatusState::Closed),
            ..everything.clone()
        },
        TicketQuery {
            state: Some(StatusState::Archived),
            ..everything.clone()
        },
        TicketQuery {
            customer: Some(odd_owner),
            ..everything.clone()
        },
        TicketQuery {
            department: Some(billing),
            ..everything.clone()
        },
        TicketQuery {
            assignee: Some(alice),
            ..everything.clone()
        },
        TicketQuery {
            topic: Some(invoices),
            ..everything.clone()
        },
        TicketQuery {
            updated_since: Some(base + Duration::minutes(7)),
            ..everything.clone()
        },
        TicketQuery {
            before: Some(all[4].id),
            ..everything.clone()
        },
        TicketQuery {
            limit: 5,
            ..everything.clone()
        },
        TicketQuery {
            state: Some(StatusState::Closed),
            department: Some(billing),
            ..everything.clone()
        },
        TicketQuery {
            customer: Some(even_owner),
            assignee: Some(bob),
            topic: Some(TopicId(1)),
            ..everything.clone()
        },
        TicketQuery {
            status: Some(StatusId(1)),
            customer: Some(even_owner),
            updated_since: Some(base + Duration::minutes(3)),
            before: Some(all[0].id),
            ..everything.clone()
        },
        TicketQuery {
            state: Some(StatusState::Closed),
            customer: Some(odd_owner),
            department: Some(DepartmentId(1)),
            assignee: Some(bob),
            topic: Some(invoices),
            updated_since: Some(base),
            before: Some(all[0].id),
            limit: 1,
            ..everything.clone()
        },
        // Contradictory filters: nothing.
        TicketQuery {
            status: Some(StatusId(1)),
            state: Some(StatusState::Closed),
            ..everything.clone()
        },
    ];
    for query in &queries {
        let expected: Vec<TicketId> = all
            .iter()
            .filter(|t| query.status.is_none_or(|s| t.status_id == s))
            .filter(|t| {
                query.state.is_none_or(|wanted| {
                    let state = states[&t.status_id];
                    match wanted {
                        StatusState::Closed => state != StatusState::Open,
                        other => state == other,
                    }
                })
            })
            .filter(|t| query.customer.is_none_or(|c| t.user_id == c))
            .filter(|t| query.department.is_none_or(|d| t.department_id == d))
            .filter(|t| query.assignee.is_none_or(|a| t.assignee_id == Some(a)))
            .filter(|t| query.topic.is_none_or(|topic| t.topic_id == Some(topic)))
            .filter(|t| {
                query
                    .updated_since
                    .is_none_or(|since| t.updated_at >= since)
            })
            .filter(|t| query.before.is_none_or(|before| t.id < before))
            .take(query.limit as usize)
            .map(|t| t.id)
            .collect();
        assert_eq!(ticket_ids(store, query).await, expected, "{query:?}");
    }
    // The combinations are not vacuous.
    assert_eq!(ticket_ids(store, &queries[0]).await.len(), 12);
    assert!(!ticket_ids(store, &queries[12]).await.is_empty());
    assert!(!ticket_ids(store, &queries[13]).await.is_empty());
    assert!(!ticket_ids(store, &queries[14]).await.is_empty());
    assert!(!ticket_ids(store, &queries[15]).await.is_empty());
    assert!(ticket_ids(store, &queries[16]).await.is_empty());

    // The rows come back whole.
    let listed = store
        .reader()
        .await
        .expect("reader")
        .tickets(&everything)
        .await
        .expect("tickets");
    assert_eq!(listed, all);
}

/// `state`: open is the open statuses; closed includes archived; archived is archived only.
pub async fn tickets_state_open_closed_archived(store: &dyn Store) {
    let mut by_status = Vec::new();
    for status in 1..=4 {
        let opened = open_with(store, "states@example.com", "State", "Which state?").await;
        change_ticket(store, &opened.number, move |t| {
            t.status_id = StatusId(status)
        })
        .await;
        by_status.push(opened.id);
    }
    let [open, resolved, closed, archived] = by_status[..] else {
        unreachable!("four tickets were opened");
    };
    let state = |state| TicketQuery {
        state: Some(state),
        limit: 100,
        ..TicketQuery::default()
    };
    assert_eq!(
        ticket_ids(store, &state(StatusState::Open)).await,
        vec![open]
    );
    assert_eq!(
        ticket_ids(store, &state(StatusState::Closed)).await,
        vec![archived, closed, resolved]
    );
    assert_eq!(
        ticket_ids(store, &state(StatusState::Archived)).await,
        vec![archived]
    );
}

/// Paging with `before` and `limit` neither skips nor repeats, also while tickets are added.
pub async fn tickets_page_without_skips_or_repeats(store: &dyn Store) {
    // Newest first, with whether each is open.
    let mut known: Vec<(TicketId, bool)> = Vec::new();
    for i in 0..10 {
        let ticket = open_with(store, "pager@example.com", &format!("Page {i}"), "Body.").await;
        // Every third one closed, so a filtered listing pages over gaps in the ids.
        let open = i % 3 != 2;
        if !open {
            change_ticket(store, &ticket.number, |t| t.status_id = StatusId(3)).await;
        }
        known.insert(0, (ticket.id, open));
    }

    for state in [None, Some(StatusState::Open)] {
        let expected: Vec<TicketId> = known
            .iter()
            .filter(|(_, open)| state.is_none() || *open)
            .map(|(id, _)| *id)
            .collect();
        let mut seen = Vec::new();
        let mut before = None;
        let mut pages = 0;
        loop {
            let page = ticket_ids(
                store,
                &TicketQuery {
                    state,
                    before,
                    limit: 3,
                    ..TicketQuery::default()
                },
            )
            .await;
            if pages == 0 {
                // A ticket created mid-paging is newer than every cursor: it never shows up.
                let late = open_with(store, "pager@example.com", "Late", "Body.").await;
                known.insert(0, (late.id, true));
            }
            assert!(page.len() <= 3);
            let Some(&last) = page.last() else {
                break;
            };
            seen.extend(page);
            before = Some(last);
            pages += 1;
        }
        assert_eq!(seen, expected, "state {state:?}");
        assert_eq!(pages, expected.len().div_ceil(3));
    }
}

/// Full-text search: subject words, words in later replies, every word required, whole words
/// only, any case, combined with other filters and paging; blank text is no filter.
pub async fn tickets_full_text_search(store: &dyn Store) {
    let quarterly = open_with(
        store,
        "alpha@example.com",
        "Quarterly invoice missing",
        "Hello, where is my document?",
    )
    .await;
    add_entry(
        store,
        quarterly.id,
        EntryKind::Response,
        "We resent the paperwork yesterday.",
    )
    .await;
    let password = open_with(
        store,
        "beta@example.com",
        "Password reset",
        "I cannot log in to the portal.",
    )
    .await;
    add_entry(
        store,
        password.id,
        EntryKind::Message,
        "Now the INVOICE portal works again, thanks!",
    )
    .await;
    let question = open_with(
        store,
        "alpha@example.com",
        "Invoice question",
        "Why is the total wrong?",
    )
    .await;
    let unrelated = open_with(store, "gamma@example.com", "Printer jam", "Paper stuck.").await;

    // A word only in a subject.
    assert_eq!(
        ticket_ids(store, &search("quarterly")).await,
        vec![quarterly.id]
    );
    // A word only in a later reply's body.
    assert_eq!(
        ticket_ids(store, &search("paperwork")).await,
        vec![quarterly.id]
    );
    // Any case, subjects and replies alike; punctuation around a word does not matter.
    let invoice = vec![question.id, password.id, quarterly.id];
    assert_eq!(ticket_ids(store, &search("invoice")).await, invoice);
    assert_eq!(ticket_ids(store, &search("  InVoIcE?  ")).await, invoice);
    // Two words: both must match.
    assert_eq!(
        ticket_ids(store, &search("invoice total")).await,
        vec![question.id]
    );
    assert_eq!(
        ticket_ids(store, &search("portal INVOICE")).await,
        vec![password.id]
    );
    assert_eq!(
        ticket_ids(store, &search("invoice printer")).await,
        Vec::<TicketId>::new()
    );
    // A word that appears nowhere, and a word's prefix: nothing.
    assert!(ticket_ids(store, &search("zebra")).await.is_empty());
    assert!(ticket_ids(store, &search("invoi")).await.is_empty());
    // With other filters and paging.
    assert_eq!(
        ticket_ids(
            store,
            &TicketQuery {
                customer: Some(quarterly.user_id),
                ..search("invoice")
            }
        )
        .await,
        vec![question.id, quarterly.id]
    );
    let first = ticket_ids(
        store,
        &TicketQuery {
            limit: 2,
            ..search("invoice")
        },
    )
    .await;
    assert_eq!(first, invoice[..2]);
    let rest = ticket_ids(
        store,
        &TicketQuery {
            before: first.last().copied(),
            limit: 2,
            ..search("invoice")
        },
    )
    .await;
    assert_eq!(rest, invoice[2..]);
    // Blank text is no text filter.
    assert_eq!(
        ticket_ids(store, &search(" \t ")).await,
        vec![unrelated.id, question.id, password.id, quarterly.id]
    );
}

/// An HTML body is searched by its text: tag and attribute names and link targets are not
/// words of it; a text body is searched by every word it holds.
pub async fn markup_is_not_searched(store: &dyn Store) {
    let mut html = new_ticket("html@example.com");
    html.subject = Subject::parse("Manual").expect("subject");
    html.message = MessageBody::parse(
        r#"<p class="intro">The printer <a href="https://example.com/manual">manual</a> says&nbsp;reboot &amp; wait.</p>"#,
        BodyFormat::Html,
    )
    .expect("html body");
    let html = open_ticket(store, &DeskSettings::default(), html, Actor::system())
        .await
        .expect("ticket opened")
        .ticket;
    let plain = open_with(
        store,
        "text@example.com",
        "Markup",
        "I typed a href by hand: <a href=x>.",
    )
    .await;
    for word in ["printer", "manual", "reboot", "wait"] {
        assert_eq!(
            ticket_ids(store, &search(word)).await,
            vec![html.id],
            "{word}"
        );
    }
    assert_eq!(ticket_ids(store, &search("href")).await, vec![plain.id]);
    for word in ["intro", "https", "class", "nbsp", "amp"] {
        assert!(ticket_ids(store, &search(word)).await.is_empty(), "{word}");
    }
}

/// Search text is plain words, never query syntax: operators, quotes and SQL fail nothing and
/// mean their words only.
pub async fn tickets_full_text_hostile_input_is_plain_text(store: &dyn Store) {
    let printer = open_with(
        store,
        "hostile@example.com",
        "Printer on fire",
        "Someone typed drop table ticket into the form, near the end.",
    )
    .await;
    let other = open_with(store, "other@example.com", "Scanner", "Scanner is fine.").await;
    let hostile = [
        "\"",
        "*",
        "-x",
        "OR",
        "NEAR(a b)",
        "'; drop table ticket; --",
        "\"unbalanced",
        "printer*",
        "title:printer",
        "^printer",
        "printer OR scanner",
        "printer NOT fire",
        "(printer)",
        "a AND",
        "\\ & | ! <-> :*",
        "printer\0fire",
    ];
    for input in hostile {
        let query = search(input);
        store
            .reader()
            .await
            .expect("reader")
            .tickets(&query)
            .await
            .unwrap_or_else(|e| panic!("search {input:?} failed: {e}"));
    }
    // No words at all: nothing matches.
    assert!(ticket_ids(store, &search("\"")).await.is_empty());
    assert!(ticket_ids(store, &search("*")).await.is_empty());
    // Operators are words ("or", "not") that these tickets do not contain.
    assert!(
        ticket_ids(store, &search("printer OR scanner"))
            .await
            .is_empty()
    );
    assert!(
        ticket_ids(store, &search("printer NOT fire"))
            .await
            .is_empty()
    );
    // Punctuation around words is no syntax: these find the words themselves.
    assert_eq!(
        ticket_ids(store, &search("'; drop table ticket; --")).await,
        vec![printer.id]
    );
    assert_eq!(
        ticket_ids(store, &search("-printer")).await,
        vec![printer.id]
    );
    assert_eq!(
        ticket_ids(store, &search("(printer)")).await,
        vec![printer.id]
    );
    // And the table is still there.
    assert_eq!(
        ticket_ids(
            store,
            &TicketQuery {
                limit: 10,
                ..TicketQuery::default()
            }
        )
        .await,
        vec![other.id, printer.id]
    );
}

/// An entry too large for PostgreSQL's 1 MB tsvector (a pasted log of distinct tokens) is still
/// stored, and still found by its words near the start.
pub async fn very_large_entries_are_stored_and_searchable(store: &dyn Store) {
    let ticket = open_with(store, "logs@example.com", "Crash log", "See the reply.").await;
    let mut log = String::from("needle ");
    for i in 0..60_000_u64 {
        log.push_str(&format!("{:032x}\n", i.wrapping_mul(0x9E37_79B9_7F4A_7C15)));
    }
    assert!(log.len() > 1 << 20);
    add_entry(store, ticket.id, EntryKind::Message, &log).await;
    assert_eq!(ticket_ids(store, &search("needle")).await, vec![ticket.id]);
    let mut r = store.reader().await.expect("reader");
    let entries = r.entries(ticket.id).await.expect("entries");
    assert_eq!(entries[1].body.as_str(), log);
}

/// Locking reads the ticket; updating writes every changeable field, times to the microsecond,
/// setting and clearing optional ones.
pub async fn lock_and_update_ticket_round_trip(store: &dyn Store) {
    let opened = open_with(store, "update@example.com", "Update me", "Please.").await;
    let (billing, invoices, alice) = store
        .write(|tx| {
            Box::pin(async move {
                let now = helpline_core::now();
                let billing = tx
                    .insert_department(
                        &NewDepartment {
                            name: "Billing".into(),
                        },
                        now,
                    )
                    .await?;
                let invoices = tx
                    .insert_topic(
                        &NewTopic {
                            name: "Invoices".into(),
                            department_id: billing.id,
                            priority_id: None,
                        },
                        now,
                    )
                    .await?;
                let alice = tx
                    .insert_staff(
                        &NewStaff {
                            username: "alice".into(),
                            name: "Alice".into(),
                            email: email("alice@desk.example.com"),
                            department_id: billing.id,
                        },
                        now,
                    )
                    .await?;
                Ok((billing.id, invoices.id, alice.id))
            })
        })
        .await
        .expect("catalogue");

    let now = helpline_core::now();
    let changed = {
        let number = opened.number.clone();
        let original = opened.clone();
        store
            .write(move |tx| {
                Box::pin(async move {
                    let mut ticket = tx.lock_ticket(&number).await?.expect("ticket exists");
                    assert_eq!(ticket, original);
                    ticket.status_id = StatusId(3);
                    ticket.priority_id = PriorityId(4);
                    ticket.department_id = billing;
                    ticket.topic_id = Some(invoices);
                    ticket.assignee_id = Some(alice);
                    ticket.is_answered = true;
                    ticket.due_at = Some(now + Duration::days(3) + Duration::microseconds(1));
                    ticket.updated_at = now;
                    ticket.last_message_at = Some(now - Duration::microseconds(999_999));
                    ticket.last_response_at = Some(now + Duration::microseconds(1));
                    ticket.closed_at = Some(now + Duration::microseconds(2));
                    ticket.reopened_at = Some(now - Duration::days(2) - Duration::microseconds(7));
                    tx.update_ticket(&ticket).await?;
                    // The transaction sees its own write.
                    assert_eq!(tx.ticket(ticket.id).await?.as_ref(), Some(&ticket));
                    Ok(ticket)
                })
            })
            .await
            .expect("update")
    };
    assert_eq!(changed.number, opened.number);
    assert_eq!(changed.created_at, opened.created_at);
    let mut r = store.reader().await.expect("reader");
    assert_eq!(
        r.ticket(opened.id).await.expect("read"),
        Some(changed.clone())
    );
    assert_eq!(
        r.ticket_by_number(&opened.number).await.expect("read"),
        Some(changed.clone())
    );
    drop(r);

    let cleared = change_ticket(store, &opened.number, |t| {
        t.topic_id = None;
        t.assignee_id = None;
        t.is_answered = false;
        t.due_at = None;
        t.last_message_at = None;
        t.last_response_at = None;
        t.closed_at = None;
        t.reopened_at = None;
    })
    .await;
    assert_eq!(
        store
            .reader()
            .await
            .expect("reader")
            .ticket(opened.id)
            .await
            .expect("read"),
        Some(cleared)
    );

    let missing = store
        .write(|tx| {
            Box::pin(async move {
                Ok(tx
                    .lock_ticket(&TicketNumber::parse("999999").expect("number"))
                    .await?)
            })
        })
        .await
        .expect("lock");
    assert!(missing.is_none());
}

/// A claimed and completed key returns its record to later claims, whatever their request;
/// keys are per API key.
pub async fn idempotency_claim_complete_then_replay(store: &dyn Store) {
    let first_key = api_key_id(store).await;
    let second_key = api_key_id(store).await;
    let key = idempotency_key(first_key, "create-42", "hash-1");
    let now = helpline_core::now();
    let expired_before = now - Duration::hours(24);
    let answer = response(201, r#"{"number":"123456"}"#);

    assert_eq!(
        claim(store, &key, expired_before, now, Some(answer.clone())).await,
        None
    );
    let record = IdempotencyRecord {
        request_hash: "hash-1".into(),
        response: answer.clone(),
    };
    assert_eq!(
        claim(store, &key, expired_before, helpline_core::now(), None).await,
        Some(record.clone())
    );
    // Another request under the same key gets the first request's record (the caller compares).
    let other_request = idempotency_key(first_key, "create-42", "hash-2");
    assert_eq!(
        claim(store, &other_request, expired_before, now, None).await,
        Some(record)
    );
    // The same key string under another API key is another key.
    let other_client = idempotency_key(second_key, "create-42", "hash-9");
    assert_eq!(
        claim(
            store,
            &other_client,
            expired_before,
            now,
            Some(response(200, "{}"))
        )
        .await,
        None
    );
    assert_eq!(
        claim(store, &other_client, expired_before, now, None).await,
        Some(IdempotencyRecord {
            request_hash: "hash-9".into(),
            response: response(200, "{}"),
        })
    );
}

/// A record created before `expired_before` is replaced by a fresh claim; one created exactly
/// then is not.
pub async fn idempotency_expired_claim_is_replaced(store: &dyn Store) {
    let api_key = api_key_id(store).await;
    let then = helpline_core::now() - Duration::days(2);
    let now = helpline_core::now();
    let old = idempotency_key(api_key, "k", "old-hash");
    assert_eq!(
        claim(
            store,
            &old,
            then - Duration::days(1),
            then,
            Some(response(201, "old"))
        )
        .await,
        None
    );
    // Not expired: created exactly at `expired_before`.
    assert_eq!(
        claim(store, &old, then, now, None).await,
        Some(IdempotencyRecord {
            request_hash: "old-hash".into(),
            response: response(201, "old"),
        })
    );
    // Expired: replaced by the new request, which gets to run.
    let new = idempotency_key(api_key, "k", "new-hash");
    assert_eq!(
        claim(
            store,
            &new,
            then + Duration::microseconds(1),
            now,
            Some(response(202, "new"))
        )
        .await,
        None
    );
    assert_eq!(
        claim(
            store,
            &old,
            then + Duration::microseconds(1),
            helpline_core::now(),
            None
        )
        .await,
        Some(IdempotencyRecord {
            request_hash: "new-hash".into(),
            response: response(202, "new"),
        })
    );
}

/// Purging deletes the records created before the cut-off, says how many, and frees their keys.
pub async fn idempotency_purge_counts(store: &dyn Store) {
    let api_key = api_key_id(store).await;
    let now = helpline_core::now();
    let old = now - Duration::days(3);
    let far_past = now - Duration::days(30);
    let created = [
        ("a", old),
        ("b", old + Duration::hours(1)),
        ("c", far_past),
        ("d", now),
        ("e", now),
    ];
    for (name, at) in created {
        let key = idempotency_key(api_key, name, name);
        assert_eq!(
            claim(store, &key, far_past, at, Some(response(201, name))).await,
            None
        );
    }
    let purge = |before: OffsetDateTime| {
        store.write(move |tx| Box::pin(async move { Ok(tx.purge_idempotency_keys(before).await?) }))
    };
    // Strictly before: the records created exactly at `now` stay.
    assert_eq!(purge(now - Duration::days(1)).await.expect("purge"), 3);
    assert_eq!(purge(now - Duration::days(1)).await.expect("purge"), 0);
    assert_eq!(purge(now).await.expect("purge"), 0);
    // A purged key is free again; a kept one still answers.
    let a = idempotency_key(api_key, "a", "a2");
    assert_eq!(claim(store, &a, far_past, now, None).await, None);
    let d = idempotency_key(api_key, "d", "d");
    assert_eq!(
        claim(store, &d, far_past, now, None).await,
        Some(IdempotencyRecord {
            request_hash: "d".into(),
            response: response(201, "d"),
        })
    );
}

/// A claim whose unit of work fails is rolled back with it: the key stays free.
pub async fn idempotency_rolled_back_claim_leaves_key_free(store: &dyn Store) {
    let api_key = api_key_id(store).await;
    let key = idempotency_key(api_key, "retry-me", "h");
    let now = helpline_core::now();
    let failed: Result<(), Error> = {
        let key = key.clone();
        store
            .write(move |tx| {
                Box::pin(async move {
                    assert!(
                        tx.claim_idempotency_key(&key, now - Duration::days(1), now)
                            .await?
                            .is_none()
                    );
                    tx.complete_idempotency_key(&key, &response(201, "lost"))
                        .await?;
                    Err(Error::Conflict("the write failed".into()))
                })
            })
            .await
    };
    assert!(matches!(failed, Err(Error::Conflict(_))));
    assert_eq!(
        claim(
            store,
            &key,
            now - Duration::days(1),
            now,
            Some(response(200, "kept"))
        )
        .await,
        None
    );
}

/// Concurrent requests with one key: one runs, every other replays its answer.
pub async fn concurrent_idempotent_requests_run_once(store: &dyn Store) {
    let api_key = api_key_id(store).await;
    let key =
        IdempotencyKey::new(api_key, "same-request", "POST", "/api/tickets", b"{}").expect("key");
    let outcomes = join_all((0..20).map(|_| {
        let key = key.clone();
        async move {
            run_idempotent(
                store,
                Some(key),
                |opened: &OpenedTicket| StoredResponse {
                    status: 201,
                    body: opened.ticket.number.to_string(),
                },
                open_ticket_work(
                    &DeskSettings::default(),
                    new_ticket("idem@example.com"),
                    Actor::api_key(api_key),
                ),
            )
            .await
            .expect("idempotent request")
        }
    }))
    .await;
    let mut fresh = Vec::new();
    let mut replayed = Vec::new();
    for outcome in outcomes {
        match outcome {
            Idempotent::Fresh(opened) => fresh.push(opened.ticket.number.to_string()),
            Idempotent::Replayed(answer) => replayed.push(answer),
        }
    }
    assert_eq!(fresh.len(), 1, "exactly one request ran");
    assert_eq!(replayed.len(), 19);
    assert!(
        replayed
            .iter()
            .all(|answer| answer.status == 201 && answer.body == fresh[0])
    );
    let tickets = ticket_ids(
        store,
        &TicketQuery {
            limit: 100,
            ..TicketQuery::default()
        },
    )
    .await;
    assert_eq!(tickets.len(), 1, "one ticket was created");
}

/// A sequential number already taken (an import, a change of mode) is skipped, and stays
/// skipped: the next ticket does not collide again.
pub async fn sequential_numbers_skip_taken_ones(store: &dyn Store) {
    let settings = DeskSettings {
        number_format: NumberFormat::Sequential("HD-####".parse().expect("pattern")),
        ..DeskSettings::default()
    };
    let owner = create_user(store, "taken@example.com").await;
    for taken in ["HD-0001", "HD-0002"] {
        let draft = TicketDraft {
            number: TicketNumber::parse(taken).expect("number"),
            subject: Subject::parse("imported").expect("subject"),
            user_id: owner.id,
            department_id: DepartmentId(1),
            topic_id: None,
            status_id: helpline_core::ids::StatusId(1),
            priority_id: PriorityId(2),
            source: Source::Other,
            ip: None,
            created_at: helpline_core::now(),
        };
        store
            .write(move |tx| Box::pin(async move { Ok(tx.insert_ticket(&draft).await?) }))
            .await
            .expect("insert")
            .expect("number was free");
    }
    let mut numbers = Vec::new();
    for i in 0..2 {
        let opened = open_ticket(
            store,
            &settings,
            new_ticket(&format!("skip{i}@example.com")),
            Actor::system(),
        )
        .await
        .expect("a free number is found");
        numbers.push(opened.ticket.number.to_string());
    }
    assert_eq!(numbers, vec!["HD-0003", "HD-0004"]);
}

/// Row counts follow what was written.
pub async fn row_counts_follow_writes(store: &dyn Store) {
    let empty = store
        .reader()
        .await
        .expect("reader")
        .row_counts()
        .await
        .expect("counts");
    assert_eq!(empty, RowCounts::default());
    let mut new = new_ticket("counts@example.com");
    new.attachments = vec![
        NewAttachment::new("a.txt", "text/plain", b"a".to_vec(), 10).expect("file"),
        NewAttachment::new("b.txt", "text/plain", b"a".to_vec(), 10).expect("file"),
    ];
    open_ticket(store, &DeskSettings::default(), new, Actor::system())
        .await
        .expect("ticket");
    let counts = store
        .reader()
        .await
        .expect("reader")
        .row_counts()
        .await
        .expect("counts");
    assert_eq!(
        (
            counts.tickets,
            counts.entries,
            counts.users,
            counts.files,
            counts.attachments
        ),
        (1, 1, 1, 1, 2)
    );
    assert_eq!(counts.events, 2, "user_created and ticket_created");
    assert_eq!(counts.jobs, 1, "the ticket's announcement, in the outbox");
    assert_eq!(
        (
            counts.collaborators,
            counts.idempotency_keys,
            counts.inbound
        ),
        (0, 0, 0)
    );

    // Inbound messages count whatever their status; a repeated (mailbox, uid) adds no row.
    let first = store_inbound(store, raw_mail("imap", Some("INBOX"), Some("1:1"), b"a")).await;
    store_inbound(store, raw_mail("imap", Some("INBOX"), Some("1:1"), b"a")).await;
    store_inbound(store, raw_mail("pipe", None, None, b"b")).await;
    finish(
        store,
        first.0.id,
        &outcome(InboundStatus::Ignored, "own mail"),
    )
    .await;
    let after = store
        .reader()
        .await
        .expect("reader")
        .row_counts()
        .await
        .expect("counts");
    assert_eq!(
        after,
        RowCounts {
            inbound: 2,
            ..counts
        }
    );
}

// Mail intake: entry flags, raw inbound messages, threading by Message-ID, settings.
// ---------------------------------------------------------------------------------------------

/// A raw message to store.
fn raw_mail(source: &str, mailbox: Option<&str>, uid: Option<&str>, raw: &[u8]) -> NewInbound {
    NewInbound {
        source: source.to_owned(),
        mailbox: mailbox.map(str::to_owned),
        source_uid: uid.map(str::to_owned),
        raw: raw.to_vec(),
    }
}

/// Stores a raw message in its own transaction.
async fn store_inbound(store: &dyn Store, message: NewInbound) -> (InboundRecord, bool) {
    store
        .write(move |tx| {
            Box::pin(async move { Ok(tx.insert_inbound(&message, helpline_core::now()).await?) })
        })
        .await
        .expect("inbound stored")
}

/// An outcome with this status and rule and nothing else.
fn outcome(status: InboundStatus, rule: &str) -> InboundOutcome {
    InboundOutcome {
        status,
        class: None,
        rule: rule.to_owned(),
        message_id: None,
        ticket_id: None,
        entry_id: None,
    }
}

/// Records an outcome in its own transaction.
async fn finish(store: &dyn Store, id: InboundId, outcome: &InboundOutcome) {
    let outcome = outcome.clone();
    store
        .write(move |tx| {
            Box::pin(async move {
                Ok(tx
                    .finish_inbound(id, &outcome, helpline_core::now())
                    .await?)
            })
        })
        .await
        .expect("inbound finished");
}

/// A stored message and its bytes.
async fn read_inbound(store: &dyn Store, id: InboundId) -> (InboundRecord, Vec<u8>) {
    store
        .reader()
        .await
        .expect("reader")
        .inbound(id)
        .await
        .expect("inbound read")
        .unwrap_or_else(|| panic!("inbound message {id} exists"))
}

/// Appends an entry that came by mail, with this Message-ID and these flags.
async fn add_mail_entry(
    store: &dyn Store,
    ticket: TicketId,
    message_id: Option<&str>,
    flags: EntryFlags,
) -> ThreadEntry {
    let message_id = message_id.map(str::to_owned);
    store
        .write(move |tx| {
            Box::pin(async move {
                Ok(tx
                    .insert_entry(
                        ticket,
                        &NewEntry {
                            kind: EntryKind::Message,
                            author: Author::System,
                            display_name: "Mail Sender <sender@example.com>".into(),
                            title: None,
                            body: text("Sent by mail."),
                            source: Source::Email,
                            ip: None,
                            api_key_id: None,
                            mail: MailIds {
                                message_id,
                                in_reply_to: Some("<parent@example.com>".into()),
                                references: Some("<root@example.com> <parent@example.com>".into()),
                            },
                            flags,
                            attachments: vec![],
                        },
                        helpline_core::now(),
                    )
                    .await?)
            })
        })
        .await
        .expect("mail entry added")
}

/// The newest entry with one of these Message-IDs.
async fn by_message_id(store: &dyn Store, ids: &[&str]) -> Option<(TicketId, EntryId)> {
    let ids: Vec<String> = ids.iter().map(|id| (*id).to_owned()).collect();
    store
        .reader()
        .await
        .expect("reader")
        .entry_by_message_id(&ids)
        .await
        .expect("lookup by Message-ID")
}

/// Entry flags are stored with an entry, every combination, and read back; a ticket's first
/// entry takes the new ticket's flags and mail ids.
pub async fn entry_flags_round_trip(store: &dyn Store) {
    let mut new = new_ticket("flags@example.com");
    new.source = Source::Email;
    new.mail = MailIds {
        message_id: Some("<first@example.com>".into()),
        in_reply_to: None,
        references: Some("<older@example.com>".into()),
    };
    new.flags = EntryFlags {
        unknown_sender: false,
        bounce: false,
        automatic: true,
    };
    let opened = open_ticket(store, &DeskSettings::default(), new, Actor::system())
        .await
        .expect("ticket");
    assert_eq!(opened.first_entry.flags.bits(), 4);
    assert_eq!(
        opened.first_entry.mail.message_id.as_deref(),
        Some("<first@example.com>")
    );

    let mut inserted = vec![opened.first_entry.clone()];
    for bits in 0..8 {
        let flags = EntryFlags::from_bits(bits);
        let entry = add_mail_entry(store, opened.ticket.id, None, flags).await;
        assert_eq!(entry.flags, flags, "returned as inserted");
        inserted.push(entry);
    }
    let stored = store
        .reader()
        .await
        .expect("reader")
        .entries(opened.ticket.id)
        .await
        .expect("entries");
    assert_eq!(stored, inserted);
    let flags: Vec<_> = stored[1..]
        .iter()
        .map(|e| (e.flags.unknown_sender, e.flags.bounce, e.flags.automatic))
        .collect();
    assert_eq!(
        flags,
        vec![
            (false, false, false),
            (true, false, false),
            (false, true, false),
            (true, true, false),
            (false, false, true),
            (true, false, true),
            (false, true, true),
            (true, true, true),
        ]
    );
    // Entries written without marks (the API, the web) carry none.
    add_entry(store, opened.ticket.id, EntryKind::Note, "plain note").await;
    let stored = store
        .reader()
        .await
        .expect("reader")
        .entries(opened.ticket.id)
        .await
        .expect("entries");
    assert_eq!(stored.last().expect("note").flags, EntryFlags::default());
}

/// A raw message is stored pending, with its size, and its bytes come back exactly: not UTF-8,
/// CR/LF line ends, NUL and every other byte value.
pub async fn inbound_insert_round_trips_bytes(store: &dyn Store) {
    let mut raw =
        b"From: =?iso-8859-1?q?Ren=E9?= <rene@example.com>\r\nSubject: caf\xe9\r\n\r\n".to_vec();
    raw.extend_from_slice(b"line one\r\nNUL here:\0:end\r\n\xff\xfe\x80\xc3\x28\r\n.\r\n");
    raw.extend((0..=255u8).cycle().take(256 * 64));
    raw.extend_from_slice(b"\r\n\r\n");
    assert!(std::str::from_utf8(&raw).is_err());

    let now = helpline_core::now();
    let message = raw_mail("pipe", None, None, &raw);
    let (record, created) = store
        .write(move |tx| Box::pin(async move { Ok(tx.insert_inbound(&message, now).await?) }))
        .await
        .expect("stored");
    assert!(created);
    assert_eq!(
        record,
        InboundRecord {
            id: record.id,
            source: "pipe".into(),
            mailbox: None,
            source_uid: None,
            size: i64::try_from(raw.len()).expect("size"),
            status: InboundStatus::Pending,
            class: None,
            rule: None,
            message_id: None,
            ticket_id: None,
            entry_id: None,
            attempts: 0,
            received_at: now,
            processed_at: None,
        }
    );
    let (stored, bytes) = read_inbound(store, record.id).await;
    assert_eq!(stored, record);
    assert!(bytes == raw, "the bytes come back exactly");

    // An empty message is stored too (size 0), and a missing id is None.
    let (empty, created) = store_inbound(store, raw_mail("api", None, None, b"")).await;
    assert!(created);
    assert_eq!(empty.size, 0);
    assert!(empty.id > record.id);
    assert_eq!(read_inbound(store, empty.id).await, (empty, Vec::new()));
    let mut r = store.reader().await.expect("reader");
    assert!(
        r.inbound(InboundId(987_654))
            .await
            .expect("lookup")
            .is_none()
    );
}

/// A `(mailbox, source_uid)` seen before is stored once: the repeat returns the first record with
/// `false`, also when the mailbox is missing. Messages without a uid are always stored.
pub async fn inbound_same_source_uid_is_stored_once(store: &dyn Store) {
    let (first, created) = store_inbound(
        store,
        raw_mail("imap", Some("INBOX"), Some("7:42"), b"first"),
    )
    .await;
    assert!(created);
    let (again, created) = store_inbound(
        store,
        raw_mail("imap", Some("INBOX"), Some("7:42"), b"second"),
    )
    .await;
    assert!(!created, "a repeat is reported");
    assert_eq!(again, first, "the repeat returns the first record");
    assert_eq!(read_inbound(store, first.id).await.1, b"first");

    // The same uid in another mailbox, or in none, is another message.
    let (other_box, created) =
        store_inbound(store, raw_mail("imap", Some("Support"), Some("7:42"), b"x")).await;
    assert!(created);
    assert_ne!(other_box.id, first.id);
    let (no_box, created) = store_inbound(store, raw_mail("pop3", None, Some("7:42"), b"y")).await;
    assert!(created);
    assert_ne!(no_box.id, first.id);
    assert_eq!(
        (no_box.mailbox.as_deref(), no_box.source_uid.as_deref()),
        (None, Some("7:42"))
    );
    // Without a mailbox, a repeated uid collides too.
    let (no_box_again, created) =
        store_inbound(store, raw_mail("pop3", None, Some("7:42"), b"z")).await;
    assert!(!created, "NULL mailboxes collide");
    assert_eq!(no_box_again, no_box);
    // Uids compare exactly.
    let (upper, created) =
        store_inbound(store, raw_mail("imap", Some("INBOX"), Some("7:42 "), b"u")).await;
    assert!(created);
    assert_ne!(upper.id, first.id);

    // Without a uid, nothing identifies a repeat: both are stored.
    let (a, created_a) = store_inbound(store, raw_mail("imap", Some("INBOX"), None, b"n")).await;
    let (b, created_b) = store_inbound(store, raw_mail("imap", Some("INBOX"), None, b"n")).await;
    assert!(created_a && created_b);
    assert_ne!(a.id, b.id);

    // A repeat inside one transaction leaves the transaction usable (no constraint error).
    let (inner_first, inner_again, later) = store
        .write(|tx| {
            Box::pin(async move {
                let now = helpline_core::now();
                let message = raw_mail("imap", None, Some("9:1"), b"once");
                let first = tx.insert_inbound(&message, now).await?;
                let again = tx.insert_inbound(&message, now).await?;
                let later = tx
                    .insert_inbound(&raw_mail("api", None, None, b"after"), now)
                    .await?;
                Ok((first, again, later))
            })
        })
        .await
        .expect("one transaction");
    assert!(inner_first.1 && !inner_again.1 && later.1);
    assert_eq!(inner_again.0, inner_first.0);

    // Concurrent fetches of one message store it once.
    let results = join_all((0..8).map(|i| {
        store.write(move |tx| {
            Box::pin(async move {
                let message = raw_mail(
                    "imap",
                    Some("INBOX"),
                    Some("8:8"),
                    format!("{i}").as_bytes(),
                );
                Ok(tx.insert_inbound(&message, helpline_core::now()).await?)
            })
        })
    }))
    .await;
    let results: Vec<_> = results
        .into_iter()
        .map(|r| r.expect("concurrent insert"))
        .collect();
    assert_eq!(results.iter().filter(|r| r.1).count(), 1, "created once");
    let ids: HashSet<_> = results.iter().map(|r| r.0.id).collect();
    assert_eq!(ids.len(), 1, "one record: {ids:?}");

    let counts = store
        .reader()
        .await
        .expect("reader")
        .row_counts()
        .await
        .expect("counts");
    assert_eq!(counts.inbound, 9);
}

/// `finish_inbound` stores every outcome field (replacing an earlier outcome) and counts the
/// attempts; finishing a missing message fails.
pub async fn finish_inbound_stores_outcome_and_counts_attempts(store: &dyn Store) {
    let opened = open_ticket(
        store,
        &DeskSettings::default(),
        new_ticket("outcome@example.com"),
        Actor::system(),
    )
    .await
    .expect("ticket");
    let (record, _) =
        store_inbound(store, raw_mail("imap", Some("INBOX"), Some("1:5"), b"m")).await;

    let quarantined = InboundOutcome {
        status: InboundStatus::Quarantined,
        class: Some("normal".into()),
        rule: "error: no From header".into(),
        message_id: Some("<q@example.com>".into()),
        ticket_id: None,
        entry_id: None,
    };
    // Explicit times in the past: a later outcome's `processed_at` must replace them.
    let first_at = helpline_core::now() - Duration::seconds(10);
    {
        let quarantined = quarantined.clone();
        store
            .write(move |tx| {
                Box::pin(
                    async move { Ok(tx.finish_inbound(record.id, &quarantined, first_at).await?) },
                )
            })
            .await
            .expect("finished");
    }
    let (stored, bytes) = read_inbound(store, record.id).await;
    assert_eq!(bytes, b"m", "finishing keeps the bytes");
    assert_eq!(
        stored,
        InboundRecord {
            status: InboundStatus::Quarantined,
            class: Some("normal".into()),
            rule: Some("error: no From header".into()),
            message_id: Some("<q@example.com>".into()),
            attempts: 1,
            processed_at: Some(first_at),
            ..record.clone()
        }
    );

    // A retry succeeds: every field takes the new outcome.
    let processed = InboundOutcome {
        status: InboundStatus::Processed,
        class: Some("auto_reply".into()),
        rule: "threaded by In-Reply-To".into(),
        message_id: Some("<p@example.com>".into()),
        ticket_id: Some(opened.ticket.id),
        entry_id: Some(opened.first_entry.id),
    };
    let second_at = first_at + Duration::seconds(5);
    {
        let processed = processed.clone();
        store
            .write(move |tx| {
                Box::pin(
                    async move { Ok(tx.finish_inbound(record.id, &processed, second_at).await?) },
                )
            })
            .await
            .expect("finished");
    }
    let (stored, _) = read_inbound(store, record.id).await;
    assert_eq!(
        stored,
        InboundRecord {
            status: InboundStatus::Processed,
            class: Some("auto_reply".into()),
            rule: Some("threaded by In-Reply-To".into()),
            message_id: Some("<p@example.com>".into()),
            ticket_id: Some(opened.ticket.id),
            entry_id: Some(opened.first_entry.id),
            attempts: 2,
            processed_at: Some(second_at),
            ..record.clone()
        }
    );

    // Optional fields are cleared by an outcome without them.
    finish(
        store,
        record.id,
        &outcome(InboundStatus::Duplicate, "seen <p@example.com>"),
    )
    .await;
    let (stored, _) = read_inbound(store, record.id).await;
    assert_eq!(stored.status, InboundStatus::Duplicate);
    assert_eq!(
        (
            stored.class,
            stored.message_id,
            stored.ticket_id,
            stored.entry_id
        ),
        (None, None, None, None)
    );
    assert_eq!(stored.rule.as_deref(), Some("seen <p@example.com>"));
    assert_eq!(stored.attempts, 3);
    assert_eq!(stored.received_at, record.received_at);
    assert!(stored.processed_at.is_some_and(|at| at > second_at));

    // A missing message is an error, and the failed unit of work writes nothing.
    let missing = store
        .write(|tx| {
            Box::pin(async move {
                tx.insert_inbound(
                    &raw_mail("api", None, None, b"rolled back"),
                    helpline_core::now(),
                )
                .await?;
                tx.finish_inbound(
                    InboundId(987_654),
                    &outcome(InboundStatus::Ignored, "x"),
                    helpline_core::now(),
                )
                .await?;
                Ok(())
            })
        })
        .await;
    assert!(missing.is_err(), "finishing a missing message fails");
    let counts = store
        .reader()
        .await
        .expect("reader")
        .row_counts()
        .await
        .expect("counts");
    assert_eq!(counts.inbound, 1);
}

/// `inbound_list` selects one status, oldest first, after a cursor, at most `limit`.
/// A message processed before it was stored is stored with its outcome in one write; a second
/// copy of a mailbox message stored before is refused.
pub async fn finished_inbound_is_stored_with_its_outcome(store: &dyn Store) {
    let opened = open_ticket(
        store,
        &DeskSettings::default(),
        new_ticket("finished@example.com"),
        Actor::system(),
    )
    .await
    .expect("ticket");
    let processed = InboundOutcome {
        status: InboundStatus::Processed,
        class: Some("normal".into()),
        rule: "a new ticket".into(),
        message_id: Some("<f@example.com>".into()),
        ticket_id: Some(opened.ticket.id),
        entry_id: Some(opened.first_entry.id),
    };
    let at = helpline_core::now() - Duration::seconds(3);
    let message = raw_mail("api", None, None, b"From: f@example.com\r\n\r\nhi\r\n");
    let id = {
        let (message, processed) = (message.clone(), processed.clone());
        store
            .write(move |tx| {
                Box::pin(
                    async move { Ok(tx.insert_finished_inbound(&message, &processed, at).await?) },
                )
            })
            .await
            .expect("stored")
    };
    let (stored, bytes) = read_inbound(store, id).await;
    assert_eq!(bytes, message.raw);
    assert_eq!(
        stored,
        InboundRecord {
            id,
            source: "api".into(),
            mailbox: None,
            source_uid: None,
            size: i64::try_from(message.raw.len()).expect("size"),
            status: InboundStatus::Processed,
            class: Some("normal".into()),
            rule: Some("a new ticket".into()),
            message_id: Some("<f@example.com>".into()),
            ticket_id: Some(opened.ticket.id),
            entry_id: Some(opened.first_entry.id),
            attempts: 1,
            received_at: at,
            processed_at: Some(at),
        }
    );
    let listed = store
        .reader()
        .await
        .expect("reader")
        .inbound_list(InboundStatus::Processed, None, 100)
        .await
        .expect("list");
    assert!(listed.iter().any(|r| r.id == id), "{listed:?}");

    // The same mailbox message again: refused, and the transaction with it.
    let (first, created) =
        store_inbound(store, raw_mail("imap", Some("INBOX"), Some("7:1"), b"m")).await;
    assert!(created);
    let again = raw_mail("imap", Some("INBOX"), Some("7:1"), b"m");
    let outcome = processed.clone();
    let refused = store
        .write(move |tx| {
            Box::pin(async move {
                Ok(tx
                    .insert_finished_inbound(&again, &outcome, helpline_core::now())
                    .await?)
            })
        })
        .await;
    assert!(
        matches!(refused, Err(Error::Store(StoreError::Constraint { .. }))),
        "{refused:?}"
    );
    let (kept, _) = read_inbound(store, first.id).await;
    assert_eq!(kept, first, "the stored copy is untouched");
}

pub async fn inbound_list_by_status_pages(store: &dyn Store) {
    let mut records = Vec::new();
    for i in 0..7 {
        let uid = format!("1:{i}");
        let (record, _) =
            store_inbound(store, raw_mail("imap", Some("INBOX"), Some(&uid), b"m")).await;
        records.push(record);
    }
    for i in [1, 3, 5] {
        finish(
            store,
            records[i].id,
            &outcome(InboundStatus::Processed, "new ticket"),
        )
        .await;
    }
    let list = |status, after, limit| async move {
        store
            .reader()
            .await
            .expect("reader")
            .inbound_list(status, after, limit)
            .await
            .expect("inbound list")
    };
    let pending = list(InboundStatus::Pending, None, 100).await;
    let expected: Vec<_> = [0, 2, 4, 6].iter().map(|&i| records[i].clone()).collect();
    assert_eq!(pending, expected, "pending, oldest first, without bytes");

    let processed = list(InboundStatus::Processed, None, 100).await;
    let ids: Vec<_> = processed.iter().map(|r| r.id).collect();
    assert_eq!(ids, vec![records[1].id, records[3].id, records[5].id]);
    assert!(
        processed
            .iter()
            .all(|r| r.attempts == 1 && r.processed_at.is_some())
    );

    // Paging: the cursor is the last id seen, pages neither skip nor repeat.
    let page1 = list(InboundStatus::Pending, None, 3).await;
    assert_eq!(page1, expected[..3]);
    let page2 = list(InboundStatus::Pending, Some(page1[2].id), 3).await;
    assert_eq!(page2, expected[3..]);
    let page3 = list(InboundStatus::Pending, Some(page2[0].id), 3).await;
    assert!(page3.is_empty());
    // The cursor need not be a message of this status.
    let after_processed = list(InboundStatus::Pending, Some(records[3].id), 100).await;
    assert_eq!(after_processed, expected[2..]);
    assert!(list(InboundStatus::Pending, None, 0).await.is_empty());
    for status in [
        InboundStatus::Duplicate,
        InboundStatus::Ignored,
        InboundStatus::Quarantined,
    ] {
        assert!(list(status, None, 100).await.is_empty(), "{status:?}");
    }
}

/// `entry_by_message_id` finds the newest entry carrying one of the ids, compares exactly, and
/// finds nothing for no ids.
pub async fn entry_by_message_id_finds_newest(store: &dyn Store) {
    let mut new = new_ticket("thread-a@example.com");
    new.mail = MailIds {
        message_id: Some("<first@example.com>".into()),
        ..MailIds::default()
    };
    let a = open_ticket(store, &DeskSettings::default(), new, Actor::system())
        .await
        .expect("ticket a");
    let b = open_with(store, "thread-b@example.com", "Other", "Other ticket").await;
    let a_reply = add_mail_entry(
        store,
        a.ticket.id,
        Some("<reply@example.com>"),
        EntryFlags::default(),
    )
    .await;
    // Entries without a Message-ID are never found.
    add_mail_entry(store, a.ticket.id, None, EntryFlags::default()).await;
    add_entry(store, b.id, EntryKind::Note, "note without ids").await;
    // The same id again, later, on another ticket: the newest wins.
    let b_reply = add_mail_entry(
        store,
        b.id,
        Some("<reply@example.com>"),
        EntryFlags::default(),
    )
    .await;
    assert!(b_reply.id > a_reply.id);

    let first = Some((a.ticket.id, a.first_entry.id));
    let newest_reply = Some((b.id, b_reply.id));
    assert_eq!(by_message_id(store, &["<first@example.com>"]).await, first);
    assert_eq!(
        by_message_id(store, &["<reply@example.com>"]).await,
        newest_reply
    );
    assert_eq!(
        by_message_id(store, &["<nobody@example.com>", "<first@example.com>"]).await,
        first,
        "ids that match nothing are ignored"
    );
    assert_eq!(
        by_message_id(store, &["<first@example.com>", "<reply@example.com>"]).await,
        newest_reply,
        "the newest entry among all given ids"
    );
    // Exact: case, brackets, whitespace and prefixes all matter.
    for near in [
        "<FIRST@example.com>",
        "<first@EXAMPLE.com>",
        "first@example.com",
        "<first@example.com",
        " <first@example.com>",
        "<first@example.com> ",
        "<first@example.co",
        "%first%",
        "",
    ] {
        assert_eq!(by_message_id(store, &[near]).await, None, "{near:?}");
    }
    assert_eq!(by_message_id(store, &[]).await, None, "no ids, no entry");
    // Odd input is only text: quotes, NUL, SQL.
    assert_eq!(
        by_message_id(store, &["<a'b@example.com>", "x\0y", "') or 1=1 --"]).await,
        None
    );

    // A long References list (more ids than one statement takes) still finds the match, wherever
    // it is in the list.
    let mut many: Vec<String> = (0..2500)
        .map(|i| format!("<unknown{i}@example.com>"))
        .collect();
    many.insert(1700, "<first@example.com>".into());
    let found = store
        .reader()
        .await
        .expect("reader")
        .entry_by_message_id(&many)
        .await
        .expect("long list");
    assert_eq!(found, first);
    many.insert(10, "<reply@example.com>".into());
    let found = store
        .reader()
        .await
        .expect("reader")
        .entry_by_message_id(&many)
        .await
        .expect("long list");
    assert_eq!(found, newest_reply);

    // `entry_ticket` names the ticket of an entry (mail intake follows imported osTicket entry
    // ids with it), and nothing for an entry that does not exist.
    let mut reader = store.reader().await.expect("reader");
    for (entry, ticket) in [
        (a.first_entry.id, a.ticket.id),
        (a_reply.id, a.ticket.id),
        (b_reply.id, b.id),
    ] {
        assert_eq!(
            reader.entry_ticket(entry).await.expect("entry_ticket"),
            Some(ticket),
            "{entry}"
        );
    }
    assert_eq!(
        reader
            .entry_ticket(EntryId(b_reply.id.0 + 1000))
            .await
            .expect("entry_ticket"),
        None
    );
}

/// A setting is set once: a later `init_setting` keeps the first value and returns it.
pub async fn settings_init_once(store: &dyn Store) {
    let mut r = store.reader().await.expect("reader");
    assert_eq!(r.setting("mail.secret").await.expect("setting"), None);
    drop(r);
    let init = |name: &'static str, value: &'static str| {
        store.write(move |tx| Box::pin(async move { Ok(tx.init_setting(name, value).await?) }))
    };
    assert_eq!(init("mail.secret", "first").await.expect("init"), "first");
    assert_eq!(init("mail.secret", "second").await.expect("init"), "first");
    assert_eq!(init("other", "x").await.expect("init"), "x");
    let mut r = store.reader().await.expect("reader");
    assert_eq!(
        r.setting("mail.secret").await.expect("setting").as_deref(),
        Some("first")
    );
    assert_eq!(
        r.setting("other").await.expect("setting").as_deref(),
        Some("x")
    );
    assert_eq!(r.setting("MAIL.SECRET").await.expect("setting"), None);
    drop(r);

    // Nodes starting at once agree on one value.
    let values = join_all((0..8).map(|i| {
        store.write(move |tx| {
            Box::pin(async move { Ok(tx.init_setting("race", &format!("value {i}")).await?) })
        })
    }))
    .await;
    let values: HashSet<_> = values
        .into_iter()
        .map(|v| v.expect("concurrent init"))
        .collect();
    assert_eq!(values.len(), 1, "one value: {values:?}");
    let mut r = store.reader().await.expect("reader");
    assert_eq!(
        r.setting("race").await.expect("setting"),
        values.into_iter().next()
    );
}

// Mailboxes: stored addresses, the fetch lease, fetch results.
// ---------------------------------------------------------------------------------------------

/// A mailbox to add, from its URL.
fn new_mailbox(url: &str, after_fetch: AfterFetch, poll_seconds: u32) -> NewMailbox {
    NewMailbox {
        address: MailboxAddress::parse(url).expect("test mailbox URL is valid"),
        after_fetch,
        poll_seconds,
    }
}

async fn add_mailbox(
    store: &dyn Store,
    mailbox: NewMailbox,
    now: OffsetDateTime,
) -> Result<Mailbox, Error> {
    store
        .write(move |tx| Box::pin(async move { Ok(tx.insert_mailbox(&mailbox, now).await?) }))
        .await
}

async fn read_mailbox(store: &dyn Store, id: MailboxId) -> Option<Mailbox> {
    store
        .reader()
        .await
        .expect("reader")
        .mailbox(id)
        .await
        .expect("mailbox lookup")
}

async fn all_mailboxes(store: &dyn Store) -> Vec<Mailbox> {
    store
        .reader()
        .await
        .expect("reader")
        .mailboxes()
        .await
        .expect("mailboxes")
}

async fn lease(
    store: &dyn Store,
    id: MailboxId,
    holder: &'static str,
    now: OffsetDateTime,
    until: OffsetDateTime,
) -> bool {
    store
        .write(move |tx| {
            Box::pin(async move { Ok(tx.lease_mailbox(id, holder, now, until).await?) })
        })
        .await
        .expect("lease")
}

async fn fetched(
    store: &dyn Store,
    id: MailboxId,
    error: Option<&'static str>,
    now: OffsetDateTime,
) -> Result<(), Error> {
    store
        .write(move |tx| Box::pin(async move { Ok(tx.mailbox_fetched(id, error, now).await?) }))
        .await
}

/// A mailbox comes back with every field as inserted, for both protocols: the address from its
/// own columns (a password and folder full of URL syntax, a POP3 mailbox without folder), the
/// after-fetch action including an archive folder, the interval and the times.
pub async fn mailbox_insert_round_trips(store: &dyn Store) {
    let now = helpline_core::now();
    let imap = new_mailbox(
        "imaps://support%40example.com:p%40ss:w%2Frd%3F%25@Mail.Example.com:1993/Support/Tier 2",
        AfterFetch::Archive("Done/2026".into()),
        45,
    );
    assert_eq!(imap.address.password, "p@ss:w/rd?%");
    assert_eq!(imap.address.folder, "Support/Tier 2");
    let pop = new_mailbox(
        "pop3://helpdesk:secret@[2001:db8::1]:110",
        AfterFetch::Delete,
        300,
    );
    assert_eq!(pop.address.folder, "");
    assert_eq!(pop.address.port, 110);

    let first = add_mailbox(store, imap.clone(), now).await.expect("IMAP");
    let second = add_mailbox(store, pop.clone(), now + Duration::seconds(1))
        .await
        .expect("POP3");
    assert!(second.id > first.id);
    assert_eq!(
        first,
        Mailbox {
            id: first.id,
            address: imap.address.clone(),
            after_fetch: AfterFetch::Archive("Done/2026".into()),
            poll_seconds: 45,
            created_at: now,
            last_fetch_at: None,
            last_error: None,
        }
    );
    assert_eq!(
        second,
        Mailbox {
            id: second.id,
            address: pop.address.clone(),
            after_fetch: AfterFetch::Delete,
            poll_seconds: 300,
            created_at: now + Duration::seconds(1),
            last_fetch_at: None,
            last_error: None,
        }
    );

    let stored = read_mailbox(store, first.id).await.expect("IMAP stored");
    assert_eq!(stored, first);
    assert_eq!(stored.address.protocol, MailProtocol::Imaps);
    assert_eq!(
        stored.address.host, "mail.example.com",
        "host names are kept lower-cased"
    );
    assert_eq!(stored.address.port, 1993);
    assert_eq!(stored.address.user, "support@example.com");
    assert_eq!(stored.address.password, "p@ss:w/rd?%");
    assert_eq!(stored.address.folder, "Support/Tier 2");
    let stored = read_mailbox(store, second.id).await.expect("POP3 stored");
    assert_eq!(stored, second);
    assert_eq!(stored.address.protocol, MailProtocol::Pop3);
    assert_eq!(stored.address.host, "2001:db8::1");
    assert_eq!(all_mailboxes(store).await, vec![first, second]);
    assert!(read_mailbox(store, MailboxId(987_654)).await.is_none());

    // The other two protocols and after-fetch actions too.
    let seen = add_mailbox(store, new_mailbox("imap://u:p@h", AfterFetch::Seen, 0), now)
        .await
        .expect("IMAP");
    let pops = add_mailbox(
        store,
        new_mailbox(
            "pop3s://u:p@h",
            AfterFetch::Delete,
            u32::try_from(i32::MAX).expect("max"),
        ),
        now,
    )
    .await
    .expect("POP3S");
    assert_eq!(read_mailbox(store, seen.id).await, Some(seen));
    assert_eq!(read_mailbox(store, pops.id).await, Some(pops));

    // An interval beyond what both stores can keep is refused, and nothing is stored.
    let outcome = add_mailbox(
        store,
        new_mailbox("imap://u:p@other", AfterFetch::Seen, u32::MAX),
        now,
    )
    .await;
    assert!(outcome.is_err(), "{outcome:?}");
    assert_eq!(all_mailboxes(store).await.len(), 4);
}

/// The same mailbox (protocol, host, port, user and folder) cannot be added twice, whatever its
/// password or actions; a different folder, user, port or protocol is another mailbox.
pub async fn mailbox_duplicates_are_refused(store: &dyn Store) {
    let now = helpline_core::now();
    let original = add_mailbox(
        store,
        new_mailbox(
            "imap://desk:one@mail.example.com/INBOX",
            AfterFetch::Seen,
            60,
        ),
        now,
    )
    .await
    .expect("first");
    for duplicate in [
        "imap://desk:one@mail.example.com/INBOX",
        "imap://desk:two@mail.example.com:143",
    ] {
        let outcome = add_mailbox(
            store,
            new_mailbox(duplicate, AfterFetch::Archive("Done".into()), 5),
            now,
        )
        .await;
        assert!(
            matches!(outcome, Err(Error::Store(StoreError::Constraint { .. }))),
            "{duplicate} gave {outcome:?}"
        );
    }
    assert_eq!(all_mailboxes(store).await, vec![original]);

    for other in [
        "imap://desk:one@mail.example.com/Support",
        "imap://agent:one@mail.example.com/INBOX",
        "imap://desk:one@mail.example.com:1143/INBOX",
        "imaps://desk:one@mail.example.com:143/INBOX",
        "pop3://desk:one@mail.example.com:143",
    ] {
        add_mailbox(store, new_mailbox(other, AfterFetch::Delete, 60), now)
            .await
            .unwrap_or_else(|e| panic!("{other}: {e:?}"));
    }
    assert_eq!(all_mailboxes(store).await.len(), 6);
}

/// Mailboxes are listed by id, the order they were added in (not by address).
pub async fn mailboxes_list_by_id(store: &dyn Store) {
    assert!(all_mailboxes(store).await.is_empty());
    let now = helpline_core::now();
    let mut added = Vec::new();
    for host in ["zulu.example.com", "alpha.example.com", "mike.example.com"] {
        let mailbox = add_mailbox(
            store,
            new_mailbox(&format!("imap://u:p@{host}"), AfterFetch::Seen, 60),
            now,
        )
        .await
        .expect("added");
        added.push(mailbox);
    }
    let listed = all_mailboxes(store).await;
    assert_eq!(listed, added);
    let ids: Vec<_> = listed.iter().map(|m| m.id).collect();
    assert!(ids.is_sorted(), "{ids:?}");
}

/// The lease: a free mailbox is taken; another holder is refused while the lease runs (up to and
/// including its last instant); the holder renews it; once it has run out another holder takes
/// it, and the first is then refused. A missing mailbox is never leased. Of several holders
/// taking a free lease at once, exactly one gets it.
pub async fn mailbox_lease_is_exclusive_until_it_expires(store: &dyn Store) {
    let t0 = helpline_core::now();
    let id = add_mailbox(
        store,
        new_mailbox("imaps://u:p@mail.example.com", AfterFetch::Seen, 60),
        t0,
    )
    .await
    .expect("mailbox")
    .id;
    let at = |seconds: i64| t0 + Duration::seconds(seconds);

    assert!(
        lease(store, id, "node-a", at(0), at(30)).await,
        "free: taken"
    );
    assert!(
        !lease(store, id, "node-b", at(10), at(40)).await,
        "A's runs"
    );
    assert!(
        !lease(store, id, "node-b", at(30), at(60)).await,
        "still A's at its last instant"
    );
    assert!(lease(store, id, "node-a", at(20), at(50)).await, "A renews");
    assert!(
        !lease(store, id, "node-b", at(40), at(70)).await,
        "the renewal extended it"
    );
    assert!(
        lease(
            store,
            id,
            "node-b",
            at(50) + Duration::microseconds(1),
            at(80)
        )
        .await,
        "expired: B takes it"
    );
    assert!(!lease(store, id, "node-a", at(60), at(90)).await, "now B's");
    assert!(lease(store, id, "node-b", at(60), at(90)).await, "B renews");
    assert!(
        !lease(store, MailboxId(987_654), "node-a", at(0), at(30)).await,
        "no such mailbox"
    );

    // Leasing leaves the mailbox itself unchanged.
    let stored = read_mailbox(store, id).await.expect("mailbox");
    assert_eq!(stored.last_fetch_at, None);
    assert_eq!(stored.created_at, t0);

    // A leases a second mailbox independently of the first.
    let other = add_mailbox(
        store,
        new_mailbox("pop3s://u:p@mail.example.com", AfterFetch::Delete, 60),
        t0,
    )
    .await
    .expect("mailbox")
    .id;
    assert!(lease(store, other, "node-a", at(60), at(90)).await);

    // Many nodes at once: one wins.
    let race = add_mailbox(
        store,
        new_mailbox("imap://race:p@mail.example.com", AfterFetch::Seen, 60),
        t0,
    )
    .await
    .expect("mailbox")
    .id;
    const HOLDERS: [&str; 8] = ["n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7"];
    let results = join_all(
        HOLDERS
            .iter()
            .map(|holder| lease(store, race, holder, at(0), at(30))),
    )
    .await;
    assert_eq!(
        results.iter().filter(|taken| **taken).count(),
        1,
        "{results:?}"
    );
}

/// A fetch round's end is recorded: its time, and its error, which the next good round clears.
/// A missing mailbox is an error.
pub async fn mailbox_fetched_records_and_clears_error(store: &dyn Store) {
    let t0 = helpline_core::now();
    let id = add_mailbox(
        store,
        new_mailbox("imap://u:p@mail.example.com", AfterFetch::Seen, 60),
        t0,
    )
    .await
    .expect("mailbox")
    .id;
    let other = add_mailbox(
        store,
        new_mailbox("imap://u:p@other.example.com", AfterFetch::Seen, 60),
        t0,
    )
    .await
    .expect("mailbox");

    let t1 = t0 + Duration::seconds(61);
    fetched(
        store,
        id,
        Some("LOGIN failed: [AUTHENTICATIONFAILED] bad password"),
        t1,
    )
    .await
    .expect("recorded");
    let stored = read_mailbox(store, id).await.expect("mailbox");
    assert_eq!(stored.last_fetch_at, Some(t1));
    assert_eq!(
        stored.last_error.as_deref(),
        Some("LOGIN failed: [AUTHENTICATIONFAILED] bad password")
    );
    assert_eq!(stored.created_at, t0);

    let t2 = t1 + Duration::seconds(60);
    fetched(store, id, None, t2).await.expect("recorded");
    let stored = read_mailbox(store, id).await.expect("mailbox");
    assert_eq!(stored.last_fetch_at, Some(t2));
    assert_eq!(stored.last_error, None);

    // An error quoting a server that sent NUL is still recorded, the same on every store.
    let t3 = t2 + Duration::seconds(60);
    fetched(store, id, Some("bad\0reply"), t3)
        .await
        .expect("recorded");
    let stored = read_mailbox(store, id).await.expect("mailbox");
    assert_eq!(stored.last_error.as_deref(), Some("bad\u{fffd}reply"));
    assert_eq!(stored.last_fetch_at, Some(t3));

    // Only that mailbox changed.
    assert_eq!(read_mailbox(store, other.id).await, Some(other));
    assert!(fetched(store, MailboxId(987_654), None, t3).await.is_err());
}

/// Deleting a mailbox removes it (its lease with it) and frees its address; messages fetched
/// from it stay. Deleting again, or a missing mailbox, is `false`.
pub async fn mailbox_delete(store: &dyn Store) {
    let now = helpline_core::now();
    let url = "imaps://u:p@mail.example.com/INBOX";
    let gone = add_mailbox(store, new_mailbox(url, AfterFetch::Seen, 60), now)
        .await
        .expect("mailbox");
    let kept = add_mailbox(
        store,
        new_mailbox("pop3://u:p@mail.example.com", AfterFetch::Delete, 60),
        now,
    )
    .await
    .expect("mailbox");
    assert!(lease(store, gone.id, "node-a", now, now + Duration::seconds(30)).await);
    let (message, _) = store_inbound(
        store,
        raw_mail("imap", Some(&gone.address.redacted()), Some("1:1"), b"kept"),
    )
    .await;

    let delete = |id: MailboxId| {
        store.write(move |tx| Box::pin(async move { Ok(tx.delete_mailbox(id).await?) }))
    };
    assert!(delete(gone.id).await.expect("delete"));
    assert!(read_mailbox(store, gone.id).await.is_none());
    assert_eq!(all_mailboxes(store).await, vec![kept.clone()]);
    assert!(!delete(gone.id).await.expect("delete again"));
    assert!(!delete(MailboxId(987_654)).await.expect("delete missing"));
    assert!(
        !lease(store, gone.id, "node-b", now, now + Duration::seconds(30)).await,
        "a deleted mailbox is not leased"
    );

    let (stored, bytes) = read_inbound(store, message.id).await;
    assert_eq!(stored, message);
    assert_eq!(bytes, b"kept");

    // The address is free again: added back, it is a new mailbox with a new id.
    let again = add_mailbox(store, new_mailbox(url, AfterFetch::Seen, 60), now)
        .await
        .expect("added again");
    assert!(again.id > kept.id);
    assert_eq!(all_mailboxes(store).await, vec![kept, again]);
}

// Imports from another desk (osTicket): the id map, organisations, SLAs, added statuses and
// priorities, customers and staff carried over as they were.
// ---------------------------------------------------------------------------------------------

/// Whether a unit of work failed on a uniqueness or foreign-key rule.
fn is_constraint<T>(outcome: &Result<T, Error>) -> bool {
    matches!(outcome, Err(Error::Store(StoreError::Constraint { .. })))
}

/// An imported customer (no phone, no notes), first seen and last changed at the given times.
fn imported_user(
    name: &str,
    addresses: &[&str],
    organization_id: Option<OrganizationId>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
) -> ImportedUser {
    ImportedUser {
        name: name.to_owned(),
        emails: addresses.iter().map(|address| email(address)).collect(),
        phone: None,
        notes: None,
        organization_id,
        created_at,
        updated_at,
    }
}

/// Runs a unit of work importing `user`.
async fn import_user(store: &dyn Store, user: ImportedUser) -> Result<User, Error> {
    store
        .write(move |tx| Box::pin(async move { Ok(tx.import_user(&user).await?) }))
        .await
}

/// Runs a unit of work adding an organisation.
async fn add_organization(
    store: &dyn Store,
    name: &str,
    domain: Option<&str>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
) -> Result<Organization, Error> {
    let organization = NewOrganization {
        name: name.to_owned(),
        domain: domain.map(str::to_owned),
        created_at,
        updated_at,
    };
    store
        .write(move |tx| Box::pin(async move { Ok(tx.insert_organization(&organization).await?) }))
        .await
}

/// Source ids map to ours per kind, listed by source id; one source record maps once, and a
/// unit that fails records nothing.
pub async fn legacy_ids_map_each_source_record_once(store: &dyn Store) {
    // Source ids beyond 32 bits: the columns must hold any i64.
    let big = 5_000_000_000_i64;
    store
        .write(move |tx| {
            Box::pin(async move {
                tx.record_legacy_id(LegacyKind::User, 5, 50).await?;
                tx.record_legacy_id(LegacyKind::User, 2, 20).await?;
                tx.record_legacy_id(LegacyKind::User, big, big + 1).await?;
                // The same source id under another kind is another record.
                tx.record_legacy_id(LegacyKind::Ticket, 5, 500).await?;
                Ok(())
            })
        })
        .await
        .expect("ids recorded");

    let mut r = store.reader().await.expect("reader");
    assert_eq!(
        r.legacy_id(LegacyKind::User, 5).await.expect("lookup"),
        Some(50)
    );
    assert_eq!(
        r.legacy_id(LegacyKind::User, big).await.expect("lookup"),
        Some(big + 1)
    );
    assert_eq!(
        r.legacy_id(LegacyKind::Ticket, 5).await.expect("lookup"),
        Some(500)
    );
    assert_eq!(
        r.legacy_id(LegacyKind::User, 7).await.expect("lookup"),
        None
    );
    assert_eq!(
        r.legacy_id(LegacyKind::Entry, 5).await.expect("lookup"),
        None
    );
    assert_eq!(
        r.legacy_ids(LegacyKind::User).await.expect("list"),
        vec![(2, 20), (5, 50), (big, big + 1)],
        "by source id, not in the order recorded"
    );
    assert_eq!(
        r.legacy_ids(LegacyKind::Ticket).await.expect("list"),
        vec![(5, 500)]
    );
    assert!(
        r.legacy_ids(LegacyKind::Staff)
            .await
            .expect("list")
            .is_empty()
    );
    drop(r);

    // Recording a source record again, to another target or to the same one, is refused; the
    // unit that tried keeps nothing, not even what it recorded before.
    for target in [51, 50] {
        let outcome = store
            .write(move |tx| {
                Box::pin(async move {
                    tx.record_legacy_id(LegacyKind::Sla, 1, 1).await?;
                    tx.record_legacy_id(LegacyKind::User, 5, target).await?;
                    Ok(())
                })
            })
            .await;
        assert!(is_constraint(&outcome), "target {target}: {outcome:?}");
    }
    let mut r = store.reader().await.expect("reader");
    assert_eq!(
        r.legacy_id(LegacyKind::User, 5).await.expect("lookup"),
        Some(50)
    );
    assert!(
        r.legacy_ids(LegacyKind::Sla)
            .await
            .expect("list")
            .is_empty()
    );
}

/// Organisations keep their own times and domain, SLAs their grace period; both list by id.
pub async fn organizations_and_slas_round_trip(store: &dyn Store) {
    let acme = add_organization(
        store,
        "Acme",
        Some("acme.example, acme-corp.example"),
        datetime!(2017-01-02 03:04:05.678901 UTC),
        datetime!(2020-06-07 08:09:10.111213 UTC),
    )
    .await
    .expect("organisation");
    let globex = add_organization(
        store,
        "Globex",
        None,
        datetime!(2018-01-01 00:00:00 UTC),
        datetime!(2018-01-01 00:00:00 UTC),
    )
    .await
    .expect("organisation");
    assert_eq!(acme.name, "Acme");
    assert_eq!(
        acme.domain.as_deref(),
        Some("acme.example, acme-corp.example")
    );
    assert_eq!(acme.created_at, datetime!(2017-01-02 03:04:05.678901 UTC));
    assert_eq!(acme.updated_at, datetime!(2020-06-07 08:09:10.111213 UTC));

    let now = helpline_core::now();
    let (standard, premium) = store
        .write(move |tx| {
            Box::pin(async move {
                let standard = tx
                    .insert_sla(
                        &NewSla {
                            name: "Default SLA".into(),
                            grace_hours: 48,
                        },
                        now,
                    )
                    .await?;
                let premium = tx
                    .insert_sla(
                        &NewSla {
                            name: "Premium".into(),
                            grace_hours: 4,
                        },
                        now,
                    )
                    .await?;
                Ok((standard, premium))
            })
        })
        .await
        .expect("SLAs");
    assert_eq!(
        (
            standard.name.as_str(),
            standard.grace_hours,
            standard.created_at
        ),
        ("Default SLA", 48, now)
    );

    let mut r = store.reader().await.expect("reader");
    assert_eq!(
        r.organizations().await.expect("organisations"),
        vec![acme, globex]
    );
    assert_eq!(r.slas().await.expect("SLAs"), vec![standard, premium]);
}

/// Added statuses and priorities are found like the seeded ones and never become defaults.
pub async fn added_statuses_and_priorities_are_not_defaults(store: &dyn Store) {
    let (on_hold, spam, critical) = store
        .write(|tx| {
            Box::pin(async move {
                let on_hold = tx
                    .insert_status(&NewStatus {
                        name: "On Hold".into(),
                        state: StatusState::Open,
                        allow_reopen: false,
                    })
                    .await?;
                let spam = tx
                    .insert_status(&NewStatus {
                        name: "Spam".into(),
                        state: StatusState::Closed,
                        allow_reopen: true,
                    })
                    .await?;
                let critical = tx
                    .insert_priority(&NewPriority {
                        name: "Critical".into(),
                        urgency: 0,
                    })
                    .await?;
                Ok((on_hold, spam, critical))
            })
        })
        .await
        .expect("catalogue writes");
    assert_eq!(
        (
            on_hold.name.as_str(),
            on_hold.state,
            on_hold.allow_reopen,
            on_hold.is_default
        ),
        ("On Hold", StatusState::Open, false, false)
    );
    assert_eq!(
        (spam.state, spam.allow_reopen, spam.is_default),
        (StatusState::Closed, true, false)
    );
    assert_eq!(
        (
            critical.name.as_str(),
            critical.urgency,
            critical.is_default
        ),
        ("Critical", 0, false)
    );

    let mut r = store.reader().await.expect("reader");
    assert_eq!(
        r.status(on_hold.id).await.expect("status"),
        Some(on_hold.clone())
    );
    assert_eq!(
        r.priority(critical.id).await.expect("priority"),
        Some(critical.clone())
    );
    let statuses = r.statuses().await.expect("statuses");
    assert_eq!(statuses.len(), 6);
    assert_eq!(statuses[4..], [on_hold, spam]);
    assert_eq!(
        r.priorities().await.expect("priorities").last(),
        Some(&critical)
    );
    assert_eq!(r.default_status().await.expect("status").name, "Open");
    assert_eq!(r.default_priority().await.expect("priority").name, "Normal");
}

/// Organisation, SLA, status and priority names are unique regardless of case.
pub async fn import_catalogue_names_are_unique_regardless_of_case(store: &dyn Store) {
    let at = datetime!(2019-05-06 07:08:09 UTC);
    add_organization(store, "Acme", None, at, at)
        .await
        .expect("organisation");
    store
        .write(move |tx| {
            Box::pin(async move {
                tx.insert_sla(
                    &NewSla {
                        name: "Premium".into(),
                        grace_hours: 4,
                    },
                    at,
                )
                .await?;
                Ok(())
            })
        })
        .await
        .expect("SLA");

    for attempt in 0..4 {
        let outcome = store
            .write(move |tx| {
                Box::pin(async move {
                    match attempt {
                        0 => tx
                            .insert_organization(&NewOrganization {
                                name: "ACME".into(),
                                domain: Some("acme.example".into()),
                                created_at: at,
                                updated_at: at,
                            })
                            .await
                            .map(|_| ()),
                        1 => tx
                            .insert_sla(
                                &NewSla {
                                    name: "premium".into(),
                                    grace_hours: 8,
                                },
                                at,
                            )
                            .await
                            .map(|_| ()),
                        // Seeded as "Resolved" and "High".
                        2 => tx
                            .insert_status(&NewStatus {
                                name: "RESOLVED".into(),
                                state: StatusState::Closed,
                                allow_reopen: true,
                            })
                            .await
                            .map(|_| ()),
                        _ => tx
                            .insert_priority(&NewPriority {
                                name: "high".into(),
                                urgency: 2,
                            })
                            .await
                            .map(|_| ()),
                    }
                    .map_err(Error::from)
                })
            })
            .await;
        assert!(
            is_constraint(&outcome),
            "duplicate #{attempt} gave {outcome:?}"
        );
    }
    let mut r = store.reader().await.expect("reader");
    assert_eq!(r.organizations().await.expect("organisations").len(), 1);
    assert_eq!(r.slas().await.expect("SLAs").len(), 1);
    assert_eq!(r.statuses().await.expect("statuses").len(), 4);
    assert_eq!(r.priorities().await.expect("priorities").len(), 4);
}

/// An imported customer keeps every address in the order given, its organisation and its own
/// times, however it is read back; one without addresses round-trips too, and find-or-create
/// finds imported addresses regardless of case.
pub async fn imported_users_keep_addresses_organization_and_times(store: &dyn Store) {
    let acme = add_organization(
        store,
        "Acme",
        None,
        datetime!(2016-01-01 00:00:00 UTC),
        datetime!(2016-01-01 00:00:00 UTC),
    )
    .await
    .expect("organisation");
    // Not in alphabetical order: the order given is kept, primary first.
    let mut given = imported_user(
        "Zoe Zed",
        &[
            "zoe@example.com",
            "Alpha.Zoe@Example.org",
            "mid@example.net",
        ],
        Some(acme.id),
        datetime!(2019-03-04 05:06:07.123456 UTC),
        datetime!(2021-08-09 10:11:12.654321 UTC),
    );
    given.phone = Some("555-0100X12".into());
    given.notes = Some("Came over from osTicket.".into());
    let zoe = import_user(store, given).await.expect("imported");
    assert_eq!(
        zoe.emails,
        vec![
            email("zoe@example.com"),
            email("Alpha.Zoe@Example.org"),
            email("mid@example.net")
        ]
    );
    assert_eq!(zoe.organization_id, Some(acme.id));
    assert_eq!(zoe.created_at, datetime!(2019-03-04 05:06:07.123456 UTC));
    assert_eq!(zoe.updated_at, datetime!(2021-08-09 10:11:12.654321 UTC));
    assert_eq!(zoe.phone.as_deref(), Some("555-0100X12"));
    assert_eq!(zoe.notes.as_deref(), Some("Came over from osTicket."));

    let nobody = import_user(
        store,
        imported_user(
            "No Address",
            &[],
            None,
            datetime!(2015-12-31 23:59:59.999999 UTC),
            datetime!(2015-12-31 23:59:59.999999 UTC),
        ),
    )
    .await
    .expect("imported without addresses");
    assert!(nobody.emails.is_empty());
    assert_eq!(nobody.primary_email(), None);

    let mut r = store.reader().await.expect("reader");
    assert_eq!(r.user(zoe.id).await.expect("user"), Some(zoe.clone()));
    assert_eq!(
        r.user_by_email(&email("ALPHA.zoe@example.ORG"))
            .await
            .expect("user"),
        Some(zoe.clone())
    );
    assert_eq!(r.user(nobody.id).await.expect("user"), Some(nobody.clone()));
    assert_eq!(
        r.users(None, 10).await.expect("users"),
        vec![zoe.clone(), nobody.clone()]
    );
    assert_eq!(
        r.users(Some(zoe.id), 1).await.expect("users"),
        vec![nobody.clone()]
    );
    assert_eq!(r.row_counts().await.expect("counts").users, 2);
    drop(r);

    // Find-or-create compares addresses by the same key as the import stored.
    let (found, created) = store
        .write(|tx| {
            Box::pin(async move {
                Ok(tx
                    .find_or_create_user(&contact("MID@example.NET", "Other"), helpline_core::now())
                    .await?)
            })
        })
        .await
        .expect("find");
    assert!(!created);
    assert_eq!(found, zoe);
    let fresh = create_user(store, "fresh@example.com").await;
    assert_eq!(fresh.organization_id, None);
    assert_eq!(
        store
            .reader()
            .await
            .expect("reader")
            .user(fresh.id)
            .await
            .expect("user"),
        Some(fresh)
    );
}

/// An import whose address another customer has (or that names one address twice, or an
/// organisation that does not exist) is refused, and its unit writes nothing.
pub async fn import_user_with_a_taken_address_writes_nothing(store: &dyn Store) {
    let owner = create_user(store, "taken@example.com").await;
    let at = datetime!(2020-02-02 02:02:02 UTC);
    let attempts = [
        imported_user(
            "Late Comer",
            &["fresh@example.com", "TAKEN@example.com"],
            None,
            at,
            at,
        ),
        imported_user(
            "Twice",
            &["twice@example.com", "Twice@Example.com"],
            None,
            at,
            at,
        ),
        imported_user(
            "Orphan",
            &["orphan@example.com"],
            Some(OrganizationId(999)),
            at,
            at,
        ),
    ];
    for user in attempts {
        let name = user.name.clone();
        let outcome = store
            .write(move |tx| {
                Box::pin(async move {
                    // Something else first: the whole unit goes, not just the import.
                    tx.record_legacy_id(LegacyKind::User, 7, 70).await?;
                    Ok(tx.import_user(&user).await?)
                })
            })
            .await;
        assert!(is_constraint(&outcome), "{name}: {outcome:?}");
    }

    let mut r = store.reader().await.expect("reader");
    assert_eq!(r.users(None, 10).await.expect("users"), vec![owner.clone()]);
    assert_eq!(r.row_counts().await.expect("counts").users, 1);
    for address in [
        "fresh@example.com",
        "twice@example.com",
        "orphan@example.com",
    ] {
        assert_eq!(
            r.user_by_email(&email(address)).await.expect("lookup"),
            None,
            "{address}"
        );
    }
    assert_eq!(
        r.user_by_email(&email("taken@example.com"))
            .await
            .expect("lookup"),
        Some(owner)
    );
    assert_eq!(
        r.legacy_id(LegacyKind::User, 7).await.expect("lookup"),
        None
    );
}

/// Imported staff keep their state, creation time and password hash; the hash is read on its
/// own, and staff added the usual way have none.
pub async fn imported_staff_keep_state_hash_and_creation_time(store: &dyn Store) {
    let hash = "$2y$10$7EqJtq98hPqEX7fNZaFWoOhi5BWX4Z3jRd3KxUe.XjI0OC9qi5pK6";
    let (alice, bob, carol) = store
        .write(move |tx| {
            Box::pin(async move {
                let alice = tx
                    .insert_staff(
                        &NewStaff {
                            username: "alice".into(),
                            name: "Alice Agent".into(),
                            email: email("alice@example.com"),
                            department_id: DepartmentId(1),
                        },
                        helpline_core::now(),
                    )
                    .await?;
                let bob = tx
                    .import_staff(&ImportedStaff {
                        staff: NewStaff {
                            username: "bob".into(),
                            name: "Bob Former".into(),
                            email: email("Bob@Example.com"),
                            department_id: DepartmentId(1),
                        },
                        active: false,
                        password_hash: Some(hash.into()),
                        created_at: datetime!(2014-04-05 06:07:08.090807 UTC),
                    })
                    .await?;
                let carol = tx
                    .import_staff(&ImportedStaff {
                        staff: NewStaff {
                            username: "carol".into(),
                            name: "Carol".into(),
                            email: email("carol@example.com"),
                            department_id: DepartmentId(1),
                        },
                        active: true,
                        password_hash: None,
                        created_at: datetime!(2015-01-01 00:00:00 UTC),
                    })
                    .await?;
                Ok((alice, bob, carol))
            })
        })
        .await
        .expect("staff");
    assert!(!bob.active);
    assert_eq!(bob.created_at, datetime!(2014-04-05 06:07:08.090807 UTC));
    assert_eq!(bob.email, email("Bob@Example.com"));

    let mut r = store.reader().await.expect("reader");
    assert_eq!(
        r.staff_member(bob.id).await.expect("staff"),
        Some(bob.clone())
    );
    assert_eq!(
        r.staff().await.expect("staff"),
        vec![alice.clone(), bob.clone(), carol.clone()]
    );
    assert_eq!(
        r.staff_password_hash(bob.id).await.expect("hash"),
        Some(hash.to_owned())
    );
    assert_eq!(r.staff_password_hash(alice.id).await.expect("hash"), None);
    assert_eq!(r.staff_password_hash(carol.id).await.expect("hash"), None);
    assert_eq!(
        r.staff_password_hash(StaffId(999)).await.expect("hash"),
        None
    );
    drop(r);

    // A taken user name (in another case) or address is refused as for added staff.
    for (username, address) in [("BOB", "bob2@example.com"), ("dave", "bob@EXAMPLE.com")] {
        let outcome = store
            .write(move |tx| {
                Box::pin(async move {
                    Ok(tx
                        .import_staff(&ImportedStaff {
                            staff: NewStaff {
                                username: username.into(),
                                name: "Dup".into(),
                                email: email(address),
                                department_id: DepartmentId(1),
                            },
                            active: true,
                            password_hash: None,
                            created_at: helpline_core::now(),
                        })
                        .await?)
                })
            })
            .await;
        assert!(is_constraint(&outcome), "{username}: {outcome:?}");
    }
}
