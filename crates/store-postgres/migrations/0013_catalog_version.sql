-- Every ticket view names the five catalogues (statuses, priorities, departments, help topics,
-- staff), and reading them was one of the three round trips a `GET` of a ticket took. They
-- change seldom, so each server keeps them in memory, and this counter says when its copy is
-- out of date: every statement that changes one of the five tables adds one to it, in the same
-- transaction. A server reads the counter with the ticket (same statement) and reads the
-- catalogues again only when it moved, so several servers on one database never show a
-- catalogue older than the ticket they read. Each move also draws a new random stamp: a
-- database restored or recovered to an earlier point while servers run counts the same numbers
-- again, and the stamp tells those apart.
create table catalog_version (
    only_row boolean primary key default true check (only_row),
    version bigint not null,
    stamp uuid not null default gen_random_uuid()
);
insert into catalog_version (version) values (1);

-- `set search_path from current`: the function names our table, and must find it whatever the
-- search path of the session that changes a catalogue.
create function bump_catalog_version() returns trigger
language plpgsql set search_path from current as $$
begin
    update catalog_version set version = version + 1, stamp = gen_random_uuid();
    return null;
end;
$$;

create trigger department_bumps_catalog_version
    after insert or update or delete or truncate on department
    for each statement execute function bump_catalog_version();
create trigger priority_bumps_catalog_version
    after insert or update or delete or truncate on priority
    for each statement execute function bump_catalog_version();
create trigger staff_bumps_catalog_version
    after insert or update or delete or truncate on staff
    for each statement execute function bump_catalog_version();
create trigger ticket_status_bumps_catalog_version
    after insert or update or delete or truncate on ticket_status
    for each statement execute function bump_catalog_version();
create trigger help_topic_bumps_catalog_version
    after insert or update or delete or truncate on help_topic
    for each statement execute function bump_catalog_version();
