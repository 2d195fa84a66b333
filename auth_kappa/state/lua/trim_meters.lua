-- Retention by event time for new meter windows, exact (WindowSpec.retention_cut): with N
-- the newest window_start of a meter's windows, no field <= floor((N - retention) / size) *
-- size remains in its keys after the call (final windows and open ones: state/layout.py),
-- for any retention and any sparsity.
-- Invariant: after every call, a meter's keys hold nothing at or below their cut. A new
-- window whose predecessor (ws - size) is stored (open, or final by now) continues a run:
-- only the one window its cut passed can have left, one HDEL per key. Otherwise (the meter's first window, a gap
-- in its readings) its small hashes are swept: at most retention / size + the new windows
-- fields.
-- Runs after the checkpoint transaction, in small batches (a share of those waiting per
-- checkpoint: RedisWindowStore._run_later): trimming is idempotent.
-- ARGV: final windows' key head and tail around the service_id, open windows' key head
--       and tail (state/layout.py meter_parts), blob of [service_id 36][window_start i64],
--       retention s
local prefix, suffix, oprefix, osuffix = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local blob, ret = ARGV[5], tonumber(ARGV[6])
local size = tonumber(string.match(suffix, ":(%d+)$"))
local function cut_of(n) return math.floor((n - ret) / size) * size end
local function sweep(keys)
  local fields, newest = {}, nil
  for k, key in ipairs(keys) do
    fields[k] = redis.call("HKEYS", key)
    for _, f in ipairs(fields[k]) do
      local n = tonumber(f)
      if n and (newest == nil or n > newest) then newest = n end
    end
  end
  if not newest then return end
  local cut = cut_of(newest)
  for k, key in ipairs(keys) do
    local old = {}
    for _, f in ipairs(fields[k]) do
      local n = tonumber(f)
      if n and n <= cut then old[#old + 1] = f end
    end
    for lo = 1, #old, 1000 do
      redis.call("HDEL", key, unpack(old, lo, math.min(lo + 999, #old)))
    end
  end
end
for i = 1, #blob, 44 do
  local sid = string.sub(blob, i, i + 35)
  local keys = {prefix .. sid .. suffix, oprefix .. sid .. osuffix}
  local ws = struct.unpack("<i8", blob, i + 36)
  local before = string.format("%d", ws - size)
  if redis.call("HEXISTS", keys[2], before) == 1 or   -- open still, most often
      redis.call("HEXISTS", keys[1], before) == 1 then
    local cut = string.format("%d", cut_of(ws))
    redis.call("HDEL", keys[1], cut)
    redis.call("HDEL", keys[2], cut)
  else
    sweep(keys)
  end
end
return #blob / 44
