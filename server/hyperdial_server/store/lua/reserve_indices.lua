-- uses: _lib
-- reserve_indices: takes `count` fresh sampler indices off the study's counter for one caller,
-- for samplers whose indices have no bound (RANDOM). Unlike a claim, nothing records them: the
-- counter alone keeps them apart from every other caller's, and an index its caller never
-- commits is skipped, which costs nothing when every index is an independent draw.
--
-- Keys (store/_scripts.py RESERVE_INDICES):
--   study          study hash (fields uid, next_index)
-- Arguments:
--   uid            uid the caller read
--   count          count (>= 1)
--
-- Returns {"OK", first index}, {"STUDY_NOT_FOUND"} or {"STALE_STUDY"}.
local head, refused = open_study(k, a.uid)
if not head then
  return refused
end
local count = tonumber(a.count)
return {'OK', redis.call('HINCRBY', k.study, 'next_index', count) - count}
