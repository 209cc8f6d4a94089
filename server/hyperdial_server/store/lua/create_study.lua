-- create_study: stores a new study with no trials.
--
-- KEYS[1]   study hash
-- KEYS[2..] every other key of the study (leftovers of nothing are removed, defensively)
-- ARGV[1]   study record JSON
-- ARGV[2]   uid of the study
--
-- Returns {"OK"} or {"STUDY_ALREADY_EXISTS"}.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {'STUDY_ALREADY_EXISTS'}
end
if #KEYS > 1 then
  redis.call('UNLINK', unpack(KEYS, 2))
end
redis.call('HSET', KEYS[1], 'record', ARGV[1], 'uid', ARGV[2], 'trials', 0,
  'next_index', 0, 'handed_out', 0)
return {'OK'}
