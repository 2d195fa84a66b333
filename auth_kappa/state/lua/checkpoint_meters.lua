-- Write absolute meter-window records; drop windows past retention (event time).
-- ARGV: key prefix, key suffix (":utility:size"), blob, record size, retention s, ttl s
-- record: [service_id 36][window_start i64][new u8][value]
local prefix, suffix, blob = ARGV[1], ARGV[2], ARGV[3]
local rs, ret, ttl = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local size = tonumber(string.match(suffix, ":(%d+)$"))
local maxfields = math.floor(ret / size) + 8
for i = 1, #blob, rs do
  local key = prefix .. "{" .. string.sub(blob, i, i + 35) .. "}" .. suffix
  local ws = struct.unpack("<i8", blob, i + 36)
  redis.call("HSET", key, string.format("%d", ws), string.sub(blob, i + 45, i + rs - 1))
  if string.byte(blob, i + 44) == 1 then
    -- a new window: the one that left retention goes; a full sweep only if gaps left strays
    redis.call("HDEL", key, string.format("%d", ws - ret))
    if redis.call("HLEN", key) > maxfields then
      for _, f in ipairs(redis.call("HKEYS", key)) do
        if tonumber(f) <= ws - ret then redis.call("HDEL", key, f) end
      end
    end
    redis.call("EXPIRE", key, ttl)
  end
end
return #blob / rs
