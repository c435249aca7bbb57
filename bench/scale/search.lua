-- wrk script (scale): full-text search, GET /api/v1/tickets?q=… (first page of 25, newest
-- first), cycling through queries of every kind over a database made by bench/scale/seed: common
-- words (in 12–16 % of all entries), middling ones (1–4 %), two words that must share an entry,
-- and rare made-up words (about 350 entries in 5 million).
-- env: API_KEY (tickets:read); SCALE_QUERIES = queries separated by commas to use instead
--      (e.g. SCALE_QUERIES=please for the common word alone).
-- usage: API_KEY=... wrk -t2 -c8 -d10s --latency -s bench/scale/search.lua http://127.0.0.1:8080
local threads = {}
local next_id = 0
local DEFAULT = "please,account,invoice,printer,password reset,refund declined,kasheax,gruger"
function setup(thread)
  thread:set("tid", next_id); next_id = next_id + 1
  table.insert(threads, thread)
end
local function encode(s)
  return (string.gsub(s, "[^%w%.%-_~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end
function init(args)
  key = os.getenv("API_KEY") or error("API_KEY is not set"); ok2xx = 0; non2xx = 0; n = 0
  queries = {}
  local list = os.getenv("SCALE_QUERIES")
  if list == nil or list == "" then list = DEFAULT end
  for q in string.gmatch(list, "[^,]+") do table.insert(queries, encode(q)) end
  n = tid
end
function request()
  n = n + 1
  return wrk.format("GET", "/api/v1/tickets?q=" .. queries[(n % #queries) + 1],
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
