-- install_front: puts back the Pareto front a caller computed afresh from every COMPLETED and
-- STOPPED trial it read (after pareto_front.lua answered STALE_FRONT), unless the study
-- changed under the read: only if the study's uid is the one read and it still has the
-- number of COMPLETED and STOPPED trials the caller read (neither state is ever left, so the
-- same count means the same trials, and nothing a concurrent step added is lost).
--
-- Keys (store/_scripts.py INSTALL_FRONT):
--   study          study hash
--   completed      sorted set of COMPLETED trial numbers
--   stopped        sorted set of STOPPED trial numbers
--   front          the study's Pareto front hash
-- Arguments:
--   uid            uid of the study the caller read
--   seen           how many COMPLETED and STOPPED trials the caller read
--   members...     "<number>", "<front vector>" of each trial on the front
--
-- Returns {"OK"}, {"CHANGED"} (nothing written) or {"STUDY_NOT_FOUND"}.
local uid = redis.call('HGET', k.study, 'uid')
if not uid then
  return {'STUDY_NOT_FOUND'}
end
local candidates = redis.call('ZCARD', k.completed) + redis.call('ZCARD', k.stopped)
if uid ~= a.uid or candidates ~= tonumber(a.seen) then
  return {'CHANGED'}
end
redis.call('DEL', k.front)
redis.call('HSET', k.front, 'u', uid)
redis.call('HSET', k.study, 'front_seen', candidates)
-- In slices: unpack takes a few thousand values at most.
local members = a.members
for first = 1, #members, 1000 do
  redis.call('HSET', k.front, unpack(members, first, math.min(first + 999, #members)))
end
return {'OK'}
