-- The transactional outbox (jobs written in the same transaction as the change they announce)
-- and the webhook endpoints its deliveries go to. AUTOINCREMENT: job ids are the webhook-id and
-- event id receivers deduplicate by, so they must never be reused after a purge or a removal
-- (PostgreSQL's identity columns never reuse theirs either).
create table webhook (
    webhook_id  integer primary key autoincrement,
    url         text    not null,
    events      text    not null,            -- comma-separated event names, e.g. ticket.created
    -- Stored readable, not hashed: every delivery is signed with it (HMAC), so the sender needs
    -- it back. Only its holder and this database ever see it; listings leave it out.
    secret      text    not null,
    description text,
    created_at  integer not null
);

create table outbox_job (
    job_id          integer primary key autoincrement,
    kind            text    not null check (kind in ('dispatch', 'mail', 'webhook')),
    state           text    not null check (state in ('pending', 'done', 'dead')),
    payload         text    not null,
    topic           text,                    -- rate-limit key, e.g. autoresponse:ann@example.com
    webhook_id      integer references webhook (webhook_id) on delete cascade,
    attempts        integer not null default 0,
    next_attempt_at integer not null,        -- due time; while claimed, when the claim runs out
    claimed_by      text,                    -- the node that claimed it last
    last_result     text,
    created_at      integer not null,
    finished_at     integer
);

-- Workers look for due pending jobs; most rows are done, so the index holds only pending ones.
create index outbox_job_due on outbox_job (next_attempt_at, job_id) where state = 'pending';
create index outbox_job_topic on outbox_job (topic, created_at) where topic is not null;
create index outbox_job_webhook on outbox_job (webhook_id, job_id) where webhook_id is not null;
create index outbox_job_state on outbox_job (state, job_id);
