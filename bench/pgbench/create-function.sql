-- The statements of create.sql in one PL/pgSQL function, so that a create is one round trip
-- (one statement, its own transaction): what PostgreSQL could do for a create if the store sent
-- it all at once. Installed by bench/pg-ceiling on its scratch database only.
create function bench_create(u int, i bigint, n bigint) returns bigint
language plpgsql as $$
declare
    department bigint; status bigint; priority bigint; customer bigint;
    ticket bigint; entry bigint; hooks int;
begin
    select (select department_id from department where is_default order by department_id limit 1),
           (select status_id from ticket_status where is_default and state = 'open' order by status_id limit 1),
           (select priority_id from priority where is_default order by priority_id limit 1)
      into department, status, priority;
    select u2.user_id into customer from users u2 left join user_email e on e.user_id = u2.user_id
     where u2.user_id = (select user_id from user_email where address_key = 'wrk.customer' || u || '@example.com')
     order by e.user_email_id limit 1;
    insert into ticket (number, subject, user_id, department_id, topic_id, status_id, priority_id,
                        source, ip, is_answered, created_at, updated_at, last_message_at)
    values (n::text, 'wrk ticket ' || i || ': cannot submit order form', customer, department, null,
            status, priority, 'api', '127.0.0.1', false, now(), now(), now())
    on conflict (number) do nothing returning ticket_id into ticket;
    insert into thread_entry (ticket_id, kind, user_id, staff_id, display_name, title, body, format,
                              source, ip, api_key_id, mail_message_id, mail_in_reply_to,
                              mail_references, flags, created_at)
    values (ticket, 'message', customer, null, 'Wrk Customer ' || u,
            'wrk ticket ' || i || ': cannot submit order form',
            'Request ' || i || '. Our order system shows an error when we try to submit the form. We restarted the browser and cleared the cache, nothing changed.',
            'text', 'api', '127.0.0.1', 1, null, null, null, 0, now())
    returning entry_id into entry;
    insert into event (ticket_id, kind, actor_user_id, actor_staff_id, api_key_id, data, created_at)
    values (ticket, 'ticket_created', customer, null, 1,
            '{"entry_id":' || entry || ',"notify":{"alert":true,"autorespond":true},"number":"' || n || '","source":"api"}', now());
    select count(*) into hooks from webhook;
    return ticket;
end
$$;
