-- /prediction over a fixed set of questions; each answer is checked against the forecasts every
-- registered version gave to the same question: a version that is not one of them, or a forecast
-- that is not that version's, is a mixed-version answer.
local questions = {${questions}}
local expected = {${expected}}
local threads = {}

setup = function(thread)
  table.insert(threads, thread)
end

init = function(args)
  checked, mixed, unknown, malformed, failed, by_version = 0, 0, 0, 0, 0, {}
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 100000)
end

request = function()
  local q = questions[math.random(1, #questions)]
  return wrk.format("GET", "/prediction?date=" .. q[1] .. "&item_nbr=" .. q[2])
end

response = function(status, headers, body)
  if status ~= 200 then
    failed = failed + 1
    return
  end
  local version = body:match('"model_version":%s*"([^"]*)"')
  local value = tonumber(body:match('"prediction":%s*([-%d.eE+]+)') or "")
  local day = body:match('"date":%s*"([^"]*)"')
  local item = body:match('"item_nbr":%s*(%d+)')
  if not (version and value and day and item) then
    malformed = malformed + 1
    return
  end
  checked = checked + 1
  by_version[version] = (by_version[version] or 0) + 1
  local forecasts = expected[version]
  if forecasts == nil then
    unknown = unknown + 1
    return
  end
  local want = forecasts[day .. "/" .. item]
  if want == nil or math.abs(want - value) > 1e-9 * math.max(1, math.abs(want)) then
    mixed = mixed + 1
  end
end

done = function(summary, latency, requests)
  local totals = {checked = 0, mixed = 0, unknown = 0, malformed = 0, failed = 0}
  local versions = {}
  for _, thread in ipairs(threads) do
    for name, _ in pairs(totals) do
      totals[name] = totals[name] + (thread:get(name) or 0)
    end
    for version, count in pairs(thread:get("by_version") or {}) do
      versions[version] = (versions[version] or 0) + count
    end
  end
  local shares = {}
  for version, count in pairs(versions) do
    table.insert(shares, "v" .. version .. "=" .. count)
  end
  table.sort(shares)
  local e = summary.errors
  io.write(string.format(
    "CD4ML requests=%d seconds=%.3f p50_us=%d p99_us=%d p999_us=%d max_us=%d checked=%d mixed=%d unknown=%d " ..
    "malformed=%d non200=%d connect=%d read=%d write=%d timeout=%d versions=%s\n",
    summary.requests, summary.duration / 1e6, latency:percentile(50), latency:percentile(99),
    latency:percentile(99.9), latency.max, totals.checked, totals.mixed, totals.unknown, totals.malformed,
    totals.failed, e.connect, e.read, e.write, e.timeout, table.concat(shares, ",")))
end
