-- wrk script: open a distinct ticket per request with POST /api/v1/tickets (loopback only), the
-- v1 counterpart of ../shared/bench/wrk-tickets.lua: customers spread over 100 addresses.
-- env: API_KEY (tickets:create); NO_ALERT=1 sends "notify": false; TAG (default "wrk") starts
-- each subject.
-- usage: API_KEY=... wrk -t2 -c8 -d10s --latency -s bench/wrk/create-v1.lua http://127.0.0.1:8080
local threads = {}
local next_id = 0
function setup(thread)
  thread:set("tid", next_id); next_id = next_id + 1
  table.insert(threads, thread)
end
function init(args)
  key = os.getenv("API_KEY"); n = 0; non2xx = 0; ok2xx = 0
  notify = os.getenv("NO_ALERT") and ',"notify":false' or ''
  tag = os.getenv("TAG") or "wrk"
end
function request()
  n = n + 1
  local i = tid * 10000000 + n
  local u = i % 100
  local body = string.format('{"name":"Wrk Customer %d","email":"wrk.customer%d@example.com","subject":"%s v1 ticket %d: cannot submit order form","message":"Request %d. Our order system shows an error when we try to submit the form. We restarted the browser and cleared the cache, nothing changed."%s}', u, u, tag, i, i, notify)
  return wrk.format("POST", "/api/v1/tickets",
    {["Authorization"] = "Bearer " .. key, ["Content-Type"] = "application/json"}, body)
end
function response(status, headers, body)
  if status == 201 then ok2xx = ok2xx + 1 else non2xx = non2xx + 1 end
end
function done(summary, latency, requests)
  local ok, bad = 0, 0
  for _, t in ipairs(threads) do ok = ok + t:get("ok2xx"); bad = bad + t:get("non2xx") end
  io.write(string.format("status 201: %d, other: %d, socket errors: connect %d read %d write %d timeout %d\n",
    ok, bad, summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout))
  io.write(string.format("requests %d in %.2fs = %.2f req/s; latency ms p50 %.1f p90 %.1f p99 %.1f max %.1f mean %.1f\n",
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000, latency.mean / 1000))
end
