-- pgbench script: the statements the PostgreSQL store runs for one compatible create
-- (POST /api/tickets.json from an existing customer), as its statement log shows them, one round
-- trip each: BEGIN, the defaults, the customer, the ticket, its first entry, the event, the
-- webhook list, COMMIT. Values as ../shared/bench/wrk-tickets.lua sends them; a space follows
-- each colon in the event's JSON, where pgbench would take `:true` for a variable. Used by
-- bench/pg-ceiling. A copy: when the store's create changes, take the statements again from the
-- log (`alter database … set log_statement = 'all'`) and change create-function.sql alike.
\set u random(0, 99)
\set i random(1, 1000000000)
\set n random(100000, 999999999999)
BEGIN;
select (select department_id from department where is_default order by department_id limit 1), (select status_id from ticket_status where is_default and state = 'open' order by status_id limit 1), (select priority_id from priority where is_default order by priority_id limit 1);
select u.user_id, u.name, u.phone, u.notes, u.organization_id, u.created_at, u.updated_at, e.address from users u left join user_email e on e.user_id = u.user_id where u.user_id = (select user_id from user_email where address_key = 'wrk.customer' || :u::text || '@example.com') order by e.user_email_id;
insert into ticket (number, subject, user_id, department_id, topic_id, status_id, priority_id, source, ip, is_answered, created_at, updated_at, last_message_at) values (:n::text, 'wrk ticket ' || :i::text || ': cannot submit order form', :u + 1, 1, null, 1, 2, 'api', '127.0.0.1', false, now(), now(), now()) on conflict (number) do nothing returning ticket_id \gset
insert into thread_entry (ticket_id, kind, user_id, staff_id, display_name, title, body, format, source, ip, api_key_id, mail_message_id, mail_in_reply_to, mail_references, flags, created_at) values (:ticket_id, 'message', :u + 1, null, 'Wrk Customer ' || :u::text, 'wrk ticket ' || :i::text || ': cannot submit order form', 'Request ' || :i::text || '. Our order system shows an error when we try to submit the form. We restarted the browser and cleared the cache, nothing changed.', 'text', 'api', '127.0.0.1', 1, null, null, null, 0, now()) returning entry_id \gset
insert into event (ticket_id, kind, actor_user_id, actor_staff_id, api_key_id, data, created_at) values (:ticket_id, 'ticket_created', :u + 1, null, 1, '{"entry_id":' || :entry_id::text || ',"notify":{"alert": true, "autorespond": true},"number":"' || :n::text || '","source":"api"}', now()) returning event_id;
select webhook_id, url, events, secret, description, created_at from webhook order by webhook_id;
COMMIT;
