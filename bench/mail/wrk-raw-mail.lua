-- wrk script: POST raw messages of a real mail corpus to /api/tickets.email, osTicket's
-- remote-piping route (what automail.php/automail.pl do), loopback only.
--
-- env: API_KEY (scope tickets:create), MAIL_CORPUS (the corpus's bench.msgs, or the directory
--      holding it: what bench/mail/corpus prints), TAG (optional: part of every Message-ID,
--      it must differ between runs against one database; default: the start time and random
--      digits)
-- usage: API_KEY=... MAIL_CORPUS=$(bench/mail/corpus) \
--          wrk -t2 -c8 -d10s --latency -s bench/mail/wrk-raw-mail.lua http://127.0.0.1:8080
--
-- Each request is one corpus message, cycling through the corpus (thread N starts N * 0.618
-- (mod 1) of the way in, so that a short run with two threads still covers most of it), with the "@@HLTAG@@." placeholder of its id headers replaced by
-- "<TAG>.t<thread>.p<pass>.": every request is a new Message-ID (intake would skip a repeated
-- one as a duplicate), and a reply's In-Reply-To/References still name its parent of the same
-- pass, so threading works as it did on the original mail.
--
-- The server answers 201 whenever the message is stored: with the ticket number when it was
-- posted (a new ticket or an entry on one), empty when it was kept without being posted (an
-- unmatched bounce, a loop, a quarantined message); see docs/mail.md. done() prints those two
-- counts, then the same two summary lines as ../shared/bench/wrk-tickets.lua (last, so that the
-- harness parses them the same way). What each message became (ticket, reply, note, ignored,
-- quarantined) is in the server's inbound records: bench/mail/outcomes.py.
local threads = {}
local next_id = 0
function setup(thread)
  thread:set("tid", next_id); next_id = next_id + 1
  table.insert(threads, thread)
end

local function load_corpus(path)
  -- A directory opens too (and reads as nothing): try the file in it first.
  local f = io.open(path .. "/bench.msgs", "rb") or io.open(path, "rb")
  local data = f and f:read("*a")
  if f then f:close() end
  if not data then
    error("MAIL_CORPUS: cannot read " .. path .. " (nor " .. path .. "/bench.msgs); run bench/mail/corpus")
  end
  local list, pos = {}, 1
  while pos <= #data do
    local nl = string.find(data, "\n", pos, true)
    if not nl then break end
    local len = tonumber(string.sub(data, pos, nl - 1))
    if not len then error("MAIL_CORPUS: " .. path .. " is not a bench.msgs file") end
    table.insert(list, string.sub(data, nl + 1, nl + len))
    pos = nl + len + 2
  end
  if #list == 0 then error("MAIL_CORPUS: no messages in " .. path) end
  return list
end

function init(args)
  key = os.getenv("API_KEY"); n = 0; non201 = 0; s201 = 0; posted = 0; kept = 0
  run = os.getenv("TAG")
  if not run then
    local f, salt = io.open("/dev/urandom", "rb"), ""
    if f then
      salt = string.gsub(f:read(4), ".", function(c) return string.format("%02x", string.byte(c)) end)
      f:close()
    end
    run = string.format("wrk%d%s", os.time(), salt)
  end
  corpus = load_corpus(os.getenv("MAIL_CORPUS") or error("MAIL_CORPUS is not set"))
  start = math.floor(#corpus * ((tid * 0.6180339887) % 1))
  headers = {["X-API-Key"] = key, ["Content-Type"] = "message/rfc822"}
end

function request()
  local i = start + n
  n = n + 1
  local pass = math.floor(i / #corpus)
  local message = corpus[(i % #corpus) + 1]
  local body = string.gsub(message, "@@HLTAG@@", string.format("%s.t%d.p%d", run, tid, pass))
  return wrk.format("POST", "/api/tickets.email", headers, body)
end

function response(status, headers, body)
  if status == 201 then
    s201 = s201 + 1
    if body ~= nil and #body > 0 then posted = posted + 1 else kept = kept + 1 end
  else
    non201 = non201 + 1
  end
end

function done(summary, latency, requests)
  local ok, bad, with_ticket, without = 0, 0, 0, 0
  for _, t in ipairs(threads) do
    ok = ok + t:get("s201"); bad = bad + t:get("non201")
    with_ticket = with_ticket + t:get("posted"); without = without + t:get("kept")
  end
  io.write(string.format("mail: 201 with a ticket number %d, 201 empty (stored, not posted) %d\n",
    with_ticket, without))
  io.write(string.format("status 201: %d, other: %d, socket errors: connect %d read %d write %d timeout %d\n",
    ok, bad, summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout))
  io.write(string.format("requests %d in %.2fs = %.2f req/s; latency ms p50 %.1f p90 %.1f p99 %.1f max %.1f mean %.1f\n",
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000, latency.mean / 1000))
end
