-- The non-idempotent part of a checkpoint transaction, all or nothing: per-state window
-- deltas (merged into totals, with exact retention), then the partition's offsets, clocks,
-- marks and counters. Everything is checked before anything is written, so a key someone
-- overwrote with another type (or a corrupt value) fails the script with nothing applied,
-- and the offsets never move past state that was not written. (Per-meter windows precede
-- this in the transaction as plain HSETs: absolute values, harmless to write again.)
--
-- State retention (WindowSpec.retention_cut): N = the newest window_start a state key has
-- held, cut = floor((N - retention) / size) * size, and no field <state>:<ws> with
-- ws <= cut remains, whatever the sparsity of a state or the retention. N lives in a
-- companion string key (same TTL), so a call deletes only what the cut passed since the
-- last call: one HDEL of every state per window step, or one sweep of the hash when that
-- is cheaper (a jump of event time; the first call on a key written before this rule).
-- Deltas for windows at or below the cut are out of retention and are not stored.
--
-- ARGV: states (2 characters each, concatenated), B, then B state blocks of
--   key, companion key (N), blob, record size, retention s, ttl s, window size s;
-- then four hashes, each: key, count, and that many field/value pairs:
--   offsets (HSET), highs (HSET), marks (HSET), stats (HINCRBY);
-- then the checkpoint time (stats field checkpoint_ts).
local states, nblocks = ARGV[1], tonumber(ARGV[2])
local function corrupt(key, what)
  return redis.error_reply("CORRUPT " .. key .. ": " .. what)
end
local function kind(key)
  return redis.call("TYPE", key)["ok"]
end

-- 1. read and check everything
local blocks, at = {}, 3
for b = 1, nblocks do
  local blk = {key = ARGV[at], nkey = ARGV[at + 1], blob = ARGV[at + 2],
               rs = tonumber(ARGV[at + 3]), ret = tonumber(ARGV[at + 4]),
               ttl = tonumber(ARGV[at + 5]), size = tonumber(ARGV[at + 6]), cur = {}}
  at = at + 7
  local t, tn = kind(blk.key), kind(blk.nkey)
  if t ~= "hash" and t ~= "none" then return corrupt(blk.key, "a " .. t .. ", not a hash") end
  if tn ~= "string" and tn ~= "none" then return corrupt(blk.nkey, "a " .. tn .. ", not a string") end
  local stored = redis.call("GET", blk.nkey)
  blk.old = stored and tonumber(stored) or nil
  if stored and not blk.old then return corrupt(blk.nkey, "not a number") end
  local newest = blk.old
  for i = 1, #blk.blob, blk.rs do
    local ws = struct.unpack("<i8", blk.blob, i + 2)
    if newest == nil or ws > newest then newest = ws end
    local field = string.sub(blk.blob, i, i + 1) .. ":" .. string.format("%d", ws)
    local cur = redis.call("HGET", blk.key, field)
    if cur and #cur ~= 32 then return corrupt(blk.key, "field " .. field .. " is not a window") end
    blk.cur[i] = {field, ws, cur}
  end
  blk.newest = newest
  blocks[b] = blk
end
local hashes = {}
for h = 1, 4 do
  local key, n = ARGV[at], tonumber(ARGV[at + 1])
  local t = kind(key)
  if t ~= "hash" and t ~= "none" then return corrupt(key, "a " .. t .. ", not a hash") end
  hashes[h] = {key = key, from = at + 2, n = n}
  at = at + 2 + 2 * n
end
local stats = hashes[4]
for i = 0, stats.n - 1 do
  local v = redis.call("HGET", stats.key, ARGV[stats.from + 2 * i])
  if v and not tonumber(v) then return corrupt(stats.key, "counter is not a number") end
end
local now = ARGV[at]

-- 2. write
local function apply(blk)
  if blk.newest == nil then return end
  local size, ret = blk.size, blk.ret
  local function cut_of(n) return math.floor((n - ret) / size) * size end
  local cut = cut_of(blk.newest)
  local now = {}   -- field -> value written here (one field may come twice: two partitions)
  for i = 1, #blk.blob, blk.rs do
    local field, ws, cur = unpack(blk.cur[i])
    cur = now[field] or cur
    if ws > cut then
      local s, c, lo, hi = struct.unpack("<d<i8<d<d", blk.blob, i + 10)
      if cur then
        local s0, c0, lo0, hi0 = struct.unpack("<d<i8<d<d", cur)
        s, c, lo, hi = s0 + s, c0 + c, math.min(lo0, lo), math.max(hi0, hi)
      end
      now[field] = struct.pack("<d<i8<d<d", s, c, lo, hi)
      redis.call("HSET", blk.key, field, now[field])
    end
  end
  local from = blk.old and cut_of(blk.old)
  local steps = from and (cut - from) / size or math.huge
  if steps > 0 then
    local fields = {}
    if steps * #states / 2 > redis.call("HLEN", blk.key) then   -- sweep: cheaper, or needed
      for _, f in ipairs(redis.call("HKEYS", blk.key)) do
        local w = tonumber(string.match(f, ":(%-?%d+)$"))
        if w and w <= cut then fields[#fields + 1] = f end
      end
    else
      for w = from + size, cut, size do
        local suffix = ":" .. string.format("%d", w)
        for j = 1, #states, 2 do fields[#fields + 1] = string.sub(states, j, j + 1) .. suffix end
      end
    end
    for lo = 1, #fields, 1000 do
      redis.call("HDEL", blk.key, unpack(fields, lo, math.min(lo + 999, #fields)))
    end
  end
  if redis.call("EXISTS", blk.key) == 1 then redis.call("EXPIRE", blk.key, blk.ttl) end
  redis.call("SET", blk.nkey, string.format("%d", blk.newest), "EX", blk.ttl)
end
for _, blk in ipairs(blocks) do apply(blk) end
for h = 1, 3 do
  local hs = hashes[h]
  if hs.n > 0 then
    redis.call("HSET", hs.key, unpack(ARGV, hs.from, hs.from + 2 * hs.n - 1))
  end
end
for i = 0, stats.n - 1 do
  redis.call("HINCRBY", stats.key, ARGV[stats.from + 2 * i], ARGV[stats.from + 2 * i + 1])
end
redis.call("HSET", stats.key, "checkpoint_ts", now)
return nblocks
