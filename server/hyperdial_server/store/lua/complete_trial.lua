-- complete_trial: ends a RUNNING trial (COMPLETED or FAILED); nothing changes otherwise.
--
-- KEYS[1] study hash
-- KEYS[2] trials hash
-- KEYS[3] sorted set of WAITING trial numbers
-- KEYS[4] sorted set of RUNNING trial numbers
-- KEYS[5] sorted set of COMPLETED trial numbers
-- KEYS[6] sorted set of FAILED trial numbers
-- KEYS[7] scores sorted set
-- ARGV[1] trial number
-- ARGV[2] new state: COMPLETED or FAILED
-- ARGV[3] patch layer appended to the trial (state, values or failure_reason,
--         complete_time, metadata to merge)
-- ARGV[4] score, or '' for none
-- ARGV[5] member of the trial in the scores set (zero-padded number)
-- ARGV[6] uid the caller validated the values against, or '' for no check
--
-- Returns {"OK", stored trial}, {"STUDY_NOT_FOUND"}, {"TRIAL_NOT_FOUND"} or
-- {"TRIAL_NOT_RUNNING", state} or {"STALE_STUDY"}.
local uid = redis.call('HGET', KEYS[1], 'uid')
if not uid then
  return {'STUDY_NOT_FOUND'}
end
if ARGV[6] ~= '' and uid ~= ARGV[6] then
  return {'STALE_STUDY'}
end
local text = redis.call('HGET', KEYS[2], ARGV[1])
if not text then
  return {'TRIAL_NOT_FOUND'}
end
if not redis.call('ZSCORE', KEYS[4], ARGV[1]) then
  local states = {{3, 'WAITING'}, {5, 'COMPLETED'}, {6, 'FAILED'}}
  for _, pair in ipairs(states) do
    if redis.call('ZSCORE', KEYS[pair[1]], ARGV[1]) then
      return {'TRIAL_NOT_RUNNING', pair[2]}
    end
  end
  return {'TRIAL_NOT_RUNNING', ''}
end
text = string.sub(text, 1, -2) .. ',' .. ARGV[3] .. ']'
redis.call('HSET', KEYS[2], ARGV[1], text)
redis.call('ZREM', KEYS[4], ARGV[1])
if ARGV[2] == 'COMPLETED' then
  redis.call('ZADD', KEYS[5], ARGV[1], ARGV[1])
else
  redis.call('ZADD', KEYS[6], ARGV[1], ARGV[1])
end
if ARGV[4] ~= '' then
  redis.call('ZADD', KEYS[7], ARGV[4], ARGV[5])
end
return {'OK', text}
