-- Shared by every wrk run of the benchmark: rotates through request headers
-- from a file (one value a line, e.g. "Basic ..." or "Bearer ..."), and prints
-- one JSON line of figures at the end for bench.py to read.
local headers = {}
local i = 0
local method = os.getenv("BENCH_METHOD") or "GET"
local header_name = os.getenv("BENCH_HEADER") or ""
local body = os.getenv("BENCH_BODY") or ""

function init(args)
  local path = args[1]
  if path then
    for line in io.lines(path) do
      headers[#headers + 1] = line
    end
  end
end

function request()
  local h = {}
  if #headers > 0 then
    i = (i % #headers) + 1
    h[header_name] = headers[i]
  end
  if method == "POST" then
    h["Content-Type"] = "application/x-www-form-urlencoded"
  end
  return wrk.format(method, nil, h, method == "POST" and body or nil)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"max_us": %d, "errors_connect": %d, "errors_read": %d, "errors_write": %d, ' ..
    '"errors_status": %d, "errors_timeout": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
