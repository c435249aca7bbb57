#!/usr/bin/env python3
"""IMAP arrival-to-ticket latency and throughput of `helpline serve` watching a mailbox.

Appends corpus messages (bench/mail/corpus) into an IMAP folder that a running `helpline serve`
watches (a mailbox added with `helpline mailbox add 'imap://USER:PASS@HOST:PORT/INBOX'`; the
server uses IMAP IDLE), either at a steady rate (--rate 20: one message every 50 ms), recording
when each APPEND completed, or all at once (--rate 0, "burst": appended to a staging folder
first, then moved into the watched folder with one MOVE, whose completion is their arrival).
Helpline takes them in; once none is left unseen in the folder (the server flags, moves or
deletes each message only after its outcome is committed), the script reads the server's own
records of them (GET /api/v1/inbound, an admin key): when each was stored (`received_at`) and
when its outcome was committed (`processed_at`), on the same machine's clock, and reports:

  * latency, arrival (APPEND or MOVE completed) -> processed (the ticket or entry exists):
    p50/p90/p99/max/mean, and the part of it until the message was stored (the fetch). Dovecot
    tells an IDLE client of new mail 0.5 s after it notices it (NOTIFY_DELAY_MSECS in its
    mailbox-watch.c), so about 0.5 s of an isolated message's latency is the mail server's;
  * throughput: messages / (last processed - first APPEND (or the MOVE) started), and the
    server's own pace once busy (first to last processed: "intake");
  * what the messages became (new tickets, replies/notes on a ticket, ignored, quarantined).

Each message gets a Message-ID unique to the run (the corpus placeholder "@@HLTAG@@." is
replaced by "<tag>.", so replies still thread to their parents of the same run), its mbox
"From " line is dropped and line endings are CRLF (imaplib sends them so).

Output: `result: {...}` (everything as one JSON object), a `mail:` line (outcomes, intake rate),
and last two lines shaped like the wrk scripts' summary (requests -> messages):
  status taken in: N, other: K (not taken in within T s)
  messages N in S s = R msg/s; latency ms p50 A p90 B p99 C max D mean E
Exit status 1 when some message was not taken in within --timeout.

Usage (stdlib only):
  bench/mail/imap-latency.py --imap 127.0.0.1:10143 --user mbox38 --password secret \\
      --url http://127.0.0.1:8080 --key ADMIN_KEY --count 500 --rate 20
  ... --count 1000 --rate 0          # burst
The folder is emptied first (--keep to leave it); one warm-up message is sent and awaited
before measuring, so that the watcher is known to be idling on the folder.
"""

import argparse
import datetime
import imaplib
import json
import math
import os
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request

PLACEHOLDER = b"@@HLTAG@@."


def load_corpus(path):
    if os.path.isdir(path):
        path = os.path.join(path, "bench.msgs")
    data = open(path, "rb").read()
    messages, pos = [], 0
    while pos < len(data):
        nl = data.index(b"\n", pos)
        length = int(data[pos:nl])
        messages.append(data[nl + 1 : nl + 1 + length])
        pos = nl + 1 + length + 1
    if not messages:
        sys.exit(f"imap-latency: no messages in {path}")
    return messages


def prepare(message, tag):
    """The message as a mail server would store it: no mbox line, ids tagged."""
    if message.startswith(b"From "):
        message = message.split(b"\n", 1)[1] if b"\n" in message else b""
    return message.replace(PLACEHOLDER, tag.encode() + b".")


RFC3339 = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")


def timestamp(text):
    """Seconds since the epoch of an RFC 3339 time (any number of fraction digits)."""
    m = RFC3339.match(text)
    if not m:
        raise ValueError(f"not an RFC 3339 time: {text}")
    y, mo, d, h, mi, s, frac, zone = m.groups()
    tz = datetime.timezone.utc
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        tz = datetime.timezone(sign * datetime.timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
    at = datetime.datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), tzinfo=tz)
    return at.timestamp() + (float("0." + frac) if frac else 0.0)


class Api:
    def __init__(self, url, key):
        self.url = url.rstrip("/")
        self.key = key

    def get(self, path, query):
        url = f"{self.url}{path}?{urllib.parse.urlencode(query)}"
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {self.key}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)

    def inbound(self, statuses, since):
        """Every inbound record with one of `statuses` received at or after `since`."""
        records = []
        for status in statuses:
            cursor = None
            while True:
                query = {"status": status, "limit": 100}
                if cursor:
                    query["cursor"] = cursor
                page = self.get("/api/v1/inbound", query)
                records += [r for r in page["messages"] if timestamp(r["received_at"]) >= since - 1]
                cursor = page.get("next_cursor")
                if not cursor:
                    break
        return records


