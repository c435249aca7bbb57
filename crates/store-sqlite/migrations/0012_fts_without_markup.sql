-- The full-text index reads an entry's text without HTML markup: `search_text(body, format)`,
-- a function the store registers on every connection it opens (src/search_text.rs). Before,
-- an HTML body's tag and attribute names and link targets were indexed, so a search for `href`
-- found every HTML mail with a link; PostgreSQL's parser never indexed markup.
-- (Numbered 0012: PostgreSQL's 0011 is a change of its own.)
--
-- The index is an external-content table over thread_entry, and what it holds is no longer the
-- content table's text: its 'rebuild' command would index the markup again. Rebuild it by
-- queueing every entry instead, as below. Removing an entry's terms needs the text indexed, so
-- the triggers pass the same rendering. A connection without the function (sqlx's, which runs
-- these migrations; the sqlite3 shell) can still insert entries and read, but updating or
-- deleting an entry fails on the triggers: a later migration that must do so drops the two
-- triggers first and makes them again after, re-queueing the entries it changed.
drop trigger thread_entry_fts_delete;
drop trigger thread_entry_fts_update;

create trigger thread_entry_fts_delete after delete on thread_entry begin
    insert into thread_entry_fts (thread_entry_fts, rowid, title, body)
    select 'delete', old.entry_id, old.title, search_text(old.body, old.format)
    where not exists (select 1 from fts_pending where entry_id = old.entry_id);
    delete from fts_pending where entry_id = old.entry_id;
end;

create trigger thread_entry_fts_update after update of title, body, format on thread_entry
when not exists (select 1 from fts_pending where entry_id = old.entry_id) begin
    insert into thread_entry_fts (thread_entry_fts, rowid, title, body)
    values ('delete', old.entry_id, old.title, search_text(old.body, old.format));
    insert into thread_entry_fts (rowid, title, body)
    values (new.entry_id, new.title, search_text(new.body, new.format));
end;

-- Every entry is indexed again, with the function, by the store when it opens the database
-- (before it takes any write): the migration runs on a connection without it.
insert into thread_entry_fts (thread_entry_fts) values ('delete-all');
insert into fts_pending (entry_id) select entry_id from thread_entry;
