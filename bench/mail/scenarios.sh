# shellcheck shell=bash
# bench/mail/scenarios.sh — the mail scenarios of bench/run (which sources this file, after
# bench/lib.sh, and calls scenario_mail_pipe / scenario_mail_imap URL KEY STORE DB_URL with a
# fresh database and a server running on it).
#
#   mail-pipe   messages/s through the intake pipeline over HTTP: bench/mail/wrk-raw-mail.lua
#               POSTs the SpamAssassin corpus (bench/mail/corpus, 6,046 real messages, fetched
#               once with npm) raw to osTicket's POST /api/tickets.email, each with a Message-ID
#               of its own, 8 connections (or --connections), BENCH_WARMUP s of warm-up and
#               BENCH_DURATION s measured, a fresh database per row. The row's note and JSON
#               line say what the measured messages became (bench/mail/outcomes.py: new tickets,
#               on a ticket, ignored, quarantined), read from the server's inbound records.
#   mail-imap   `helpline serve` watching an IMAP mailbox (IDLE) on the test Dovecot of
#               scripts/test: bench/mail/imap-latency.py appends corpus messages and reads the
#               server's own timestamps. Two rows: "mail-imap", BENCH_IMAP_RATE messages/s
#               (default 20) for BENCH_DURATION s, whose latency columns are APPEND completed ->
#               ticket/entry committed; and "mail-imap-burst", BENCH_IMAP_BURST messages
#               (default 1,000) appended at once, whose requests/s column is messages/s from the
#               first APPEND to the last one processed. The connections column is 1 (one IMAP
#               session appends, one watcher takes in).
#
# The IMAP scenario needs the test mail servers (Dovecot on 127.0.0.1:10143): when nothing
# answers there it starts them the way scripts/test does (installing Dovecot as root when
# missing) and stops them again afterwards; when they cannot be started it is skipped with a
# warning, or fails under CI=true. Likewise mail-pipe when the corpus cannot be fetched (npm).
#
# Environment:
#   HELPLINE_BENCH_CACHE      where the corpus is cached (default ~/.cache/helpline-bench)
#   BENCH_IMAP_USER           mailbox user (default mbox38: no test uses it; the tests take
#                             mbox01-36, mbox39 and mbox40), password BENCH_IMAP_PASSWORD (secret)
#   BENCH_IMAP_ADDRESS        IMAP host:port (default 127.0.0.1:10143)
#   BENCH_IMAP_RATE           steady rate, messages/s (default 20)
#   BENCH_IMAP_BURST          burst size (default 1000; 50 with --smoke)
#   BENCH_IMAP_AFTER          after-fetch option of `helpline mailbox add` (default none: the
#                             server flags each message \Seen; e.g. --delete, --archive Done)

MAIL_SCENARIO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BENCH_IMAP_USER=${BENCH_IMAP_USER:-mbox38}
BENCH_IMAP_PASSWORD=${BENCH_IMAP_PASSWORD:-secret}
BENCH_IMAP_ADDRESS=${BENCH_IMAP_ADDRESS:-127.0.0.1:10143}
BENCH_IMAP_RATE=${BENCH_IMAP_RATE:-20}
BENCH_IMAP_AFTER=${BENCH_IMAP_AFTER:-}
MAIL_CORPUS=${MAIL_CORPUS:-}
MAIL_SERVER_PIDS=

mail_is_ci() { [[ "${CI:-}" == true || "${CI:-}" == 1 ]]; }

# Skip a scenario with a loud warning, or die under CI=true.
mail_skip() {
    if mail_is_ci; then
        bench_die "$* (CI=true: not skipped)"
    fi
    bench_warn "$*: SKIPPED"
}

