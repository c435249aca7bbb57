#!/usr/bin/env python3
"""What the messages a benchmark sent became, from the server's own inbound records.

  bench/mail/outcomes.py --url http://127.0.0.1:8080 --key ADMIN_KEY [--tag TAG] [--json]

Reads every record of GET /api/v1/inbound (each status, all pages; an admin key) and counts
them: new tickets, posted on an existing ticket (customer replies, unknown-sender messages,
staff or bounce notes), duplicates, ignored (loops, bounces about nothing of ours),
quarantined (with the reasons), pending; and, among them, the classes (normal, bulk,
auto_reply, bounce) and the rules. --tag keeps only records whose Message-ID contains TAG
(the wrk script's or imap-latency.py's run tag); records without a Message-ID (a few corpus
messages have none the parser accepts) cannot be attributed and are counted apart. Prints one
line

  outcomes: N messages: new tickets A, on a ticket B, duplicate C, ignored D, quarantined E, pending F

then the classes, the rules and the quarantine reasons, most frequent first (stdlib only).
"""

import argparse
import json
import re
import sys
import urllib.parse
import urllib.request

STATUSES = ["processed", "duplicate", "ignored", "quarantined", "pending"]


def records(url, key, status):
    cursor = None
    while True:
        query = {"status": status, "limit": 100}
        if cursor:
            query["cursor"] = cursor
        request = urllib.request.Request(
            f"{url.rstrip('/')}/api/v1/inbound?{urllib.parse.urlencode(query)}",
            headers={"Authorization": f"Bearer {key}"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            page = json.load(response)
        yield from page["messages"]
        cursor = page.get("next_cursor")
        if not cursor:
            return


def general(rule):
    """A rule without the ids, numbers and addresses of one message."""
    rule = re.sub(r"<[^>]*>", "<id>", rule or "")
    rule = re.sub(r"\[#[^\]]*\]", "[#n]", rule)
    rule = re.sub(r"[\w.+-]+@[\w.-]+", "ADDRESS", rule)
    return re.sub(r"\d+", "N", rule)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True)
    p.add_argument("--key", required=True, help="API key with scope admin")
    p.add_argument("--tag", help="only records whose Message-ID contains this")
    p.add_argument("--json", action="store_true", help="print the counts as one JSON object")
    p.add_argument("--top", type=int, default=12, help="rules and reasons to list")
    args = p.parse_args()

    kinds = {"ticket": 0, "thread": 0, "duplicate": 0, "ignored": 0, "quarantined": 0, "pending": 0}
    classes, rules, reasons = {}, {}, {}
    total = 0
    no_id = {}
    for status in STATUSES:
        for r in records(args.url, args.key, status):
            if args.tag and args.tag not in (r.get("message_id") or ""):
                if not r.get("message_id"):
                    # No Message-ID the parser could read (e.g. "<abc>" without an "@"): cannot
                    # be told apart by tag, so counted on their own.
                    kind = "ticket" if "a new ticket" in (r.get("rule") or "") else r["status"]
                    no_id[kind] = no_id.get(kind, 0) + 1
                continue
            total += 1
            rule = r.get("rule") or ""
            if status == "processed":
                kind = "ticket" if "a new ticket" in rule else "thread"
            else:
                kind = status
            kinds[kind] += 1
            cls = r.get("class") or "-"
            classes[cls] = classes.get(cls, 0) + 1
            key = f"{status}: {general(rule)}"
            if status == "quarantined":
                reasons[general(rule)] = reasons.get(general(rule), 0) + 1
            else:
                rules[key] = rules.get(key, 0) + 1

    line = (f"outcomes: {total} messages: new tickets {kinds['ticket']}, on a ticket {kinds['thread']}, "
            f"duplicate {kinds['duplicate']}, ignored {kinds['ignored']}, "
            f"quarantined {kinds['quarantined']}, pending {kinds['pending']}")
    if args.tag and no_id:
        line += ("; besides, without a Message-ID (any run): "
                 + ", ".join(f"{k} {n}" for k, n in sorted(no_id.items())))
    if args.json:
        print(json.dumps({"messages": total, "outcomes": kinds, "classes": classes,
                          "rules": rules, "quarantine_reasons": reasons,
                          "without_message_id": no_id}, sort_keys=True))
        return 0
    print(line)
    print("classes: " + ", ".join(f"{c} {n}" for c, n in sorted(classes.items(), key=lambda x: -x[1])))
    for title, table in (("rules", rules), ("quarantine reasons", reasons)):
        if table:
            print(f"{title}:")
            for text, n in sorted(table.items(), key=lambda x: -x[1])[: args.top]:
                print(f"  {n:6d}  {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
