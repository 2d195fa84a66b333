-- Merge per-state window deltas (sum, count, min, max) into the totals.
-- ARGV: key, blob, record size, retention s, ttl s
local key, blob, rs = ARGV[1], ARGV[2], tonumber(ARGV[3])
local ret, ttl = tonumber(ARGV[4]), tonumber(ARGV[5])
for i = 1, #blob, rs do
  local state = string.sub(blob, i, i + 1)
  local ws = struct.unpack("<i8", blob, i + 2)
  local s, c, lo, hi = struct.unpack("<d<i8<d<d", blob, i + 10)
  local field = state .. ":" .. string.format("%d", ws)
  local cur = redis.call("HGET", key, field)
  if cur then
    local s0, c0, lo0, hi0 = struct.unpack("<d<i8<d<d", cur)
    s, c, lo, hi = s0 + s, c0 + c, math.min(lo0, lo), math.max(hi0, hi)
  end
  redis.call("HSET", key, field, struct.pack("<d<i8<d<d", s, c, lo, hi))
  redis.call("HDEL", key, state .. ":" .. string.format("%d", ws - ret))
end
redis.call("EXPIRE", key, ttl)
return #blob / rs
