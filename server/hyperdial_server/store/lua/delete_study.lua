-- delete_study: removes every key of a study. A request id that deleted the study before,
-- within its time, changes nothing (not even a study created since) and answers OK.
--
-- KEYS[1]       study hash
-- KEYS[2..n-1]  every other key of the study
-- KEYS[n]       hash of the request ids that deleted the study (outlives it, with a TTL)
-- ARGV[1]       request id, or ''
-- ARGV[2]       now
-- ARGV[3]       time until which the request id is kept
-- ARGV[4]       TTL of the request ids hash, milliseconds
-- ARGV[5]       fingerprint of the call's payload, or '' for no check
--
-- Returns {"OK"}, {"STUDY_NOT_FOUND"} or {"REQUEST_ID_MISMATCH", what}.
local deleted = KEYS[#KEYS]
if ARGV[1] ~= '' then
  -- "<until>" or "<until>|<fingerprint>".
  local got = redis.call('HGET', deleted, ARGV[1])
  if got then
    local bar = string.find(got, '|', 1, true)
    local until_time = bar and string.sub(got, 1, bar - 1) or got
    local fingerprint = bar and string.sub(got, bar + 1) or ''
    if tonumber(until_time) >= tonumber(ARGV[2]) then
      if fingerprint ~= '' and ARGV[5] ~= '' and fingerprint ~= ARGV[5] then
        return {'REQUEST_ID_MISMATCH', 'DeleteStudy'}
      end
      return {'OK'}
    end
  end
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'STUDY_NOT_FOUND'}
end
-- UNLINK frees a large study in the background instead of blocking the server.
redis.call('UNLINK', unpack(KEYS, 1, #KEYS - 1))
if ARGV[1] ~= '' then
  local value = ARGV[3]
  if ARGV[5] ~= '' then
    value = value .. '|' .. ARGV[5]
  end
  redis.call('HSET', deleted, ARGV[1], value)
  redis.call('PEXPIRE', deleted, ARGV[4])
end
return {'OK'}
