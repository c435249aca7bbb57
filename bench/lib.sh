# shellcheck shell=bash
# shellcheck disable=SC2034  # the variables functions set are read by their callers
# bench/lib.sh — shared pieces of the benchmark harness, sourced by bench/run, bench/ab and
# bench/pg-ceiling (and by the scenario files of other benchmark families). Nothing here runs on
# its own.
#
# Globals it reads (bench/run sets them; defaults in brackets):
#   BENCH_ROOT           repository root                          [the directory above bench/]
#   HELPLINE_BIN         the helpline binary                      [$BENCH_ROOT/target/release/helpline]
#   BENCH_TMP            scratch directory, removed at exit       [made by bench_init]
#   BENCH_RESULTS_FILE   JSON lines file of this run              [set by bench_init]
#   BENCH_DURATION       seconds of measured load per row         [10]
#   BENCH_WARMUP         warm-up seconds (may be fractional)      [2]
#   BENCH_THREADS        wrk threads (at most one per connection) [2]
#   BENCH_START_TIMEOUT  seconds for a server to become ready     [60]
#   BENCH_PG_ADMIN_URL   PostgreSQL URL used to create databases  [$HELPLINE_BENCH_POSTGRES_URL or
#                                                                  postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable]
#
# Functions (each dies with a clear message on failure unless noted):
#   bench_log MSG… / bench_warn MSG… / bench_die MSG…
#   bench_init                      make BENCH_TMP, the results file, the exit trap's state
#   bench_cleanup                   stop the server, drop the PostgreSQL databases, remove BENCH_TMP
#   fresh_database STORE            → DB_URL (an empty database: sqlite or postgres)
#   create_key DB_URL               → API_KEY (admin scope, bound to 127.0.0.1)
#   start_server DB_URL             → SERVER_PID, SERVER_URL (http://127.0.0.1:PORT), SERVER_LOG;
#                                     rate limit off; returns once /readyz answers 200
#   stop_server                     SIGTERM (SIGKILL after 15 s) the server start_server started
#   server_alive                    status 0 when the server is running and /healthz answers
#   measure_rss [PID]               → RSS_PEAK_MB (VmHWM), RSS_MB (VmRSS) of PID [$SERVER_PID];
#                                     returns 1 (no die) when the process is gone
#   run_wrk SCRIPT CONNECTIONS THREADS DURATION URL
#                                   → WRK_REQUESTS WRK_SECONDS WRK_RPS WRK_P50 WRK_P90 WRK_P99
#                                     WRK_MAX WRK_MEAN (ms) WRK_OK WRK_NON2XX WRK_SOCKET_ERRORS
#                                     WRK_ERRORS (= non-2xx + socket errors) WRK_OUTPUT (raw file)
#                                     The Lua script reads its parameters from the environment:
#                                     prefix the call (API_KEY=… run_wrk …) or export them.
#   warm_up SCRIPT CONNECTIONS THREADS URL
#                                   BENCH_WARMUP seconds of the same load, nothing recorded
#   measure_wrk STORE SCENARIO SCRIPT CONNECTIONS URL [NOTE]
#                                   the whole measurement against the running server: warm_up,
#                                   run_wrk for BENCH_DURATION, measure_rss, a liveness check
#                                   (dies when the server died), record_wrk_row
#   record_row STORE SCENARIO CONNECTIONS RPS P50 P90 P99 MAX ERRORS RSS_MB [NOTE] [KEY=VALUE…]
#                                   one result: a table row and a JSON line (KEY=VALUE pairs become
#                                   extra JSON fields, numbers when they look like numbers); a row
#                                   with errors or RPS 0 marks the run as failed (BENCH_FAILED)
#   record_wrk_row STORE SCENARIO CONNECTIONS [NOTE]
#                                   record_row from the WRK_* and RSS_* variables
#   print_results                   the markdown table of every recorded row
#   seed_tickets URL KEY COUNT OUTFILE [REPLY_EVERY]
#                                   open COUNT tickets through POST /api/v1/tickets (customers
#                                   spread over 100 addresses, subjects and messages made of
#                                   BENCH_WORDS) and write "number:email" lines to OUTFILE; every
#                                   REPLY_EVERY-th ticket also gets a customer reply
#   seeded_database STORE COUNT [REPLY_EVERY]
#                                   a fresh database with COUNT seeded tickets, the seeding done by
#                                   a server of its own that is stopped again
#                                   → SEEDED_DB_URL SEEDED_KEY SEEDED_TICKETS_FILE
#   export_tickets URL KEY MAX OUTFILE
#                                   "number:email" lines of up to MAX existing tickets (newest
#                                   first), for databases seeded some other way (needs python3)

