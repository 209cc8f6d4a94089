-- spec_bytes: sets the bytes one study's stored record counts against its namespace's spec
-- budget, keeping the namespace's running total in step (both keys in the index's slot).
--
-- Keys (store/_scripts.py SPEC_BYTES), both in the slot of the namespace's study index:
--   spec_bytes     hash: study id -> bytes of its stored record
--   spec_total     string: the sum of the hash's values
-- Arguments:
--   study_id       study id
--   size           bytes of its record; negative: the study is gone, remove its entry
--   budget         the namespace's budget in bytes; 0: none. Only a growth is checked
--                  against it.
--
-- Returns {"OK", total} or {"NAMESPACE_SPEC_BUDGET", total without this study}.
local old = tonumber(redis.call('HGET', k.spec_bytes, a.study_id) or '0')
local new = tonumber(a.size)
local total = tonumber(redis.call('GET', k.spec_total) or '0')
local budget = tonumber(a.budget)
if new > old and budget > 0 and total - old + new > budget then
  return {'NAMESPACE_SPEC_BUDGET', tostring(total - old)}
end
if new < 0 then
  redis.call('HDEL', k.spec_bytes, a.study_id)
  new = 0
else
  redis.call('HSET', k.spec_bytes, a.study_id, new)
end
total = redis.call('INCRBY', k.spec_total, new - old)
if total <= 0 and redis.call('HLEN', k.spec_bytes) == 0 then
  redis.call('DEL', k.spec_bytes, k.spec_total)
  total = 0
end
return {'OK', tostring(total)}
