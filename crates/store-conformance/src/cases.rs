//! The cases. Each receives a fresh, migrated store and panics on any deviation.

use futures::future::join_all;
use helpline_core::Error;
use helpline_core::StoreError;
use helpline_core::apikey::{KeySecret, NewApiKey, Scope};
use helpline_core::attachment::NewAttachment;
use helpline_core::body::{BodyFormat, MessageBody};
use helpline_core::catalog::{NewDepartment, NewStaff, NewTopic, StatusState};
use helpline_core::email::EmailAddress;
use helpline_core::event::{Actor, EventKind, NewEvent};
use helpline_core::ids::{DepartmentId, PriorityId, TopicId, UserId};
use helpline_core::number::NumberFormat;
use helpline_core::service::DeskSettings;
use helpline_core::service::tickets::open_ticket;
use helpline_core::store::{Store, TicketDraft};
use helpline_core::thread::{Author, EntryKind, MailIds, NewEntry};
use helpline_core::ticket::{NewTicket, NotifyOptions, Source, Subject, TicketNumber};
use helpline_core::user::CustomerContact;
use std::collections::HashSet;
use std::sync::Arc;

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

fn text(body: &str) -> MessageBody {
    MessageBody::parse(body, BodyFormat::Text).expect("test body is valid")
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
