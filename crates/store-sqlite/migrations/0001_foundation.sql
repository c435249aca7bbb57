-- Helpline's first schema on SQLite.
-- Times are INTEGER microseconds since the Unix epoch (UTC): exact to compare and sort, unlike
-- RFC 3339 text whose variable fraction length breaks lexical order.
-- Tables are singular; `users` is the exception because `user` is reserved in PostgreSQL and
-- both stores keep the same names.

create table department (
    department_id integer primary key,
    name          text    not null unique collate nocase,
    is_default    integer not null default 0,
    created_at    integer not null
);

create table priority (
    priority_id integer primary key,
    name        text    not null unique collate nocase,
    urgency     integer not null,
    is_default  integer not null default 0
);

create table ticket_status (
    status_id    integer primary key,
    name         text    not null unique collate nocase,
    state        text    not null check (state in ('open', 'closed', 'archived')),
    allow_reopen integer not null,
    is_default   integer not null default 0
);

create table help_topic (
    topic_id      integer primary key,
    name          text    not null unique collate nocase,
    department_id integer not null references department,
    priority_id   integer references priority,
    active        integer not null default 1,
    created_at    integer not null
);

create table staff (
    staff_id      integer primary key,
    username      text    not null unique collate nocase,
    name          text    not null,
    email         text    not null,
    email_key     text    not null unique,
    department_id integer not null references department,
    active        integer not null default 1,
    created_at    integer not null
);

create table users (
    user_id    integer primary key,
    name       text    not null,
    phone      text,
    notes      text,
    created_at integer not null,
    updated_at integer not null
);

-- One row per address; `address_key` is the lower-cased address and decides identity.
create table user_email (
    user_email_id integer primary key,
    user_id       integer not null references users,
    address       text    not null,
    address_key   text    not null unique,
    created_at    integer not null
);
create index user_email_by_user on user_email (user_id, user_email_id);

create table api_key (
    api_key_id integer primary key,
    key_hash   text    not null unique, -- hex SHA-256 of the secret; the secret is never stored
    prefix     text    not null,
    ip_rules   text    not null,        -- addresses / CIDR blocks separated by spaces
    scopes     text    not null,        -- scope names separated by spaces
    note       text,
    created_at integer not null,
    revoked_at integer
);

create table ticket (
    ticket_id        integer primary key,
    number           text    not null unique,
    subject          text    not null,
    user_id          integer not null references users,
    department_id    integer not null references department,
    topic_id         integer references help_topic,
    status_id        integer not null references ticket_status,
    priority_id      integer not null references priority,
    source           text    not null check (source in ('api', 'email', 'web', 'phone', 'other')),
    ip               text,
    assignee_id      integer references staff,
    is_answered      integer not null default 0,
    due_at           integer,
    created_at       integer not null,
    updated_at       integer not null,
    last_message_at  integer,
    last_response_at integer,
    closed_at        integer,
    reopened_at      integer
);
create index ticket_by_user on ticket (user_id, ticket_id);
create index ticket_by_updated on ticket (updated_at, ticket_id);

create table thread_entry (
    entry_id        integer primary key,
    ticket_id       integer not null references ticket,
    kind            text    not null check (kind in ('message', 'response', 'note')),
    user_id         integer references users,
    staff_id        integer references staff,
    display_name    text    not null,
    title           text,
    body            text    not null,
    format          text    not null check (format in ('text', 'html')),
    source          text    not null,
    ip              text,
    api_key_id      integer references api_key,
    mail_message_id text,
    mail_in_reply_to text,
    mail_references text,
    created_at      integer not null
);
create index thread_entry_by_ticket on thread_entry (ticket_id, entry_id);
create index thread_entry_by_message_id on thread_entry (mail_message_id)
    where mail_message_id is not null;

-- File content, stored once per distinct content.
create table file (
    file_id    integer primary key,
    sha256     text    not null unique,
    size       integer not null,
    content    blob    not null,
    created_at integer not null
);

create table attachment (
    attachment_id integer primary key,
    entry_id      integer not null references thread_entry,
    file_id       integer not null references file,
    filename      text    not null,
    content_type  text    not null
);
create index attachment_by_entry on attachment (entry_id, attachment_id);

create table collaborator (
    ticket_id  integer not null references ticket,
    user_id    integer not null references users,
    created_at integer not null,
    primary key (ticket_id, user_id)
);

create table event (
    event_id       integer primary key,
    ticket_id      integer references ticket,
    kind           text    not null,
    actor_user_id  integer,
    actor_staff_id integer,
    api_key_id     integer,
    data           text    not null,
    created_at     integer not null
);
create index event_by_ticket on event (ticket_id, event_id);

-- Named counters (sequential ticket numbers).
create table counter (
    name       text    primary key,
    next_value integer not null
);

-- What osTicket's installer seeds.
insert into department (department_id, name, is_default, created_at)
values (1, 'Support', 1, cast(strftime('%s', 'now') as integer) * 1000000);

insert into ticket_status (status_id, name, state, allow_reopen, is_default) values
    (1, 'Open', 'open', 0, 1),
    (2, 'Resolved', 'closed', 1, 0),
    (3, 'Closed', 'closed', 1, 0),
    (4, 'Archived', 'archived', 0, 0);

insert into priority (priority_id, name, urgency, is_default) values
    (1, 'Low', 4, 0),
    (2, 'Normal', 3, 1),
    (3, 'High', 2, 0),
    (4, 'Emergency', 1, 0);

insert into help_topic (topic_id, name, department_id, priority_id, active, created_at)
values (1, 'General Inquiry', 1, null, 1, cast(strftime('%s', 'now') as integer) * 1000000);
