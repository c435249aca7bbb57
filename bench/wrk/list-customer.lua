-- wrk script: GET /api/v1/tickets?customer_email=… (a customer's tickets, newest first, first
-- page of 25) over the customers of existing tickets, at random (loopback only).
-- env: API_KEY (tickets:read), TICKETS_FILE = a file of "number:email" lines (bench/run writes
-- it when it seeds the database; the distinct addresses are used).
-- usage: API_KEY=... TICKETS_FILE=... wrk -t2 -c8 -d10s --latency -s bench/wrk/list-customer.lua http://127.0.0.1:8080
local threads = {}
local next_id = 0
function setup(thread)
  thread:set("tid", next_id); next_id = next_id + 1
  table.insert(threads, thread)
end
local function encode(s)
  return (string.gsub(s, "[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end
function init(args)
  key = os.getenv("API_KEY"); n = 0; non2xx = 0; ok2xx = 0
  customers = {}
  local seen = {}
  local path = os.getenv("TICKETS_FILE") or error("TICKETS_FILE is not set")
  for line in io.lines(path) do
    local email = string.match(line, "^[^:]+:(.+)$")
    if email and not seen[email] then
      seen[email] = true
      table.insert(customers, encode(email))
    end
  end
  if #customers == 0 then error("no customers in " .. path) end
  math.randomseed(4711 + tid)
end
function request()
  n = n + 1
  local email = customers[math.random(#customers)]
  return wrk.format("GET", "/api/v1/tickets?customer_email=" .. email .. "&limit=25",
    {["Authorization"] = "Bearer " .. key})
end
function response(status, headers, body)
  if status == 200 then ok2xx = ok2xx + 1 else non2xx = non2xx + 1 end
end
function done(summary, latency, requests)
  local ok, bad = 0, 0
  for _, t in ipairs(threads) do ok = ok + t:get("ok2xx"); bad = bad + t:get("non2xx") end
  io.write(string.format("status 200: %d, other: %d, socket errors: connect %d read %d write %d timeout %d\n",
    ok, bad, summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout))
  io.write(string.format("requests %d in %.2fs = %.2f req/s; latency ms p50 %.1f p90 %.1f p99 %.1f max %.1f mean %.1f\n",
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000, latency.mean / 1000))
end
