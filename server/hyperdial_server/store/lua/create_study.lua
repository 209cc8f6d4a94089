-- create_study: stores a new study with no trials. The same request id as the call that
-- created the study, within its time, returns the study instead of STUDY_ALREADY_EXISTS.
--
-- KEYS[1]   study hash
-- KEYS[2..] every other key of the study (leftovers of nothing are removed, defensively)
-- ARGV[1]   study record JSON
-- ARGV[2]   uid of the study
-- ARGV[3]   request id, or ''
-- ARGV[4]   now
-- ARGV[5]   time until which the request id is kept
-- ARGV[6]   fingerprint of the call's payload, or '' for no check
--
-- Returns {"OK", study record JSON}, {"STUDY_ALREADY_EXISTS"} or {"REQUEST_ID_MISMATCH", what}.
if redis.call('EXISTS', KEYS[1]) == 1 then
  if ARGV[3] ~= '' then
    local got = redis.call('HMGET', KEYS[1], 'create_request', 'create_request_until', 'record',
      'create_request_fp')
    if got[1] == ARGV[3] and tonumber(got[2]) >= tonumber(ARGV[4]) then
      -- A retry must repeat the call: the same id with another spec is refused (no
      -- fingerprint on either side, as in records made before there were any: no check).
      if got[4] and ARGV[6] ~= '' and got[4] ~= ARGV[6] then
        return {'REQUEST_ID_MISMATCH', 'CreateStudy'}
      end
      return {'OK', got[3]}
    end
  end
  return {'STUDY_ALREADY_EXISTS'}
end
if #KEYS > 1 then
  redis.call('UNLINK', unpack(KEYS, 2))
end
redis.call('HSET', KEYS[1], 'record', ARGV[1], 'uid', ARGV[2], 'trials', 0,
  'next_index', 0, 'handed_out', 0)
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[1], 'create_request', ARGV[3], 'create_request_until', ARGV[5])
  if ARGV[6] ~= '' then
    redis.call('HSET', KEYS[1], 'create_request_fp', ARGV[6])
  end
end
return {'OK', ARGV[1]}
