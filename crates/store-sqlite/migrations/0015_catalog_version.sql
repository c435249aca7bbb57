-- Every ticket view names the five catalogues (statuses, priorities, departments, help topics,
-- staff), and a unit of work that renders one — the `201` of `POST /api/v1/tickets` — read all
-- five tables on the single writer, where every statement delays the writes queued behind it.
-- They change seldom, so the writer keeps a copy, and this row says when it is out of date:
-- every row changed in one of the five tables moves it, in the same transaction (so also when
-- another process, the importer or the sqlite3 shell, changes them). The stamp is drawn anew at
-- every move: a change rolled back and another one made after it reach the same version number,
-- and only the stamp tells them apart. (Numbered 0015: PostgreSQL's 0013 is its own
-- counterpart of this.)
create table catalog_version (
    only_row integer primary key check (only_row = 1),
    version integer not null,
    stamp blob not null
);
insert into catalog_version (only_row, version, stamp) values (1, 1, randomblob(8));

create trigger department_insert_bumps_catalog_version after insert on department begin
    update catalog_version set version = version + 1, stamp = randomblob(8);
end;
create trigger department_update_bumps_catalog_version after update on department begin
    update catalog_version set version = version + 1, stamp = randomblob(8);
end;
create trigger department_delete_bumps_catalog_version after delete on department begin
    update catalog_version set version = version + 1, stamp = randomblob(8);
end;
create trigger priority_insert_bumps_catalog_version after insert on priority begin
    update catalog_version set version = version + 1, stamp = randomblob(8);
end;
create trigger priority_update_bumps_catalog_version after update on priority begin
    update catalog_version set version = version + 1, stamp = randomblob(8);
end;
create trigger priority_delete_bumps_catalog_version after delete on priority begin
    update catalog_version set version = version + 1, stamp = randomblob(8);
end;
create trigger staff_insert_bumps_catalog_version after insert on staff begin
    update catalog_version set version = version + 1, stamp = randomblob(8);
end;
create trigger staff_update_bumps_catalog_version after update on staff begin
    update catalog_version set version = version + 1, stamp = randomblob(8);
end;
create trigger staff_delete_bumps_catalog_version after delete on staff begin
    update catalog_version set version = version + 1, stamp = randomblob(8);
end;
create trigger ticket_status_insert_bumps_catalog_version after insert on ticket_status begin
    update catalog_version set version = version + 1, stamp = randomblob(8);
end;
create trigger ticket_status_update_bumps_catalog_version after update on ticket_status begin
    update catalog_version set version = version + 1, stamp = randomblob(8);
end;
create trigger ticket_status_delete_bumps_catalog_version after delete on ticket_status begin
    update catalog_version set version = version + 1, stamp = randomblob(8);
end;
create trigger help_topic_insert_bumps_catalog_version after insert on help_topic begin
    update catalog_version set version = version + 1, stamp = randomblob(8);
end;
create trigger help_topic_update_bumps_catalog_version after update on help_topic begin
    update catalog_version set version = version + 1, stamp = randomblob(8);
end;
create trigger help_topic_delete_bumps_catalog_version after delete on help_topic begin
    update catalog_version set version = version + 1, stamp = randomblob(8);
end;
