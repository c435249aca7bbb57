#!/usr/bin/env python3
"""Outbox throughput: notification mails per second from `helpline serve` to a local SMTP server.

Starts an aiosmtpd sink on loopback (Debian's python3-aiosmtpd), a release `helpline serve` on a
fresh database with one staff member in the default department, opens TICKETS tickets through
POST /api/v1/tickets with CONNECTIONS clients (each ticket causes two mails: the customer's
autoresponse and the staff member's new-ticket alert), and waits until the outbox is empty. It
prints how fast tickets went in, how fast the mails went out (from the first mail job created to
the last one sent, as the database recorded them), and how long the backlog took to drain once
the last ticket was in (the outbox alone, no request competing).

usage: bench/outbox-smtp.py [--tickets 2000] [--connections 8] [--database postgres://…]
(the default database is a fresh SQLite file; a PostgreSQL URL must name an empty database)
"""

import argparse
import http.client
import json
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY = os.environ.get("HELPLINE_BIN", os.path.join(ROOT, "target", "release", "helpline"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, seconds=20):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing answers on port {port}")


def smtp_python():
    """A Python that has aiosmtpd: this one, or Debian's (python3-aiosmtpd)."""
    for candidate in (sys.executable, "/usr/bin/python3"):
        if subprocess.run([candidate, "-c", "import aiosmtpd"],
                          capture_output=True).returncode == 0:
            return candidate
    sys.exit("aiosmtpd is missing: apt-get install python3-aiosmtpd (or pip install aiosmtpd)")


def run(args, cwd):
    done = subprocess.run([BINARY, *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"helpline {' '.join(args)} failed: {done.stderr}")
    return done.stdout


def mail_jobs(database, workdir):
    """(mail jobs, pending jobs of any kind, first mail created, last mail finished) in seconds."""
    if database.startswith("sqlite://"):
        path = database[len("sqlite://"):]
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            total, first, last = db.execute(
                "select count(*), min(created_at), max(finished_at) from outbox_job "
                "where kind = 'mail' and state = 'done'").fetchone()
            pending = db.execute(
                "select count(*) from outbox_job where state = 'pending'").fetchone()[0]
        scale = 1e6
    else:
        out = subprocess.run(
            ["psql", "-At", "-F", ",", database, "-c",
             "select count(*), extract(epoch from min(created_at)), "
             "extract(epoch from max(finished_at)), "
             "(select count(*) from outbox_job where state = 'pending') "
             "from outbox_job where kind = 'mail' and state = 'done'"],
            capture_output=True, text=True, check=True).stdout.strip().split(",")
        total, first, last, pending = int(out[0]), out[1], out[2], int(out[3])
        first = float(first) if first else None
        last = float(last) if last else None
        scale = 1.0
    if first is None or last is None:
        return total, pending, None, None
    return total, pending, first / scale, last / scale


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--database")
    options = parser.parse_args()
    if not os.path.exists(BINARY):
        subprocess.run(["cargo", "build", "--release", "-p", "helpline"], cwd=ROOT, check=True)

    work = tempfile.mkdtemp(prefix="helpline-outbox-bench-")
    database = options.database or f"sqlite://{work}/bench.db"
    smtp_port, http_port = free_port(), free_port()
    sink = subprocess.Popen(
        [smtp_python(), "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{smtp_port}",
         "-c", "aiosmtpd.handlers.Sink"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = None
    try:
        wait_for_port(smtp_port)
        with open(os.path.join(work, "helpline.toml"), "w") as config:
            config.write(f'smtp_url = "smtp://127.0.0.1:{smtp_port}"\n'
                         'mail_from = "support@bench.example"\n'
                         f'log = "{os.environ.get("BENCH_LOG", "warn")}"\n')
        common = ["--config", "helpline.toml", "--database", database]
        run([*common, "staff", "add", "--username", "agent", "--name", "Agent",
             "--email", "agent@bench.example", "--department", "Support"], work)
        key = json.loads(run([*common, "key", "create", "--ip", "127.0.0.1", "--scope",
                              "tickets:create", "--json"], work))["key"]
        server = subprocess.Popen(
            [BINARY, *common, "serve", "--listen", f"127.0.0.1:{http_port}"],
            cwd=work, stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(work, "serve.log"), "w"))
        wait_for_port(http_port)

        counter = iter(range(options.tickets))
        lock = threading.Lock()
        failures = []

        def client():
            conn = http.client.HTTPConnection("127.0.0.1", http_port)
            while True:
                with lock:
                    n = next(counter, None)
                if n is None:
                    return
                body = json.dumps({"email": f"customer{n}@bench.example", "name": f"Customer {n}",
                                   "subject": f"Bench ticket {n}", "message": "Please help."})
                conn.request("POST", "/api/v1/tickets", body,
                             {"Authorization": f"Bearer {key}",
                              "Content-Type": "application/json"})
                answer = conn.getresponse()
                answer.read()
                if answer.status != 201:
                    failures.append(answer.status)

        started = time.time()
        threads = [threading.Thread(target=client) for _ in range(options.connections)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        created = time.time()
        sent_while_creating = mail_jobs(database, work)[0]
        if failures:
            sys.exit(f"{len(failures)} ticket creations failed: {failures[:5]}")
        expected = 2 * options.tickets
        while True:
            total, pending, first, last = mail_jobs(database, work)
            if total >= expected and pending == 0:
                break
            if time.time() - created > 600:
                sys.exit(f"only {total} of {expected} mails sent after 10 minutes")
            time.sleep(0.2)
        drained = time.time()
        backend = "PostgreSQL" if database.startswith("postgres") else "SQLite"
        print(f"store: {backend}; {options.tickets} tickets with {options.connections} connections")
        print(f"tickets in: {options.tickets / (created - started):,.0f}/s "
              f"({created - started:.2f} s)")
        print(f"mails out: {total} in {last - first:.2f} s = {total / (last - first):,.0f}/s "
              "(first mail job made to last mail sent)")
        backlog = total - sent_while_creating
        print(f"backlog of {backlog} mails when the last ticket was in, drained in "
              f"{drained - created:.2f} s = {backlog / (drained - created):,.0f}/s "
              "(the outbox alone)")
        print(f"(server log: {work}/serve.log)")
    finally:
        if server:
            server.terminate()
            server.wait()
        sink.terminate()
        sink.wait()


if __name__ == "__main__":
    main()
