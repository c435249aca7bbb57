# shellcheck shell=bash
# bench/scale/scenarios.sh — the scale scenario of bench/run (which sources this file, after
# bench/lib.sh, and calls scenario_scale URL KEY STORE DB_URL with a fresh, migrated database
# and a server running on it).
#
#   scale   bench/scale/seed fills the database straight in SQL with SCALE_TICKETS tickets
#           (default 1,000,000; 2,000 with --smoke) of SCALE_ENTRIES_PER_TICKET entries each on
#           average (default 5), then three rows are measured on a fresh server each, 8
#           connections (or --connections), BENCH_WARMUP s of warm-up, BENCH_DURATION s:
#             scale-get-ticket     GET /api/v1/tickets/{number}, random seeded tickets
#                                  (bench/scale/get-ticket.lua)
#             scale-list-customer  GET /api/v1/tickets?customer_email=…, random customers with
#                                  tickets (bench/scale/list-customer.lua)
#             scale-search         GET /api/v1/tickets?q=…, common, middling and rare words and
#                                  word pairs in turn (bench/scale/search.lua; SCALE_QUERIES
#                                  replaces its list)
#           Each row's note gives the size, the seeding time and rate, and the database's size
#           on disk; its JSON line has them as seed_s, seed_rows, seed_rows_per_s and db_mb.
#
# Environment:
#   SCALE_TICKETS             tickets to seed (default 1000000)
#   SCALE_ENTRIES_PER_TICKET  entries per ticket on average (default 5)
#   SCALE_QUERIES             search queries, comma-separated (default: the script's mix)

SCALE_SCENARIO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# The database's size on disk in MB. → SCALE_DB_MB
scale_database_size() {
    local db_url=$1 bytes=0 file
    case "$db_url" in
        sqlite:*)
            file=${db_url#sqlite:}
            file=${file#//}
            file=${file%%\?*}
            for f in "$file" "$file-wal" "$file-shm"; do
                [[ -f "$f" ]] && bytes=$((bytes + $(stat -c %s "$f")))
            done
            ;;
        *)
            bytes=$(PGCONNECT_TIMEOUT=5 timeout 60 psql "$db_url" -qAt \
                -c 'select pg_database_size(current_database())') || bytes=0
            ;;
    esac
    SCALE_DB_MB=$(awk -v b="$bytes" 'BEGIN { printf "%.0f", b / 1048576 }')
}

scenario_scale() {
    local key=$2 store=$3 db_url=$4 c
    local tickets=${SCALE_TICKETS:-}
    if [[ -z "$tickets" ]]; then
        if ((${SMOKE:-0})); then tickets=2000; else tickets=1000000; fi
    fi
    local per=${SCALE_ENTRIES_PER_TICKET:-5}
    local samples="$BENCH_TMP/scale-samples.$store" log="$BENCH_TMP/scale-seed.$store.log"
    local re='^seed: ([0-9]+) rows in ([0-9.]+) s = ([0-9,]+) rows/s'
    [[ -x /usr/bin/python3 ]] || bench_die "bench/scale/seed needs /usr/bin/python3 (with sqlite3)"
    # The seeder writes straight into the database: no server on it meanwhile.
    stop_server
    bench_log "$store scale: seeding $tickets tickets, $per entries each on average (bench/scale/seed)"
    timeout 7200 "$SCALE_SCENARIO_DIR/seed" --database "$db_url" --tickets "$tickets" \
        --entries-per-ticket "$per" --samples "$samples" >"$log" 2>&1 \
        || { tail -n 30 "$log" >&2; bench_die "bench/scale/seed failed on $db_url"; }
    local summary
    summary=$(grep -E "$re" "$log" | tail -n 1)
    [[ "$summary" =~ $re ]] || { tail -n 30 "$log" >&2; bench_die "bench/scale/seed printed no summary"; }
    local seed_rows=${BASH_REMATCH[1]} seed_s=${BASH_REMATCH[2]} seed_rate=${BASH_REMATCH[3]//,/}
    scale_database_size "$db_url"
    bench_log "$store scale: $seed_rows rows in $seed_s s ($seed_rate rows/s), database $SCALE_DB_MB MB"
    local note="$tickets tickets; seeded in $seed_s s ($seed_rate rows/s); database $SCALE_DB_MB MB"
    local scenario script
    connections_for 8
    for scenario in get-ticket list-customer search; do
        script="$SCALE_SCENARIO_DIR/$scenario.lua"
        for c in "${CONNS[@]}"; do
            start_server "$db_url"
            API_KEY=$key SCALE_NUMBERS=$samples/numbers.txt SCALE_CUSTOMERS=$samples/customers.txt \
                scale_measure "$store" "scale-$scenario" "$script" "$c" "$note" \
                "seed_s=$seed_s" "seed_rows=$seed_rows" "seed_rows_per_s=$seed_rate" \
                "db_mb=$SCALE_DB_MB" "tickets=$tickets"
            stop_server
        done
    done
}

# measure_wrk with extra KEY=VALUE fields in the JSON line.
scale_measure() {
    local store=$1 scenario=$2 script=$3 connections=$4 note=$5 threads
    shift 5
    threads=$((connections < BENCH_THREADS ? connections : BENCH_THREADS))
    bench_log "$store $scenario: $connections connections, ${BENCH_WARMUP} s warm-up, ${BENCH_DURATION} s measured"
    warm_up "$script" "$connections" "$threads" "$SERVER_URL"
    run_wrk "$script" "$connections" "$threads" "$BENCH_DURATION" "$SERVER_URL"
    measure_rss "$SERVER_PID" || bench_die "the server (pid $SERVER_PID) died during $store $scenario"
    server_alive || bench_die "the server stopped answering during $store $scenario"
    record_row "$store" "$scenario" "$connections" "$WRK_RPS" "$WRK_P50" "$WRK_P90" "$WRK_P99" \
        "$WRK_MAX" "$WRK_ERRORS" "${RSS_PEAK_MB:-}" "$note" \
        "requests=$WRK_REQUESTS" "seconds=$WRK_SECONDS" "mean_ms=$WRK_MEAN" "ok=$WRK_OK" \
        "non2xx=$WRK_NON2XX" "socket_errors=$WRK_SOCKET_ERRORS" "rss_mb=${RSS_MB:-}" \
        "threads=$threads" "warmup_s=$BENCH_WARMUP" "$@"
}
