-- Mailboxes the desk fetches mail from (IMAP or POP3), and the lease that lets one node at a time
-- poll each of them.
create table mailbox (
    mailbox_id    integer primary key,
    protocol      text    not null check (protocol in ('imap', 'imaps', 'pop3', 'pop3s')),
    host          text    not null,
    port          integer not null check (port between 0 and 65535),
    username      text    not null,
    -- Stored as given, not hashed: unlike an API key secret, which we only ever compare, this
    -- password is one we must present to the mail server ourselves, so the fetcher needs it
    -- back. It never leaves the server: listings and logs show `MailboxAddress::redacted()`,
    -- which leaves it out. Protect the database file accordingly.
    password      text    not null,
    folder        text    not null,          -- IMAP folder; '' for POP3, which has none
    after_fetch   text    not null,          -- `AfterFetch::to_stored()`: seen, delete, archive:FOLDER
    poll_seconds  integer not null check (poll_seconds >= 0),
    created_at    integer not null,
    last_fetch_at integer,                   -- when the last fetch round ended
    last_error    text,                      -- that round's error; null when it went well
    lease_holder  text,                      -- the node polling it, while `lease_until` runs
    lease_until   integer,
    -- The same mailbox cannot be added twice.
    unique (protocol, host, port, username, folder)
);