# → MAIL_CORPUS (the corpus directory, fetched once).
mail_corpus() {
    [[ -n "$MAIL_CORPUS" && -f "$MAIL_CORPUS/bench.msgs" ]] && return 0
    command -v python3 >/dev/null 2>&1 || { mail_skip "the mail scenarios need python3"; return 1; }
    MAIL_CORPUS=$("$MAIL_SCENARIO_DIR/corpus" 2>"$BENCH_TMP/corpus.log") || MAIL_CORPUS=
    if [[ -z "$MAIL_CORPUS" || ! -f "$MAIL_CORPUS/bench.msgs" ]]; then
        tail -n 20 "$BENCH_TMP/corpus.log" >&2
        MAIL_CORPUS=
        mail_skip "bench/mail/corpus could not fetch the mail corpus (npm)"
        return 1
    fi
}

# What the messages tagged TAG became, from the server's records.
# → MAIL_OUTCOMES (the outcomes line) and MAIL_TICKETS MAIL_THREADED MAIL_DUPLICATE
#   MAIL_IGNORED MAIL_QUARANTINED MAIL_PENDING
mail_outcomes() {
    local url=$1 key=$2 tag=$3
    local re='^outcomes: ([0-9]+) messages: new tickets ([0-9]+), on a ticket ([0-9]+), duplicate ([0-9]+), ignored ([0-9]+), quarantined ([0-9]+), pending ([0-9]+)'
    local out="$BENCH_TMP/outcomes.$tag.txt"
    timeout 600 python3 "$MAIL_SCENARIO_DIR/outcomes.py" --url "$url" --key "$key" --tag "$tag" >"$out" 2>&1 \
        || { cat "$out" >&2; bench_die "bench/mail/outcomes.py failed"; }
    MAIL_OUTCOMES=$(head -n 1 "$out")
    [[ "$MAIL_OUTCOMES" =~ $re ]] || { cat "$out" >&2; bench_die "bench/mail/outcomes.py printed no outcomes line"; }
    MAIL_TICKETS=${BASH_REMATCH[2]}
    MAIL_THREADED=${BASH_REMATCH[3]}
    MAIL_DUPLICATE=${BASH_REMATCH[4]}
    MAIL_IGNORED=${BASH_REMATCH[5]}
    MAIL_QUARANTINED=${BASH_REMATCH[6]}
    MAIL_PENDING=${BASH_REMATCH[7]}
    sed 's/^/    /' "$out" >&2
}

# One mail-pipe row against the running server.
mail_pipe_row() {
    local store=$1 connections=$2 url=$3 key=$4 threads tag script="$MAIL_SCENARIO_DIR/wrk-raw-mail.lua"
    threads=$((connections < BENCH_THREADS ? connections : BENCH_THREADS))
    tag="mailpipe$$x$RANDOM$RANDOM"
    bench_log "$store mail-pipe: $connections connections, ${BENCH_WARMUP} s warm-up, ${BENCH_DURATION} s measured"
    TAG="$tag-warm" API_KEY=$key MAIL_CORPUS=$MAIL_CORPUS warm_up "$script" "$connections" "$threads" "$url"
    TAG=$tag API_KEY=$key MAIL_CORPUS=$MAIL_CORPUS run_wrk "$script" "$connections" "$threads" "$BENCH_DURATION" "$url"
    measure_rss || bench_die "the server (pid $SERVER_PID) died during $store mail-pipe"
    server_alive || bench_die "the server stopped answering during $store mail-pipe"
    sleep 1 # requests still in flight when wrk stopped
    mail_outcomes "$url" "$key" "$tag."
    record_row "$store" mail-pipe "$connections" "$WRK_RPS" "$WRK_P50" "$WRK_P90" "$WRK_P99" \
        "$WRK_MAX" "$WRK_ERRORS" "${RSS_PEAK_MB:-}" \
        "corpus: $MAIL_TICKETS tickets, $MAIL_THREADED on a ticket, $MAIL_IGNORED ignored, $MAIL_QUARANTINED quarantined" \
        "requests=$WRK_REQUESTS" "seconds=$WRK_SECONDS" "mean_ms=$WRK_MEAN" "ok=$WRK_OK" \
        "non2xx=$WRK_NON2XX" "socket_errors=$WRK_SOCKET_ERRORS" "rss_mb=${RSS_MB:-}" \
        "threads=$threads" "warmup_s=$BENCH_WARMUP" "tickets=$MAIL_TICKETS" \
        "on_ticket=$MAIL_THREADED" "duplicate=$MAIL_DUPLICATE" "ignored=$MAIL_IGNORED" \
        "quarantined=$MAIL_QUARANTINED" "pending=$MAIL_PENDING"
}

