-- Retention by event time for new meter windows: drop the window that just left it, and
-- sweep the whole key only when gaps left older strays (more fields than retention holds).
-- Runs after the checkpoint transaction, in small batches: trimming is idempotent.
-- ARGV: key prefix, key suffix (":utility:size"), blob of [service_id 36][window_start i64],
--       retention s
local prefix, suffix, blob, ret = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local size = tonumber(string.match(suffix, ":(%d+)$"))
local maxfields = math.floor(ret / size) + 8
for i = 1, #blob, 44 do
  local key = prefix .. "{" .. string.sub(blob, i, i + 35) .. "}" .. suffix
  local ws = struct.unpack("<i8", blob, i + 36)
  redis.call("HDEL", key, string.format("%d", ws - ret))
  if redis.call("HLEN", key) > maxfields then
    for _, f in ipairs(redis.call("HKEYS", key)) do
      if tonumber(f) <= ws - ret then redis.call("HDEL", key, f) end
    end
  end
end
return #blob / 44
