-- spec_bytes: sets the bytes one study's stored record counts against its namespace's spec
-- budget, keeping the namespace's running total in step (both keys in the index's slot).
--
-- KEYS[1]   hash: study id -> bytes of its stored record
-- KEYS[2]   string: the sum of the hash's values
-- ARGV[1]   study id
-- ARGV[2]   bytes of its record; negative: the study is gone, remove its entry
-- ARGV[3]   the namespace's budget in bytes; 0: none. Only a growth is checked against it.
--
-- Returns {"OK", total} or {"NAMESPACE_SPEC_BUDGET", total without this study}.
local old = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
local new = tonumber(ARGV[2])
local total = tonumber(redis.call('GET', KEYS[2]) or '0')
local budget = tonumber(ARGV[3])
if new > old and budget > 0 and total - old + new > budget then
  return {'NAMESPACE_SPEC_BUDGET', tostring(total - old)}
end
if new < 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
  new = 0
else
  redis.call('HSET', KEYS[1], ARGV[1], new)
end
total = redis.call('INCRBY', KEYS[2], new - old)
if total <= 0 and redis.call('HLEN', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[1], KEYS[2])
  total = 0
end
return {'OK', tostring(total)}
