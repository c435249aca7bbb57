-- pgbench script: one compatible create as one call of bench_create (create-function.sql).
\set u random(0, 99)
\set i random(1, 1000000000)
\set n random(100000, 999999999999)
select bench_create(:u, :i, :n);
