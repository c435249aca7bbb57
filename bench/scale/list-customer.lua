-- wrk script (scale): GET /api/v1/tickets?customer_email=… (first page of 25, newest first) for
-- random customers of a big seeded database.
-- env: API_KEY (tickets:read), SCALE_CUSTOMERS = a file of customer addresses, one a line
--      (bench/scale/seed --samples DIR writes DIR/customers.txt).
-- usage: API_KEY=... SCALE_CUSTOMERS=customers.txt wrk -t2 -c8 -d10s --latency -s bench/scale/list-customer.lua http://127.0.0.1:8080
local threads = {}
local next_id = 0
function setup(thread)
  thread:set("tid", next_id); next_id = next_id + 1
  table.insert(threads, thread)
end
local function encode(s)
  return (string.gsub(s, "[^%w%.%-_~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end
function init(args)
  key = os.getenv("API_KEY") or error("API_KEY is not set"); ok2xx = 0; non2xx = 0
  customers = {}
  local path = os.getenv("SCALE_CUSTOMERS") or error("SCALE_CUSTOMERS is not set")
  for line in io.lines(path) do
    if line ~= "" then table.insert(customers, encode(line)) end
  end
  if #customers == 0 then error("no customers in " .. path) end
  math.randomseed(4711 + tid)
end
function request()
  return wrk.format("GET", "/api/v1/tickets?customer_email=" .. customers[math.random(#customers)],
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
