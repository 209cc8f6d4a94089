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
--
-- Returns {"OK"} or {"STUDY_NOT_FOUND"}.
local deleted = KEYS[#KEYS]
if ARGV[1] ~= '' then
  local until_time = redis.call('HGET', deleted, ARGV[1])
  if until_time and tonumber(until_time) >= tonumber(ARGV[2]) then
    return {'OK'}
  end
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'STUDY_NOT_FOUND'}
end
-- UNLINK frees a large study in the background instead of blocking the server.
redis.call('UNLINK', unpack(KEYS, 1, #KEYS - 1))
if ARGV[1] ~= '' then
  redis.call('HSET', deleted, ARGV[1], ARGV[3])
  redis.call('PEXPIRE', deleted, ARGV[4])
end
return {'OK'}
