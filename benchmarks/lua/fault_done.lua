-- Appended to random.lua: one CD4ML line of figures for benchmark --fluentd-fault.
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("CD4ML requests=%d seconds=%.3f p50_us=%d p99_us=%d p999_us=%d non2xx=%d socket=%d\n",
    summary.requests, summary.duration / 1e6, latency:percentile(50), latency:percentile(99),
    latency:percentile(99.9), e.status, e.connect + e.read + e.write + e.timeout))
end
