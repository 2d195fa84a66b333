-- Write absolute meter-window records; drop windows past retention (event time).
-- ARGV: key prefix, key suffix (":utility:size"), blob, record size, retention s, ttl s
local prefix, suffix, blob = ARGV[1], ARGV[2], ARGV[3]
local rs, ret, ttl = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local size = tonumber(string.match(suffix, ":(%d+)$"))
local maxfields = math.floor(ret / size) + 8
for i = 1, #blob, rs do
  local sid = string.sub(blob, i, i + 35)
  local ws = struct.unpack("<i8", blob, i + 36)
  local key = prefix .. "{" .. sid .. "}" .. suffix
  redis.call("HSET", key, string.format("%d", ws), string.sub(blob, i + 44, i + rs - 1))
  -- the window that just left retention; a full sweep only when gaps left strays behind
  redis.call("HDEL", key, string.format("%d", ws - ret))
  if redis.call("HLEN", key) > maxfields then
    for _, f in ipairs(redis.call("HKEYS", key)) do
      if tonumber(f) <= ws - ret then redis.call("HDEL", key, f) end
    end
  end
  redis.call("EXPIRE", key, ttl)
end
return #blob / rs
