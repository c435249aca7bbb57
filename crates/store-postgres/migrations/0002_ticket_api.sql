-- The ticket API: listing filters, full-text search and idempotency keys.

-- Listing is newest first (`order by ticket_id desc`) with an equality filter and an id cursor;
-- an index on (filter column, ticket_id) answers that as one backwards range scan, at any size.
-- `ticket_by_user (user_id, ticket_id)` and `ticket_by_updated` already exist.
create index ticket_by_status on ticket (status_id, ticket_id);
create index ticket_by_department on ticket (department_id, ticket_id);
create index ticket_by_assignee on ticket (assignee_id, ticket_id);
create index ticket_by_topic on ticket (topic_id, ticket_id);

-- The text an entry is found by: its title (a ticket's first entry carries the subject) and body,
-- under the 'simple' configuration: lower-cased words, no stemming and no stop words, so that a
-- search matches whole words as typed, as SQLite's unicode61 tokenizer does.
--
-- A tsvector holds at most 1 MB. A body of that order made of distinct tokens (a pasted log of
-- hex ids or base64) exceeds it, and a plain generated column would then make inserting the entry
-- fail: the customer's message would be refused for being searchable. Such an entry is instead
-- indexed by its first 100,000 characters, which stay well below the limit whatever they hold
-- (at most 50,000 words of at most four bytes a character). Every other entry is indexed whole.
-- The exception block costs a subtransaction per call but no transaction id (it writes nothing).
-- Declared immutable, as a generated column requires: its result depends on its arguments only.
create function thread_entry_search_vector(title text, body text) returns tsvector
language plpgsql immutable parallel safe as $$
begin
    return to_tsvector('simple'::regconfig, coalesce(title, '') || ' ' || body);
exception when program_limit_exceeded then
    return to_tsvector('simple'::regconfig, left(coalesce(title, '') || ' ' || body, 100000));
end;
$$;

-- Stored, so searching reads the index and never re-parses bodies. Adding it rewrites the table
-- once, indexing the entries written before this migration.
alter table thread_entry
    add column search_vector tsvector not null
    generated always as (thread_entry_search_vector(title, body)) stored;
create index thread_entry_search on thread_entry using gin (search_vector);

-- One row per (API key, Idempotency-Key): the request it was first used for and the answer
-- given. A claim inserts it with status 0 and an empty body; the same transaction stores the
-- answer, so a committed row always holds one. The primary key is also what makes concurrent
-- claims of one key wait for each other (`on conflict do nothing` waits for the other
-- transaction instead of failing).
create table idempotency_key (
    api_key_id   bigint      not null,
    key          text        not null,
    request_hash text        not null, -- hex SHA-256 of method, path and body
    status       integer     not null, -- HTTP status of the stored answer
    body         text        not null, -- the answer's body, replayed byte for byte
    created_at   timestamptz not null,
    primary key (api_key_id, key)
);
-- Purging deletes by age.
create index idempotency_key_by_created on idempotency_key (created_at);
