-- The 100 customers of ../shared/bench/wrk-tickets.lua (user_id 1 to 100, in order), for
-- bench/pg-ceiling's pgbench runs on a freshly migrated database that holds its one API key.
insert into users (name, created_at, updated_at)
select 'Wrk Customer ' || g, now(), now() from generate_series(0, 99) as g order by g;
insert into user_email (user_id, address, address_key, created_at)
select user_id, 'wrk.customer' || (user_id - 1) || '@example.com',
       'wrk.customer' || (user_id - 1) || '@example.com', now()
from users order by user_id;
