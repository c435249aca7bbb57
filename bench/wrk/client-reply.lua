-- wrk script: customer replies (POST /api/v1/tickets/{number}/messages) spread over existing
-- tickets, loopback only.
-- env: API_KEY (messages:create), TICKETS = "number:email,number:email,…" (owners of each ticket)
-- usage: API_KEY=... TICKETS=... wrk -t2 -c8 -d10s --latency -s bench/wrk/client-reply.lua http://127.0.0.1:8080
-- (bench/run client-reply creates the tickets and runs it)
local threads = {}
local next_id = 0
function setup(thread)
  thread:set("tid", next_id); next_id = next_id + 1
  table.insert(threads, thread)
end
function init(args)
  key = os.getenv("API_KEY"); n = 0; non201 = 0; s201 = 0
  tickets = {}
  for pair in string.gmatch(os.getenv("TICKETS"), "[^,]+") do
    local number, email = string.match(pair, "([^:]+):(.+)")
    table.insert(tickets, {number = number, email = email})
  end
end
function request()
  n = n + 1
  local t = tickets[((tid * 7919 + n) % #tickets) + 1]
  local body = string.format('{"email":"%s","message":"Reply %d from thread %d: the form still fails after clearing the cache."}', t.email, n, tid)
  return wrk.format("POST", "/api/v1/tickets/" .. t.number .. "/messages",
    {["Authorization"] = "Bearer " .. key, ["Content-Type"] = "application/json"}, body)
end
function response(status, headers, body)
  if status == 201 then s201 = s201 + 1 else non201 = non201 + 1 end
end
function done(summary, latency, requests)
  local ok, bad = 0, 0
  for _, t in ipairs(threads) do ok = ok + t:get("s201"); bad = bad + t:get("non201") end
  io.write(string.format("status 201: %d, other: %d, socket errors: connect %d read %d write %d timeout %d\n",
    ok, bad, summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout))
  io.write(string.format("requests %d in %.2fs = %.2f req/s; latency ms p50 %.1f p90 %.1f p99 %.1f max %.1f mean %.1f\n",
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000, latency.mean / 1000))
end
