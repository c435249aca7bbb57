-- The Content-ID of a mail part kept as an attachment, so HTML bodies' `cid:` references can
-- be linked to it when the entry is shown.
alter table attachment add column content_id text;
