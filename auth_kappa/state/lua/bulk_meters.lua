-- Load absolute meter windows into a namespace (a rebuild): records sorted by meter,
-- one HSET with all of a meter's windows and one EXPIRE per key, no retention sweep
-- (the caller only sends windows inside retention).
-- ARGV: key head and tail around the service_id (state/layout.py meter_parts), blob,
--       record size, ttl s
local prefix, suffix, blob = ARGV[1], ARGV[2], ARGV[3]
local rs, ttl = tonumber(ARGV[4]), tonumber(ARGV[5])
local sid, args = nil, {}
local function flush()
  if sid then
    local key = prefix .. sid .. suffix
    redis.call("HSET", key, unpack(args))
    redis.call("EXPIRE", key, ttl)
  end
end
for i = 1, #blob, rs do
  local s = string.sub(blob, i, i + 35)
  if s ~= sid or #args >= 7000 then
    flush()
    sid, args = s, {}
  end
  args[#args + 1] = string.format("%d", struct.unpack("<i8", blob, i + 36))
  args[#args + 1] = string.sub(blob, i + 44, i + rs - 1)
end
flush()
return #blob / rs
