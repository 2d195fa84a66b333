-- Retention by event time for new meter windows, exact (WindowSpec.retention_cut): with N
-- the newest window_start of a meter's key, no field <= floor((N - retention) / size) *
-- size remains after the call, for any retention and any sparsity.
-- Invariant: after every call, a key holds nothing at or below its cut. A new window whose
-- predecessor (ws - size) is in the key continues a run: only the one window its cut
-- passed can have left, one HDEL. Otherwise (the key's first window, a gap in the meter's
-- readings) the small hash is swept: at most retention / size + the new windows fields.
-- The meter's first values (the `f:` key, finest size) obey the same cut in a sweep: a
-- final window's are deleted by a later checkpoint (runtime/live.py _settle), and those
-- a crash or a rebalance left behind go with the partition's next owner (drop_firsts.lua)
-- or here.
-- Runs after the checkpoint transaction, in small batches: trimming is idempotent. A new
-- window whose predecessor the worker knows is stored (Rows.cont) skips this script: its
-- continuation's HDEL is sent plainly (state/redis_store.py _trims).
-- ARGV: key head and tail around the service_id (state/layout.py meter_parts),
--       blob of [service_id 36][window_start i64],
--       retention s, the first values' key head ("": none at this size)
local prefix, suffix, blob, ret = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local firsts = ARGV[5] or ""
local size = tonumber(string.match(suffix, ":(%d+)$"))
local function cut_of(n) return math.floor((n - ret) / size) * size end
local function sweep(key, cut, fields)   -- every field at or below the cut
  local old = {}
  for _, f in ipairs(fields or redis.call("HKEYS", key)) do
    local start = tonumber(f)
    if start and start <= cut then old[#old + 1] = f end
  end
  for lo = 1, #old, 1000 do
    redis.call("HDEL", key, unpack(old, lo, math.min(lo + 999, #old)))
  end
end
for i = 1, #blob, 44 do
  local sid = string.sub(blob, i, i + 35)
  local key = prefix .. sid .. suffix
  local ws = struct.unpack("<i8", blob, i + 36)
  if redis.call("HEXISTS", key, string.format("%d", ws - size)) == 1 then
    local cut = string.format("%d", cut_of(ws))
    redis.call("HDEL", key, cut)
    if firsts ~= "" then redis.call("HDEL", firsts .. sid .. suffix, cut) end
  else
    local fields, newest = redis.call("HKEYS", key), nil
    for _, f in ipairs(fields) do
      local start = tonumber(f)
      if start and (newest == nil or start > newest) then newest = start end
    end
    if newest then
      sweep(key, cut_of(newest), fields)
      if firsts ~= "" then sweep(firsts .. sid .. suffix, cut_of(newest)) end
    end
  end
end
return #blob / 44
