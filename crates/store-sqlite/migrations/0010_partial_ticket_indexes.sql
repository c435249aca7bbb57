-- Most tickets have no assignee and no help topic when they are opened, yet every new ticket
-- added an entry for its NULL to both indexes: two of the eight b-trees a ticket's insert
-- writes. The only queries these indexes serve filter by a value (`assignee_id = ?`,
-- `topic_id = ?`), which implies NOT NULL, so partial indexes serve them as before.
-- (Numbered 0010 on both stores: one number, one change.)
drop index ticket_by_assignee;
create index ticket_by_assignee on ticket (assignee_id, ticket_id) where assignee_id is not null;
drop index ticket_by_topic;
create index ticket_by_topic on ticket (topic_id, ticket_id) where topic_id is not null;
