-- What an import from another help desk (osTicket, issue 7) needs stored: the map from the
-- source's row ids to ours, customer organisations, SLAs, each customer's organisation and each
-- staff member's password hash. (Numbered 0009 after 0008, as on PostgreSQL: one number, one
-- change, on both stores.)

-- Which of our rows each imported source record became. The primary key both lets a re-run of
-- an import find what it already brought over and refuses to map one source record twice.
-- `kind` is `LegacyKind::as_str()`; `target_id` is the id column of the table the kind names.
create table legacy_id (
    kind      text    not null,
    source_id integer not null,
    target_id integer not null,
    primary key (kind, source_id)
) without rowid;

-- Customer organisations. Names are unique regardless of case, like department names.
create table organization (
    organization_id integer primary key,
    name            text    not null unique collate nocase,
    domain          text,   -- mail domain(s) of its people, as the source desk kept them
    created_at      integer not null,
    updated_at      integer not null
);

alter table users add column organization_id integer references organization;
-- An organisation's people, and what a removed organisation's foreign-key check reads.
create index users_by_organization on users (organization_id)
    where organization_id is not null;

-- Service-level agreements: how many hours a ticket under one may wait for an answer.
create table sla (
    sla_id      integer primary key,
    name        text    not null unique collate nocase,
    grace_hours integer not null,
    created_at  integer not null
);

-- The staff member's password hash as the source desk stored it (null: none set), so that the
-- old password keeps working once staff sign in to Helpline.
alter table staff add column password_hash text;
