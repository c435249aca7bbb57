-- wrk script (scale): GET /api/v1/tickets/{number} over random tickets of a big seeded database.
-- env: API_KEY (tickets:read), SCALE_NUMBERS = a file of ticket numbers, one a line
--      (bench/scale/seed --samples DIR writes DIR/numbers.txt).
-- usage: API_KEY=... SCALE_NUMBERS=numbers.txt wrk -t2 -c8 -d10s --latency -s bench/scale/get-ticket.lua http://127.0.0.1:8080
local threads = {}
local next_id = 0
function setup(thread)
  thread:set("tid", next_id); next_id = next_id + 1
  table.insert(threads, thread)
end
function init(args)
  key = os.getenv("API_KEY") or error("API_KEY is not set"); ok2xx = 0; non2xx = 0
  numbers = {}
  local path = os.getenv("SCALE_NUMBERS") or error("SCALE_NUMBERS is not set")
  for line in io.lines(path) do
    if line ~= "" then table.insert(numbers, line) end
  end
  if #numbers == 0 then error("no ticket numbers in " .. path) end
  math.randomseed(4711 + tid)
end
function request()
  return wrk.format("GET", "/api/v1/tickets/" .. numbers[math.random(#numbers)],
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
