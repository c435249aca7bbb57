-- Mail intake: raw inbound messages kept before they are processed, marks on entries that came
-- in by mail, and named server settings.

-- `EntryFlags` as a bit set: 1 unknown sender, 2 bounce, 4 automatic reply or bulk mail.
alter table thread_entry add column flags integer not null default 0;

-- Every message exactly as received, stored before it is processed, so a crash or a failure
-- while processing loses nothing: a pending row is processed (again) later, and a quarantined
-- one stays for an operator.
create table inbound_mail (
    inbound_id  integer primary key,
    source      text    not null,          -- api, pipe, imap, pop3
    mailbox     text,                      -- the mailbox it was fetched from, if any
    source_uid  text,                      -- its id there (IMAP UIDVALIDITY:UID, POP3 UIDL)
    raw         blob    not null,          -- the bytes as received
    size        integer not null,
    status      text    not null default 'pending'
        check (status in ('pending', 'processed', 'duplicate', 'ignored', 'quarantined')),
    class       text,                      -- normal, auto_reply, bulk, bounce
    rule        text,                      -- why it landed where it did, or the error
    message_id  text,
    ticket_id   integer references ticket,
    entry_id    integer references thread_entry,
    attempts    integer not null default 0,
    received_at integer not null,
    processed_at integer
);
-- A message fetched twice from one mailbox is stored once. `coalesce` makes a missing mailbox
-- one value, so messages without a mailbox but with the same uid collide too (as they must on
-- PostgreSQL, where NULLs in a unique index never collide).
create unique index inbound_mail_by_source_uid on inbound_mail (coalesce(mailbox, ''), source_uid)
    where source_uid is not null;
-- The processing queue and the operator's listing: by status, oldest first.
create index inbound_mail_by_status on inbound_mail (status, inbound_id);
create index inbound_mail_by_message_id on inbound_mail (message_id)
    where message_id is not null;

-- Named server settings (e.g. the secret that signs our Message-IDs).
create table setting (
    name  text primary key,
    value text not null
);