scenario_mail_pipe() { # URL KEY STORE DB_URL
    local url=$1 key=$2 store=$3 c first=1
    mail_corpus || return 0
    connections_for 8
    for c in "${CONNS[@]}"; do
        if ((!first)); then
            # Every row on a fresh database and server of its own.
            stop_server
            fresh_database "$store"
            # shellcheck disable=SC2153 # DB_URL is fresh_database's answer
            create_key "$DB_URL"
            start_server "$DB_URL"
            url=$SERVER_URL key=$API_KEY
        fi
        first=0
        mail_pipe_row "$store" "$c" "$url" "$key"
    done
}

# Is the IMAP server up? Starts the test mail servers as scripts/test does when nothing answers.
# → MAIL_SERVER_PIDS (when this started them)
mail_servers_up() {
    local host=${BENCH_IMAP_ADDRESS%:*} port=${BENCH_IMAP_ADDRESS##*:}
    if timeout 3 bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null; then
        return 0
    fi
    if [[ "$BENCH_IMAP_ADDRESS" != 127.0.0.1:10143 ]]; then
        mail_skip "no IMAP server answers at $BENCH_IMAP_ADDRESS"
        return 1
    fi
    bench_log "starting the test mail servers (Dovecot, aiosmtpd) as scripts/test does"
    local log="$BENCH_TMP/mail-servers.log" pids="$BENCH_TMP/mail-servers.pids"
    # scripts/test up to its main part defines ensure_mail_servers; run in a subshell whose
    # exit leaves the servers running (their pids are written out to stop them afterwards).
    if ! (
        # shellcheck disable=SC1090
        source <(sed -n '1,/^# Main/p' "$BENCH_ROOT/scripts/test")
        trap - EXIT
        ensure_mail_servers && echo "$DOVECOT_PID $SMTPD_PID" >"$pids"
    ) >"$log" 2>&1; then
        tail -n 20 "$log" >&2
        mail_skip "the test mail servers could not be started (see above)"
        return 1
    fi
    MAIL_SERVER_PIDS=$(cat "$pids")
}

mail_servers_down() {
    [[ -n "$MAIL_SERVER_PIDS" ]] || return 0
    local pid i
    for pid in $MAIL_SERVER_PIDS; do kill "$pid" 2>/dev/null || true; done
    for pid in $MAIL_SERVER_PIDS; do
        for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    done
    MAIL_SERVER_PIDS=
}

# One imap-latency.py run → a row. MODE: steady or burst.
mail_imap_row() {
    local store=$1 url=$2 key=$3 mode=$4 count rate scenario out
    local re_status='^status taken in: ([0-9]+), other: ([0-9]+)'
    local re_messages='^messages ([0-9]+) in ([0-9.]+)s = ([0-9.]+) msg/s; latency ms p50 ([0-9.]+) p90 ([0-9.]+) p99 ([0-9.]+) max ([0-9.]+) mean ([0-9.]+)'
    if [[ $mode == steady ]]; then
        rate=$BENCH_IMAP_RATE
        count=$(awk -v r="$rate" -v d="$BENCH_DURATION" 'BEGIN { c = int(r * d + 0.5); print (c < 5 ? 5 : c) }')
        scenario=mail-imap
    else
        rate=0
        count=${BENCH_IMAP_BURST:-$(( ${SMOKE:-0} ? 50 : 1000 ))}
        scenario=mail-imap-burst
    fi
    out="$BENCH_TMP/imap-latency.$mode.$BENCH_DB_COUNTER.out"
    bench_log "$store $scenario: $count messages $([[ $rate == 0 ]] && echo 'at once' || echo "at $rate/s") into $BENCH_IMAP_USER"
    if ! timeout 900 python3 "$MAIL_SCENARIO_DIR/imap-latency.py" --imap "$BENCH_IMAP_ADDRESS" \
        --user "$BENCH_IMAP_USER" --password "$BENCH_IMAP_PASSWORD" --url "$url" --key "$key" \
        --corpus "$MAIL_CORPUS" --count "$count" --rate "$rate" --quiet \
        --tag "imap$$x$RANDOM$mode" >"$out" 2>&1; then
        # Exit status 1 with a summary: some messages were not taken in (counted as errors).
        grep -q '^status taken in: ' "$out" || { cat "$out" >&2; bench_die "bench/mail/imap-latency.py failed"; }
    fi
    sed 's/^/    /' "$out" >&2
    local status_line messages_line taken missing
    status_line=$(grep -E '^status taken in: ' "$out" | tail -n 1) || true
    messages_line=$(grep -E '^messages [0-9]+ in ' "$out" | tail -n 1) || true
    [[ "$status_line" =~ $re_status ]] || bench_die "no status line from imap-latency.py"
    taken=${BASH_REMATCH[1]} missing=${BASH_REMATCH[2]}
    [[ "$messages_line" =~ $re_messages ]] || bench_die "no messages line from imap-latency.py"
    local rps=${BASH_REMATCH[3]} p50=${BASH_REMATCH[4]} p90=${BASH_REMATCH[5]} p99=${BASH_REMATCH[6]}
    local max=${BASH_REMATCH[7]} mean=${BASH_REMATCH[8]} seconds=${BASH_REMATCH[2]}
    local mix intake
    mix=$(sed -n 's/^mail: \(.*\); fetched->stored.*/\1/p' "$out" | tail -n 1) || true
    intake=$(sed -n 's/^mail: .*; intake \([0-9.]*\)\/s .*/\1/p' "$out" | tail -n 1) || true
    measure_rss || bench_die "the server (pid $SERVER_PID) died during $store $scenario"
    record_row "$store" "$scenario" 1 "$rps" "$p50" "$p90" "$p99" "$max" "$missing" "${RSS_PEAK_MB:-}" \
        "$count msgs $([[ $rate == 0 ]] && echo 'at once' || echo "at $rate/s"), latency = arrival to ticket; $mix" \
        "messages=$count" "taken_in=$taken" "seconds=$seconds" "mean_ms=$mean" "rss_mb=${RSS_MB:-}" \
        "imap_user=$BENCH_IMAP_USER" "intake_per_s=${intake:-}"
}

scenario_mail_imap() { # URL KEY STORE DB_URL
    local url=$1 key=$2 store=$3 db_url=$4
    command -v python3 >/dev/null 2>&1 || { mail_skip "mail-imap needs python3"; return 0; }
    mail_corpus || return 0
    mail_servers_up || return 0
    # The mailbox is added before the server starts, so that it watches it from the start.
    stop_server
    local after=()
    [[ -z "$BENCH_IMAP_AFTER" ]] || read -r -a after <<<"$BENCH_IMAP_AFTER"
    timeout 120 "$HELPLINE_BIN" --database "$db_url" mailbox add \
        "imap://$BENCH_IMAP_USER:$BENCH_IMAP_PASSWORD@$BENCH_IMAP_ADDRESS/INBOX" \
        ${after[@]+"${after[@]}"} >"$BENCH_TMP/mailbox-add.out" 2>&1 \
        || { cat "$BENCH_TMP/mailbox-add.out" >&2; bench_die "helpline mailbox add failed"; }
    start_server "$db_url"
    mail_imap_row "$store" "$SERVER_URL" "$key" steady
    mail_imap_row "$store" "$SERVER_URL" "$key" burst
    server_alive || bench_die "the server stopped answering during $store mail-imap"
    stop_server
    mail_servers_down
}