BENCH_ROOT=${BENCH_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
HELPLINE_BIN=${HELPLINE_BIN:-$BENCH_ROOT/target/release/helpline}
BENCH_DURATION=${BENCH_DURATION:-10}
BENCH_WARMUP=${BENCH_WARMUP:-2}
BENCH_THREADS=${BENCH_THREADS:-2}
BENCH_START_TIMEOUT=${BENCH_START_TIMEOUT:-60}
# No TLS by default: server and database share the machine (as osTicket's PHP and MariaDB did in
# the figures we compare with), and TLS on loopback only measures encryption.
BENCH_PG_ADMIN_URL=${BENCH_PG_ADMIN_URL:-${HELPLINE_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}}
# Words the seeded tickets are made of; the search scenario looks for them.
BENCH_WORDS=${BENCH_WORDS:-printer invoice password refund delivery network laptop monitor keyboard license upgrade backup mailbox calendar firewall scanner router payment warranty battery}
export BENCH_WORDS

BENCH_TMP=${BENCH_TMP:-}
BENCH_RESULTS_FILE=${BENCH_RESULTS_FILE:-}
BENCH_FAILED=${BENCH_FAILED:-0}
BENCH_ROWS=()
BENCH_PG_DATABASES=()
BENCH_DB_COUNTER=0
SERVER_PID=
SERVER_URL=
SERVER_LOG=

bench_log() { printf '==> %s\n' "$*" >&2; }
bench_warn() { printf 'WARNING: %s\n' "$*" >&2; }
bench_die() {
    printf 'ERROR: %s\n' "$*" >&2
    BENCH_LOG_SHOWN=1
    if [[ -n "${SERVER_LOG:-}" && -s "$SERVER_LOG" ]]; then
        printf -- '--- last lines of the server log (%s) ---\n' "$SERVER_LOG" >&2
        tail -n 30 "$SERVER_LOG" >&2 || true
        printf -- '---\n' >&2
    fi
    exit 1
}

bench_init() {
    if [[ -z "$BENCH_TMP" ]]; then
        BENCH_TMP=$(mktemp -d "${TMPDIR:-/tmp}/helpline-bench.XXXXXX")
    fi
    mkdir -p "$BENCH_TMP"
    if [[ -z "$BENCH_RESULTS_FILE" ]]; then
        mkdir -p "$BENCH_ROOT/bench/results"
        BENCH_RESULTS_FILE="$BENCH_ROOT/bench/results/$(date -u +%Y%m%dT%H%M%SZ).jsonl"
    fi
    BENCH_RUN_TS=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    BENCH_COMMIT=$(git -C "$BENCH_ROOT" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
    if ! git -C "$BENCH_ROOT" diff --quiet HEAD 2>/dev/null; then
        BENCH_COMMIT="$BENCH_COMMIT+uncommitted"
    fi
}

# Safe to call more than once and from a trap.
bench_cleanup() {
    stop_server || true
    local db
    for db in ${BENCH_PG_DATABASES[@]+"${BENCH_PG_DATABASES[@]}"}; do
        PGCONNECT_TIMEOUT=5 timeout 30 psql "$BENCH_PG_ADMIN_URL" -qAt -v ON_ERROR_STOP=1 \
            -c "drop database if exists $db with (force)" >/dev/null 2>&1 \
            || bench_warn "could not drop PostgreSQL database $db"
    done
    BENCH_PG_DATABASES=()
    if [[ -n "$BENCH_TMP" && -d "$BENCH_TMP" && "${BENCH_KEEP:-0}" != 1 ]]; then
        rm -rf "$BENCH_TMP"
    fi
}

# ---------------------------------------------------------------------------
# Databases, keys, servers
# ---------------------------------------------------------------------------

# Does PostgreSQL answer at BENCH_PG_ADMIN_URL? (no die)
postgres_answers() {
    command -v psql >/dev/null 2>&1 || return 1
    PGCONNECT_TIMEOUT=5 timeout 15 psql "$BENCH_PG_ADMIN_URL" -qAt -c 'select 1' >/dev/null 2>&1
}

# BENCH_PG_ADMIN_URL with its database name replaced by $1.
postgres_url_for() {
    local name=$1 url=$BENCH_PG_ADMIN_URL query='' rest
    if [[ "$url" == *\?* ]]; then
        query="?${url#*\?}"
        url=${url%%\?*}
    fi
    rest=${url#*://}
    if [[ "$rest" == */* ]]; then
        url="${url%://*}://${rest%%/*}"
    fi
    printf '%s/%s%s\n' "$url" "$name" "$query"
}

fresh_database() {
    local store=$1
    BENCH_DB_COUNTER=$((BENCH_DB_COUNTER + 1))
    case "$store" in
        sqlite)
            local dir="$BENCH_TMP/db$BENCH_DB_COUNTER"
            mkdir -p "$dir"
            DB_URL="sqlite://$dir/helpline.db"
            ;;
        postgres)
            local name="helpline_bench_$$_$BENCH_DB_COUNTER"
            PGCONNECT_TIMEOUT=5 timeout 60 psql "$BENCH_PG_ADMIN_URL" -qAt -v ON_ERROR_STOP=1 \
                -c "create database $name" >/dev/null \
                || bench_die "could not create PostgreSQL database $name at $BENCH_PG_ADMIN_URL"
            BENCH_PG_DATABASES+=("$name")
            DB_URL=$(postgres_url_for "$name")
            ;;
        *) bench_die "unknown store '$store' (sqlite or postgres)" ;;
    esac
}

create_key() {
    local db_url=$1 out
    out=$(timeout 120 "$HELPLINE_BIN" --database "$db_url" key create --ip 127.0.0.1 \
        --scope admin --note bench --json 2>"$BENCH_TMP/key.err") \
        || { cat "$BENCH_TMP/key.err" >&2; bench_die "helpline key create failed on $db_url"; }
    API_KEY=$(printf '%s' "$out" | sed -n 's/.*"key" *: *"\([^"]*\)".*/\1/p')
    [[ -n "$API_KEY" ]] || bench_die "helpline key create printed no key: $out"
}

# The TCP port PID listens on, from its socket inodes and /proc/PID/net/tcp (no log parsing).
listening_port() {
    local pid=$1 inodes
    inodes=$(find "/proc/$pid/fd" -lname 'socket:*' -printf '%l\n' 2>/dev/null \
        | sed -n 's/^socket:\[\([0-9]*\)\]$/\1/p' | paste -sd' ' -)
    [[ -n "$inodes" ]] || return 1
    local hex
    hex=$(awk -v inodes=" $inodes " '
        $4 == "0A" && index(inodes, " " $10 " ") { split($2, a, ":"); print a[2]; exit }' \
        "/proc/$pid/net/tcp" 2>/dev/null) || return 1
    [[ "$hex" =~ ^[0-9A-Fa-f]+$ ]] || return 1
    echo $((16#$hex))
}

# Is the process running (not gone, not a zombie)? (no die)
process_running() {
    local pid=$1 state
    [[ -n "$pid" && -r "/proc/$pid/status" ]] || return 1
    state=$(awk '/^State:/ { print $2 }' "/proc/$pid/status" 2>/dev/null) || return 1
    [[ -n "$state" && "$state" != Z && "$state" != X ]]
}

start_server() {
    local db_url=$1 port='' deadline
    [[ -z "$SERVER_PID" ]] || bench_die "start_server: a server is already running (pid $SERVER_PID)"
    BENCH_SERVER_COUNTER=$((${BENCH_SERVER_COUNTER:-0} + 1))
    SERVER_LOG="$BENCH_TMP/server$BENCH_SERVER_COUNTER.log"
    HELPLINE_RATE_LIMIT_PER_MINUTE=0 NO_COLOR=1 \
        "$HELPLINE_BIN" --database "$db_url" serve --listen 127.0.0.1:0 >"$SERVER_LOG" 2>&1 3>&- &
    SERVER_PID=$!
    deadline=$((SECONDS + BENCH_START_TIMEOUT))
    while [[ -z "$port" ]]; do
        process_running "$SERVER_PID" || bench_die "helpline serve exited while starting (database $db_url)"
        ((SECONDS < deadline)) || bench_die "helpline serve did not listen within ${BENCH_START_TIMEOUT}s"
        port=$(listening_port "$SERVER_PID") || port=''
        [[ -n "$port" ]] || sleep 0.1
    done
    SERVER_URL="http://127.0.0.1:$port"
    until curl -fsS --max-time 5 -o /dev/null "$SERVER_URL/readyz" 2>/dev/null; do
        process_running "$SERVER_PID" || bench_die "helpline serve exited while starting (database $db_url)"
        ((SECONDS < deadline)) || bench_die "$SERVER_URL/readyz did not answer 200 within ${BENCH_START_TIMEOUT}s"
        sleep 0.1
    done
}

stop_server() {
    [[ -n "${SERVER_PID:-}" ]] || return 0
    local pid=$SERVER_PID i
    SERVER_PID=
    if process_running "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 150; i++)); do
            process_running "$pid" || break
            sleep 0.1
        done
        if process_running "$pid"; then
            bench_warn "helpline serve (pid $pid) did not stop within 15 s of SIGTERM; killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    wait "$pid" 2>/dev/null || true
    SERVER_URL=
}

server_alive() {
    process_running "${SERVER_PID:-}" \
        && curl -fsS --max-time 5 -o /dev/null "$SERVER_URL/healthz" 2>/dev/null
}

measure_rss() {
    local pid=${1:-$SERVER_PID} values
    process_running "$pid" || return 1
    values=$(awk '/^VmHWM:/ { hwm = $2 } /^VmRSS:/ { rss = $2 }
        END { if (hwm == "" || rss == "") exit 1; printf "%.1f %.1f\n", hwm / 1024, rss / 1024 }' \
        "/proc/$pid/status" 2>/dev/null) || return 1
    read -r RSS_PEAK_MB RSS_MB <<<"$values"
}

# ---------------------------------------------------------------------------
# wrk
# ---------------------------------------------------------------------------

# wrk takes whole seconds: a fractional duration runs for the next whole second and is
# interrupted (SIGINT, after which wrk reports as usual) at the exact time.
wrk_timed() {
    local duration=$1
    shift
    if [[ "$duration" =~ ^[0-9]+$ ]]; then
        timeout --foreground -k 10 $((duration + 60)) wrk -d"${duration}s" "$@"
    else
        local whole
        whole=$(awk -v d="$duration" 'BEGIN { w = int(d); if (w < d) w++; if (w < 1) w = 1; print w }')
        local status=0
        timeout --foreground -s INT -k 60 "$duration" wrk -d"${whole}s" "$@" || status=$?
        # 124: timeout delivered the SIGINT, which is how this run ends.
        [[ $status == 124 ]] && status=0
        return "$status"
    fi
}

run_wrk() {
    local script=$1 connections=$2 threads=$3 duration=$4 url=$5 status_line requests_line
    local re_status='^status [0-9a-z]+: ([0-9]+), other: ([0-9]+), socket errors: connect ([0-9]+) read ([0-9]+) write ([0-9]+) timeout ([0-9]+)'
    local re_requests='^requests ([0-9]+) in ([0-9.]+)s = ([0-9.]+) req/s; latency ms p50 ([0-9.]+) p90 ([0-9.]+) p99 ([0-9.]+) max ([0-9.]+) mean ([0-9.]+)'
    [[ -f "$script" ]] || bench_die "run_wrk: no such script $script"
    WRK_OUTPUT="$BENCH_TMP/wrk.$(basename "$script" .lua).c$connections.$RANDOM.out"
    if ! wrk_timed "$duration" -t"$threads" -c"$connections" --latency -s "$script" "$url" \
        >"$WRK_OUTPUT" 2>&1; then
        cat "$WRK_OUTPUT" >&2
        bench_die "wrk failed ($script, $connections connections, $url)"
    fi
    status_line=$(grep -E '^status [0-9a-z]+: ' "$WRK_OUTPUT" | tail -n 1) || true
    requests_line=$(grep -E '^requests [0-9]+ in ' "$WRK_OUTPUT" | tail -n 1) || true
    if [[ ! "$status_line" =~ $re_status ]]; then
        cat "$WRK_OUTPUT" >&2
        bench_die "no status line in the output of $script (its done() must print it)"
    fi
    WRK_OK=${BASH_REMATCH[1]}
    WRK_NON2XX=${BASH_REMATCH[2]}
    WRK_SOCKET_ERRORS=$((BASH_REMATCH[3] + BASH_REMATCH[4] + BASH_REMATCH[5] + BASH_REMATCH[6]))
    WRK_ERRORS=$((WRK_NON2XX + WRK_SOCKET_ERRORS))
    if [[ ! "$requests_line" =~ $re_requests ]]; then
        cat "$WRK_OUTPUT" >&2
        bench_die "no requests line in the output of $script (its done() must print it)"
    fi
    WRK_REQUESTS=${BASH_REMATCH[1]}
    WRK_SECONDS=${BASH_REMATCH[2]}
    WRK_RPS=${BASH_REMATCH[3]}
    WRK_P50=${BASH_REMATCH[4]}
    WRK_P90=${BASH_REMATCH[5]}
    WRK_P99=${BASH_REMATCH[6]}
    WRK_MAX=${BASH_REMATCH[7]}
    WRK_MEAN=${BASH_REMATCH[8]}
    WRK_CONNECTIONS=$connections
    WRK_THREADS=$threads
}

warm_up() {
    local script=$1 connections=$2 threads=$3 url=$4 out="$BENCH_TMP/warmup.out"
    awk -v d="$BENCH_WARMUP" 'BEGIN { exit !(d > 0) }' || return 0
    wrk_timed "$BENCH_WARMUP" -t"$threads" -c"$connections" -s "$script" "$url" >"$out" 2>&1 \
        || { cat "$out" >&2; bench_die "wrk failed during the warm-up ($script, $url)"; }
}

measure_wrk() {
    local store=$1 scenario=$2 script=$3 connections=$4 url=$5 note=${6:-} threads
    threads=$((connections < BENCH_THREADS ? connections : BENCH_THREADS))
    bench_log "$store $scenario: $connections connections, ${BENCH_WARMUP} s warm-up, ${BENCH_DURATION} s measured"
    warm_up "$script" "$connections" "$threads" "$url"
    run_wrk "$script" "$connections" "$threads" "$BENCH_DURATION" "$url"
    measure_rss "$SERVER_PID" || bench_die "the server (pid $SERVER_PID) died during $store $scenario"
    server_alive || bench_die "the server stopped answering during $store $scenario"
    record_wrk_row "$store" "$scenario" "$connections" "$note"
}

# ---------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------

json_string() {
    local s=$1
    s=${s//\\/\\\\}
    s=${s//\"/\\\"}
    s=${s//$'\n'/\\n}
    s=${s//$'\t'/\\t}
    printf '"%s"' "$s"
}

json_value() {
    if [[ "$1" =~ ^-?(0|[1-9][0-9]*)(\.[0-9]+)?$ ]]; then
        printf '%s' "$1"
    else
        json_string "$1"
    fi
}

record_row() {
    (($# >= 10)) || bench_die "record_row needs STORE SCENARIO CONNECTIONS RPS P50 P90 P99 MAX ERRORS RSS_MB [NOTE] [KEY=VALUE…]"
    local store=$1 scenario=$2 connections=$3 rps=$4 p50=$5 p90=$6 p99=$7 max=$8 errors=$9
    local rss=${10} note=${11:-} line pair
    shift $(($# < 11 ? $# : 11))
    line="{\"run\":$(json_string "$BENCH_RUN_TS")"
    line+=",\"store\":$(json_string "$store"),\"scenario\":$(json_string "$scenario")"
    line+=",\"connections\":$(json_value "$connections"),\"rps\":$(json_value "$rps")"
    line+=",\"p50_ms\":$(json_value "$p50"),\"p90_ms\":$(json_value "$p90")"
    line+=",\"p99_ms\":$(json_value "$p99"),\"max_ms\":$(json_value "$max")"
    line+=",\"errors\":$(json_value "$errors"),\"rss_peak_mb\":$(json_value "$rss")"
    line+=",\"note\":$(json_string "$note")"
    for pair in "$@"; do
        [[ "$pair" == *=* ]] || bench_die "record_row: extra field '$pair' is not KEY=VALUE"
        line+=",$(json_string "${pair%%=*}"):$(json_value "${pair#*=}")"
    done
    line+=",\"build\":$(json_string "${BENCH_BUILD:-release}"),\"commit\":$(json_string "${BENCH_COMMIT:-unknown}")"
    line+=",\"host\":$(json_string "$(hostname 2>/dev/null || echo unknown)"),\"nproc\":$(nproc)}"
    printf '%s\n' "$line" >>"$BENCH_RESULTS_FILE"
    BENCH_ROWS+=("$store|$scenario|$connections|$rps|$p50|$p90|$p99|$max|$errors|$rss|$note")
    if [[ ! "$errors" =~ ^[0-9]+$ ]] || ((errors > 0)); then
        bench_warn "$store $scenario ($connections connections): $errors errors"
        BENCH_FAILED=1
    fi
    if awk -v r="$rps" 'BEGIN { exit !(r + 0 <= 0) }'; then
        bench_warn "$store $scenario ($connections connections): no requests completed"
        BENCH_FAILED=1
    fi
    bench_log "$store $scenario c=$connections: $rps req/s, p50 $p50 ms, p99 $p99 ms, errors $errors, peak RSS $rss MB"
}

record_wrk_row() {
    local store=$1 scenario=$2 connections=$3 note=${4:-}
    record_row "$store" "$scenario" "$connections" "$WRK_RPS" "$WRK_P50" "$WRK_P90" "$WRK_P99" \
        "$WRK_MAX" "$WRK_ERRORS" "${RSS_PEAK_MB:-}" "$note" \
        "requests=$WRK_REQUESTS" "seconds=$WRK_SECONDS" "mean_ms=$WRK_MEAN" "ok=$WRK_OK" \
        "non2xx=$WRK_NON2XX" "socket_errors=$WRK_SOCKET_ERRORS" "rss_mb=${RSS_MB:-}" \
        "threads=${WRK_THREADS:-}" "warmup_s=$BENCH_WARMUP"
}

print_results() {
    local row with_note=0 store scenario connections rps p50 p90 p99 max errors rss note
    for row in ${BENCH_ROWS[@]+"${BENCH_ROWS[@]}"}; do
        [[ "${row##*|}" == "" ]] || with_note=1
    done
    if ((with_note)); then
        printf '| store | scenario | connections | requests/s | p50 ms | p90 ms | p99 ms | max ms | errors | peak RSS MB | note |\n'
        printf '|---|---|--:|--:|--:|--:|--:|--:|--:|--:|---|\n'
    else
        printf '| store | scenario | connections | requests/s | p50 ms | p90 ms | p99 ms | max ms | errors | peak RSS MB |\n'
        printf '|---|---|--:|--:|--:|--:|--:|--:|--:|--:|\n'
    fi
    for row in ${BENCH_ROWS[@]+"${BENCH_ROWS[@]}"}; do
        IFS='|' read -r store scenario connections rps p50 p90 p99 max errors rss note <<<"$row"
        printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |' \
            "$store" "$scenario" "$connections" "$rps" "$p50" "$p90" "$p99" "$max" "$errors" "$rss"
        if ((with_note)); then printf ' %s |' "$note"; fi
        printf '\n'
    done
}

# ---------------------------------------------------------------------------
# Seeding through the API
# ---------------------------------------------------------------------------

# Appends one POST with a JSON body (no backslashes in it) to the curl config CONFIG.
curl_post_entry() {
    local config=$1 url=$2 key=$3 body=$4
    if [[ -s "$config" ]]; then printf 'next\n' >>"$config"; fi
    printf 'url = "%s"\nheader = "Authorization: Bearer %s"\nheader = "Content-Type: application/json"\ndata = "%s"\nwrite-out = " %%{http_code}\\n"\n' \
        "$url" "$key" "${body//\"/\\\"}" >>"$config"
}

# Runs the transfers of a curl config over one kept-alive connection; prints the status codes'
# tally check: dies unless every answer had the status $3.
curl_batch() {
    local config=$1 out=$2 want=$3 count=$4 got
    timeout 600 curl -sS --max-time 30 -K "$config" >"$out" 2>"$out.err" \
        || { tail -n 5 "$out.err" >&2; bench_die "seeding with curl failed (see above)"; }
    got=$(grep -c " $want\$" "$out" || true)
    if [[ "$got" != "$count" ]]; then
        grep -v " $want\$" "$out" | head -n 3 >&2
        bench_die "seeding: $got of $count requests answered $want"
    fi
}

seed_tickets() {
    local url=$1 key=$2 count=$3 outfile=$4 reply_every=${5:-0}
    local -a words
    read -r -a words <<<"$BENCH_WORDS"
    local nw=${#words[@]} i u w1 w2 config="$BENCH_TMP/seed.curl" out="$BENCH_TMP/seed.out"
    : >"$config"
    for ((i = 0; i < count; i++)); do
        u=$((i % 100))
        w1=${words[i % nw]}
        w2=${words[(i * 7 + 3) % nw]}
        curl_post_entry "$config" "$url/api/v1/tickets" "$key" \
            "{\"email\":\"bench.customer$u@example.com\",\"name\":\"Bench Customer $u\",\"subject\":\"Bench ticket $i: $w1 and $w2\",\"message\":\"Ticket $i from customer $u. The $w1 stopped working after the $w2 was replaced; restarting did not help.\"}"
    done
    curl_batch "$config" "$out" 201 "$count"
    # Each answer is the ticket on one line; its first "number" is the ticket number.
    awk '{ if (match($0, /"number":"[^"]*"/)) { n = substr($0, RSTART + 10, RLENGTH - 11);
            print n ":bench.customer" (NR - 1) % 100 "@example.com" } }' "$out" >"$outfile"
    [[ $(wc -l <"$outfile") == "$count" ]] || bench_die "seeding: could not read the ticket numbers"
    if ((reply_every > 0)); then
        local number email replies=0
        : >"$config"
        i=0
        while IFS=: read -r number email; do
            if ((i % reply_every == 0)); then
                w1=${words[(i * 3 + 1) % nw]}
                curl_post_entry "$config" "$url/api/v1/tickets/$number/messages" "$key" \
                    "{\"email\":\"$email\",\"message\":\"Still broken: the $w1 keeps failing since yesterday.\"}"
                replies=$((replies + 1))
            fi
            i=$((i + 1))
        done <"$outfile"
        curl_batch "$config" "$out" 201 "$replies"
    fi
}

seeded_database() {
    local store=$1 count=$2 reply_every=${3:-0}
    fresh_database "$store"
    create_key "$DB_URL"
    start_server "$DB_URL"
    SEEDED_TICKETS_FILE="$BENCH_TMP/tickets.$BENCH_DB_COUNTER"
    bench_log "$store: seeding $count tickets"
    seed_tickets "$SERVER_URL" "$API_KEY" "$count" "$SEEDED_TICKETS_FILE" "$reply_every"
    stop_server
    SEEDED_DB_URL=$DB_URL
    SEEDED_KEY=$API_KEY
}

export_tickets() {
    local url=$1 key=$2 max=$3 outfile=$4
    command -v python3 >/dev/null 2>&1 || bench_die "export_tickets needs python3"
    timeout 600 python3 - "$url" "$key" "$max" >"$outfile" <<'PY' || bench_die "could not list the tickets at $url"
import json, sys, urllib.parse, urllib.request
url, key, left = sys.argv[1], sys.argv[2], int(sys.argv[3])
cursor = None
while left > 0:
    query = {"limit": str(min(100, left))}
    if cursor:
        query["cursor"] = cursor
    request = urllib.request.Request(url + "/api/v1/tickets?" + urllib.parse.urlencode(query),
                                     headers={"Authorization": "Bearer " + key})
    page = json.load(urllib.request.urlopen(request, timeout=30))
    for ticket in page["tickets"]:
        print(f'{ticket["number"]}:{ticket["customer"]["email"]}')
        left -= 1
    cursor = page.get("next_cursor")
    if not cursor:
        break
PY
    [[ -s "$outfile" ]] || bench_die "no tickets at $url"
}
