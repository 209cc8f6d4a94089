-- reserve_indices: takes `count` fresh sampler indices off the study's counter for one caller,
-- for samplers whose indices have no bound (RANDOM). Unlike a claim, nothing records them: the
-- counter alone keeps them apart from every other caller's, and an index its caller never
-- commits is skipped, which costs nothing when every index is an independent draw.
--
-- KEYS[1]  study hash (fields uid, next_index)
-- ARGV[1]  uid the caller read
-- ARGV[2]  count (>= 1)
--
-- Returns {"OK", first index}, {"STUDY_NOT_FOUND"} or {"STALE_STUDY"}.
local uid = redis.call('HGET', KEYS[1], 'uid')
if not uid then
  return {'STUDY_NOT_FOUND'}
end
if uid ~= ARGV[1] then
  return {'STALE_STUDY'}
end
local count = tonumber(ARGV[2])
return {'OK', redis.call('HINCRBY', KEYS[1], 'next_index', count) - count}
