-- Full-text indexing moves from each inserted row to the end of each commit.
--
-- The writer commits many units of work in one transaction, each inside a savepoint (group
-- commit). FTS5 writes its pending terms out as a new index segment at every savepoint, so
-- indexing row by row made one small segment per unit — and merges to match. Now an insert only
-- queues the entry in fts_pending; the writer indexes everything queued, in one statement, just
-- before it commits (same transaction: an entry is searchable exactly when it is committed).
-- Whoever writes thread_entry outside the store must do the same:
--     insert into thread_entry_fts (rowid, title, body)
--         select e.entry_id, e.title, e.body from fts_pending p
--         join thread_entry e on e.entry_id = p.entry_id;
--     delete from fts_pending;
create table fts_pending (
    entry_id integer primary key
);

drop trigger thread_entry_fts_insert;
drop trigger thread_entry_fts_delete;
drop trigger thread_entry_fts_update;

create trigger thread_entry_fts_queue after insert on thread_entry begin
    insert into fts_pending (entry_id) values (new.entry_id);
end;

-- An entry still queued is not in the index yet: removing its terms would corrupt the index,
-- and the queued indexing reads its current text anyway.
create trigger thread_entry_fts_delete after delete on thread_entry begin
    insert into thread_entry_fts (thread_entry_fts, rowid, title, body)
    select 'delete', old.entry_id, old.title, old.body
    where not exists (select 1 from fts_pending where entry_id = old.entry_id);
    delete from fts_pending where entry_id = old.entry_id;
end;

create trigger thread_entry_fts_update after update of title, body on thread_entry
when not exists (select 1 from fts_pending where entry_id = old.entry_id) begin
    insert into thread_entry_fts (thread_entry_fts, rowid, title, body)
    values ('delete', old.entry_id, old.title, old.body);
    insert into thread_entry_fts (rowid, title, body) values (new.entry_id, new.title, new.body);
end;
