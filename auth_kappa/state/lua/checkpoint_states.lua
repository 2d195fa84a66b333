-- Merge per-state window deltas (sum, count, min, max) into the totals, then apply the
-- retention rule exactly (WindowSpec.retention_cut): N = the newest window_start the key
-- has held, cut = floor((N - retention) / size) * size, and no field <state>:<ws> with
-- ws <= cut remains, whatever the sparsity of a state or the retention. N lives in a
-- companion string key (same TTL), so a call deletes only what the cut passed since the
-- last call: one HDEL of every state per window step, or one sweep of the hash when that
-- is cheaper (a jump of event time; the first call on a key written before this rule).
-- Deltas for windows at or below the cut are out of retention and are not stored.
-- ARGV: key, blob, record size, retention s, ttl s, window size s,
--       every state code (2 characters each, concatenated), companion key (N)
local key, blob, rs = ARGV[1], ARGV[2], tonumber(ARGV[3])
local ret, ttl, size = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local states, nkey = ARGV[7], ARGV[8]
local function cut_of(n) return math.floor((n - ret) / size) * size end
local function delete(fields)
  for lo = 1, #fields, 1000 do
    redis.call("HDEL", key, unpack(fields, lo, math.min(lo + 999, #fields)))
  end
end

local stored = redis.call("GET", nkey)
local old = stored and tonumber(stored) or nil   -- GET of no key: false
local newest = old
for i = 1, #blob, rs do
  local ws = struct.unpack("<i8", blob, i + 2)
  if newest == nil or ws > newest then newest = ws end
end
if newest == nil then return 0 end
local cut = cut_of(newest)

for i = 1, #blob, rs do
  local ws = struct.unpack("<i8", blob, i + 2)
  if ws > cut then
    local s, c, lo, hi = struct.unpack("<d<i8<d<d", blob, i + 10)
    local field = string.sub(blob, i, i + 1) .. ":" .. string.format("%d", ws)
    local cur = redis.call("HGET", key, field)
    if cur then
      local s0, c0, lo0, hi0 = struct.unpack("<d<i8<d<d", cur)
      s, c, lo, hi = s0 + s, c0 + c, math.min(lo0, lo), math.max(hi0, hi)
    end
    redis.call("HSET", key, field, struct.pack("<d<i8<d<d", s, c, lo, hi))
  end
end

local from = old and cut_of(old)
local steps = from and (cut - from) / size or math.huge
if steps > 0 then
  local fields = {}
  if steps * #states / 2 > redis.call("HLEN", key) then   -- sweep: cheaper, or needed
    for _, f in ipairs(redis.call("HKEYS", key)) do
      local ws = tonumber(string.match(f, ":(%-?%d+)$"))
      if ws and ws <= cut then fields[#fields + 1] = f end
    end
  else
    for w = from + size, cut, size do
      local suffix = ":" .. string.format("%d", w)
      for j = 1, #states, 2 do fields[#fields + 1] = string.sub(states, j, j + 1) .. suffix end
    end
  end
  delete(fields)
end
if redis.call("EXISTS", key) == 1 then redis.call("EXPIRE", key, ttl) end
redis.call("SET", nkey, string.format("%d", newest), "EX", ttl)
return #blob / rs
