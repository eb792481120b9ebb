-- wrk script for bench/apiserver.py: POST one new Pod per request.
--
--   wrk ... -s bench/pods.lua URL -- TOKEN TEMPLATE_FILE RUN_PREFIX
--
-- TEMPLATE_FILE holds the Pod JSON with the placeholder __NAME__ for metadata.name; each
-- request gets a unique name RUN_PREFIX-<thread>-<counter>. Every response status is
-- counted per thread, and done() prints one machine-readable line starting "BENCH ".

-- statuses and counter are globals: done() reads them from each thread with thread:get
threads = {}
statuses = {}
counter = 0
local body_head, body_tail, name_prefix

function setup(thread)
   thread:set("tid", #threads + 1)
   table.insert(threads, thread)
end

function init(args)
   local token, template, run = args[1], args[2], args[3]
   local f = assert(io.open(template, "rb"))
   local body = f:read("*a")
   f:close()
   local i, j = string.find(body, "__NAME__", 1, true)
   body_head = string.sub(body, 1, i - 1)
   body_tail = string.sub(body, j + 1)
   name_prefix = run .. "-" .. tid .. "-"
   wrk.method = "POST"
   wrk.headers["Authorization"] = "Bearer " .. token
   wrk.headers["Content-Type"] = "application/json"
   wrk.headers["Accept"] = "application/json"
end

function request()
   counter = counter + 1
   return wrk.format(nil, nil, nil, body_head .. name_prefix .. counter .. body_tail)
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
   local codes = {}
   local sent = 0
   for _, t in ipairs(threads) do
      local s = t:get("statuses") or {}
      for k, v in pairs(s) do
         codes[k] = (codes[k] or 0) + v
      end
      sent = sent + (t:get("counter") or 0)
   end
   local parts = {}
   for k, v in pairs(codes) do
      parts[#parts + 1] = string.format('"%d":%d', k, v)
   end
   local e = summary.errors
   io.write(string.format(
      'BENCH {"requests":%d,"sent":%d,"duration_us":%d,"bytes":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"lat_us":{"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d,"mean":%.1f},"codes":{%s}}\n',
      summary.requests, sent, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency:percentile(99.9), latency.max, latency.mean, table.concat(parts, ",")))
end