STATUSES = ["processed", "duplicate", "ignored", "quarantined", "pending"]


def percentile(values, p):
    """Nearest-rank percentile (as wrk reports them)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(p / 100.0 * len(ordered))))
    return ordered[rank - 1]


def unseen(imap):
    imap.noop()
    typ, data = imap.search(None, "UNSEEN")
    if typ != "OK":
        raise RuntimeError(f"SEARCH UNSEEN failed: {data}")
    return len(data[0].split()) if data and data[0] else 0


def wait_for(api, imap, ids, since, timeout, quiet=False):
    """Waits until nothing is unseen in the folder and every id in `ids` has a record with a
    final status, or `timeout` passes. Returns {message_id: record}."""
    deadline = time.time() + timeout
    found = {}
    while True:
        left = unseen(imap)
        if left == 0 or time.time() > deadline:
            for record in api.inbound(STATUSES, since):
                mid = (record.get("message_id") or "").strip()
                if mid in ids and record["status"] != "pending":
                    found[mid] = record
            if len(found) >= len(ids) or time.time() > deadline:
                return found
        elif not quiet:
            print(f"  {left} unseen in the folder", file=sys.stderr)
        time.sleep(0.2 if left == 0 else 1.0)


def outcome_kind(record):
    status, rule = record["status"], record.get("rule") or ""
    if status != "processed":
        return status
    return "ticket" if "a new ticket" in rule else "thread"


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--imap", default="127.0.0.1:10143", help="HOST:PORT of the IMAP server (plain)")
    p.add_argument("--user", default="mbox38")
    p.add_argument("--password", default="secret")
    p.add_argument("--folder", default="INBOX")
    p.add_argument("--url", required=True, help="Helpline base URL")
    p.add_argument("--key", required=True, help="API key with scope admin (reads /api/v1/inbound)")
    p.add_argument("--corpus", help="bench.msgs or its directory (default: bench/mail/corpus)")
    p.add_argument("--count", type=int, default=500, help="messages to append")
    p.add_argument("--offset", type=int, default=0, help="first corpus message")
    p.add_argument("--rate", type=float, default=20.0, help="messages per second; 0 = all at once")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for processing")
    p.add_argument("--tag", default=f"imap{int(time.time())}", help="run tag in the Message-IDs")
    p.add_argument("--keep", action="store_true", help="do not empty the folder first")
    p.add_argument("--staging", default="HelplineBenchStaging",
                   help="folder the burst is staged in before it is moved (created when missing)")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args()

    corpus_path = args.corpus or subprocess.run(
        [os.path.join(here, "corpus")], check=True, capture_output=True, text=True
    ).stdout.strip()
    corpus = load_corpus(corpus_path)
    api = Api(args.url, args.key)
    host, _, port = args.imap.rpartition(":")
    imap = imaplib.IMAP4(host, int(port))
    imap.login(args.user, args.password)
    typ, _ = imap.select(args.folder)
    if typ != "OK":
        sys.exit(f"imap-latency: cannot select {args.folder}")
    if not args.keep:
        typ, data = imap.search(None, "ALL")
        if data and data[0]:
            imap.store("1:*", "+FLAGS.SILENT", r"(\Deleted)")
            imap.expunge()

    def message_id(raw):
        m = re.search(rb"(?im)^message-id:[ \t]*(?:\r?\n[ \t]+)?(<[^>\r\n]*>)", raw.split(b"\n\n", 1)[0])
        return m.group(1).decode("utf-8", "replace").strip() if m else None

    # Warm-up: one message, awaited, so the watcher is known to be connected and idling.
    warm_tag = f"{args.tag}.warm"
    warm = prepare(corpus[0], warm_tag)
    warm_id = message_id(warm)
    since = time.time()
    imap.append(args.folder, None, None, warm)
    found = wait_for(api, imap, {warm_id}, since, min(args.timeout, 90), quiet=True)
    if warm_id not in found:
        sys.exit(f"imap-latency: the warm-up message {warm_id} was not taken in within "
                 f"{min(args.timeout, 90):.0f} s: is `helpline serve` watching {args.user}/{args.folder}?")
    time.sleep(1.0)  # let the watcher go back to IDLE

    messages = []
    for i in range(args.count):
        raw = prepare(corpus[(args.offset + i) % len(corpus)], f"{args.tag}.p{(args.offset + i) // len(corpus)}")
        messages.append((message_id(raw), raw))
    ids = {mid for mid, _ in messages if mid}

    appended = {}
    if args.rate > 0:
        start = time.time()
        for i, (mid, raw) in enumerate(messages):
            pause = start + i / args.rate - time.time()
            if pause > 0:
                time.sleep(pause)
            typ, data = imap.append(args.folder, None, None, raw)
            if typ != "OK":
                sys.exit(f"imap-latency: APPEND failed: {data}")
            appended[mid] = time.time()
        append_seconds = time.time() - start
        if not args.quiet:
            print(f"appended {len(messages)} in {append_seconds:.2f}s "
                  f"({len(messages) / append_seconds:.1f}/s)", file=sys.stderr)
    else:
        # Burst: the messages are appended to a staging folder first (one APPEND at a time is
        # slower than Helpline takes them in), then moved into the watched folder with one
        # MOVE: they all arrive at once, when the MOVE completes.
        imap.create(args.staging)  # fails harmlessly when it exists
        typ, data = imap.select(args.staging)
        if typ != "OK":
            sys.exit(f"imap-latency: cannot select the staging folder {args.staging}: {data}")
        typ, data = imap.search(None, "ALL")
        if data and data[0]:
            imap.store("1:*", "+FLAGS.SILENT", r"(\Deleted)")
            imap.expunge()
        staged = time.time()
        for mid, raw in messages:
            typ, data = imap.append(args.staging, None, None, raw)
            if typ != "OK":
                sys.exit(f"imap-latency: APPEND failed: {data}")
        append_seconds = time.time() - staged
        if not args.quiet:
            print(f"staged {len(messages)} in {append_seconds:.2f}s; moving them into "
                  f"{args.folder} at once", file=sys.stderr)
        start = time.time()
        typ, data = imap.uid("MOVE", "1:*", args.folder)
        if typ != "OK":
            sys.exit(f"imap-latency: MOVE into {args.folder} failed: {data}")
        arrived = time.time()
        appended = {mid: arrived for mid, _ in messages}
        imap.select(args.folder)

    found = wait_for(api, imap, ids, start, args.timeout, quiet=args.quiet)
    imap.logout()

    to_processed, to_stored, kinds = [], [], {}
    last, first = start, None
    for mid, record in found.items():
        kinds[outcome_kind(record)] = kinds.get(outcome_kind(record), 0) + 1
        done = timestamp(record["processed_at"]) if record.get("processed_at") else None
        if done is None:
            continue
        last = max(last, done)
        first = done if first is None else min(first, done)
        to_processed.append((done - appended[mid]) * 1000)
        to_stored.append((timestamp(record["received_at"]) - appended[mid]) * 1000)
    missing = len(ids) - len(found)
    seconds = max(last - start, 1e-9)
    processed = len(found)
    ms = lambda values, q: percentile(values, q)
    result = {
        "mode": "burst" if args.rate <= 0 else f"{args.rate:g}/s",
        "messages": len(messages),
        "without_message_id": len(messages) - len(ids),
        "taken_in": processed,
        "missing": missing,
        "append_seconds": round(append_seconds, 3),
        "seconds_first_append_to_last_processed": round(seconds, 3),
        "messages_per_second": round(processed / seconds, 2),
        # The server's own pace once it is busy: first to last message processed.
        "intake_per_second": round((len(to_processed) - 1) / (last - first), 2)
        if first is not None and last > first else None,
        "latency_ms": {q: round(ms(to_processed, v), 1) for q, v in
                       (("p50", 50), ("p90", 90), ("p99", 99), ("max", 100))},
        "to_stored_ms": {q: round(ms(to_stored, v), 1) for q, v in
                         (("p50", 50), ("p90", 90), ("p99", 99), ("max", 100))},
        "outcomes": kinds,
    }
    mean = sum(to_processed) / len(to_processed) if to_processed else float("nan")
    print("result: " + json.dumps(result, sort_keys=True))
    print(f"mail: new tickets {kinds.get('ticket', 0)}, on a ticket {kinds.get('thread', 0)}, "
          f"duplicate {kinds.get('duplicate', 0)}, ignored {kinds.get('ignored', 0)}, "
          f"quarantined {kinds.get('quarantined', 0)}; intake {result['intake_per_second']}/s "
          f"(first to last processed); fetched->stored ms p50 "
          f"{result['to_stored_ms']['p50']:.1f} p99 {result['to_stored_ms']['p99']:.1f}")
    print(f"status taken in: {processed}, other: {missing} (not taken in within {args.timeout:g} s)")
    print(f"messages {processed} in {seconds:.2f}s = {processed / seconds:.2f} msg/s; latency ms "
          f"p50 {ms(to_processed, 50):.1f} p90 {ms(to_processed, 90):.1f} p99 {ms(to_processed, 99):.1f} "
          f"max {ms(to_processed, 100):.1f} mean {mean:.1f}")
    return 0 if missing == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
