-- The ticket API: listing filters, full-text search and idempotency keys.

-- Listing is newest first (`order by ticket_id desc`) with an equality filter and an id cursor;
-- an index on (filter column, ticket_id) answers that as one backwards range scan, at any size.
-- `ticket_by_user (user_id, ticket_id)` and `ticket_by_updated` already exist.
create index ticket_by_status on ticket (status_id, ticket_id);
create index ticket_by_department on ticket (department_id, ticket_id);
create index ticket_by_assignee on ticket (assignee_id, ticket_id);
create index ticket_by_topic on ticket (topic_id, ticket_id);

-- Full-text search over every entry's title and body. A ticket's first entry carries its subject
-- as title, so subjects are covered too. External content: the text is stored once, in
-- thread_entry, and the index only points at it by entry_id. unicode61 folds case and diacritics.
create virtual table thread_entry_fts using fts5 (
    title,
    body,
    content = 'thread_entry',
    content_rowid = 'entry_id',
    tokenize = 'unicode61'
);

-- An external-content index is not maintained by SQLite: the triggers keep it in step.
-- Entries are only ever inserted today; the delete and update triggers are there so that a later
-- purge or edit cannot silently leave stale terms behind (FTS5 needs the old values to remove
-- them, which only a trigger still has).
create trigger thread_entry_fts_insert after insert on thread_entry begin
    insert into thread_entry_fts (rowid, title, body) values (new.entry_id, new.title, new.body);
end;

create trigger thread_entry_fts_delete after delete on thread_entry begin
    insert into thread_entry_fts (thread_entry_fts, rowid, title, body)
    values ('delete', old.entry_id, old.title, old.body);
end;

create trigger thread_entry_fts_update after update of title, body on thread_entry begin
    insert into thread_entry_fts (thread_entry_fts, rowid, title, body)
    values ('delete', old.entry_id, old.title, old.body);
    insert into thread_entry_fts (rowid, title, body) values (new.entry_id, new.title, new.body);
end;

-- Index the entries written before this migration.
insert into thread_entry_fts (thread_entry_fts) values ('rebuild');

-- One row per (API key, Idempotency-Key): the request it was first used for and the answer
-- given. A claim inserts it with status 0 and an empty body; the same transaction stores the
-- answer, so a committed row always holds one.
create table idempotency_key (
    api_key_id   integer not null,
    key          text    not null,
    request_hash text    not null, -- hex SHA-256 of method, path and body
    status       integer not null, -- HTTP status of the stored answer
    body         text    not null, -- the answer's body, replayed byte for byte
    created_at   integer not null,
    primary key (api_key_id, key)
);
-- Purging deletes by age.
create index idempotency_key_by_created on idempotency_key (created_at);
