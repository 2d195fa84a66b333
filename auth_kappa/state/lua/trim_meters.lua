-- Retention by event time for new meter windows, exact (WindowSpec.retention_cut): with N
-- the newest window_start of a meter's key, no field <= floor((N - retention) / size) *
-- size remains after the call, for any retention and any sparsity.
-- Invariant: after every call, a key holds nothing at or below its cut. A new window whose
-- predecessor (ws - size) is in the key continues a run: only the one window its cut
-- passed can have left, one HDEL. Otherwise (the key's first window, a gap in the meter's
-- readings) the small hash is swept: at most retention / size + the new windows fields.
-- Runs after the checkpoint transaction, in small batches: trimming is idempotent.
-- ARGV: key head and tail around the service_id (state/layout.py meter_parts),
--       blob of [service_id 36][window_start i64],
--       retention s
local prefix, suffix, blob, ret = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local size = tonumber(string.match(suffix, ":(%d+)$"))
local function cut_of(n) return math.floor((n - ret) / size) * size end
for i = 1, #blob, 44 do
  local key = prefix .. string.sub(blob, i, i + 35) .. suffix
  local ws = struct.unpack("<i8", blob, i + 36)
  if redis.call("HEXISTS", key, string.format("%d", ws - size)) == 1 then
    redis.call("HDEL", key, string.format("%d", cut_of(ws)))
  else
    local fields, starts, newest = redis.call("HKEYS", key), {}, nil
    for j, f in ipairs(fields) do
      starts[j] = tonumber(f)
      if starts[j] and (newest == nil or starts[j] > newest) then newest = starts[j] end
    end
    if newest then
      local cut, old = cut_of(newest), {}
      for j, f in ipairs(fields) do
        if starts[j] and starts[j] <= cut then old[#old + 1] = f end
      end
      for lo = 1, #old, 1000 do
        redis.call("HDEL", key, unpack(old, lo, math.min(lo + 999, #old)))
      end
    end
  end
end
return #blob / 44
