-- First values of final windows (window_start < cut) that a crash or a rebalance left
-- behind. A final window's are deleted by a later checkpoint (runtime/live.py _settle);
-- when that checkpoint never comes, the partition's next owner sweeps them here as it
-- reopens the partition (LiveRuntime._reopen). Only an open window's first values are
-- ever read, and a final window never opens again, so any order and any time is right.
-- ARGV: the first values' key head and tail around the service_id (state/layout.py
--       meter_parts), blob of service_ids (36 bytes each), the cut
local head, tail, blob, cut = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local gone = 0
for i = 1, #blob, 36 do
  local key = head .. string.sub(blob, i, i + 35) .. tail
  local old = {}
  for _, f in ipairs(redis.call("HKEYS", key)) do
    local start = tonumber(f)
    if start and start < cut then old[#old + 1] = f end
  end
  for lo = 1, #old, 1000 do
    gone = gone + redis.call("HDEL", key, unpack(old, lo, math.min(lo + 999, #old)))
  end
end
return gone
