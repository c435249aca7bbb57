-- wrk script: full-text search, GET /api/v1/tickets?q=… (first page of 25), loopback only.
-- Every other request asks for one word of BENCH_WORDS (the words bench/run's seeded tickets are
-- made of), the others for two words that occur together in seeded tickets (ticket i has words
-- i and 7i+3, modulo the list's length, as in bench/lib.sh's seed_tickets).
-- env: API_KEY (tickets:read), BENCH_WORDS = space-separated words.
-- usage: API_KEY=... BENCH_WORDS="printer invoice" wrk -t2 -c8 -d10s --latency -s bench/wrk/search.lua http://127.0.0.1:8080
local threads = {}
local next_id = 0
function setup(thread)
  thread:set("tid", next_id); next_id = next_id + 1
  table.insert(threads, thread)
end
function init(args)
  key = os.getenv("API_KEY"); n = 0; non2xx = 0; ok2xx = 0
  words = {}
  for word in string.gmatch(os.getenv("BENCH_WORDS") or error("BENCH_WORDS is not set"), "%S+") do
    table.insert(words, word)
  end
  if #words == 0 then error("BENCH_WORDS is empty") end
  math.randomseed(4711 + tid)
end
function request()
  n = n + 1
  local q
  if n % 2 == 0 then
    local i = math.random(#words) - 1
    q = words[i + 1] .. "%20" .. words[(i * 7 + 3) % #words + 1]
  else
    q = words[math.random(#words)]
  end
  return wrk.format("GET", "/api/v1/tickets?q=" .. q .. "&limit=25",
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
