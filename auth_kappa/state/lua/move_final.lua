-- Final meter windows from a meter's open windows' key to its final windows' key
-- (state/layout.py), after the checkpoint that found them final, a share of those waiting
-- per checkpoint (RedisWindowStore._run_later), so a minute's worth of them (every
-- meter's window turns final at once) is spread over several checkpoints instead of
-- making one of them long. Readers take both keys, so a
-- window reads the same before and after. Only what the open key still holds moves (the
-- value there is the newest: a correction may have written it since), without the first
-- values stored after it (they serve open windows only).
-- ARGV: final key head and tail around the service_id, open key head and tail,
--       blob of [service_id 36][window_start i64], value width (bytes), ttl s
local prefix, suffix, oprefix, osuffix = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local blob, width, ttl = ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7])
local moved = 0
for i = 1, #blob, 44 do
  local sid = string.sub(blob, i, i + 35)
  local okey = oprefix .. sid .. osuffix
  local field = string.format("%d", struct.unpack("<i8", blob, i + 36))
  local value = redis.call("HGET", okey, field)
  if value then
    local key = prefix .. sid .. suffix
    redis.call("HSET", key, field, string.sub(value, 1, width))
    redis.call("HDEL", okey, field)
    redis.call("EXPIRE", key, ttl)
    moved = moved + 1
  end
end
return moved
