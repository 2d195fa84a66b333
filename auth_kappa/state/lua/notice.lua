-- A checkpoint's change notice, queued in the checkpoint's own transaction (so a reader
-- sees a notice exactly when it sees the windows): the next sequence number, then the
-- notice on the capped stream. A reader that finds a number skipped (trimmed, or a Redis
-- that lost its last second) knows it missed some and reads Redis again
-- (dashboards/changes.py). Both keys expire with the checkpoints: an abandoned namespace's
-- stream goes away.
-- KEYS: stream, counter. ARGV: cap (entries, approximate), ttl s, then field/value pairs.
local n = redis.call("INCR", KEYS[2])
redis.call("XADD", KEYS[1], "MAXLEN", "~", ARGV[1], "*", "n", n, unpack(ARGV, 3))
redis.call("EXPIRE", KEYS[1], ARGV[2])
redis.call("EXPIRE", KEYS[2], ARGV[2])
return n
