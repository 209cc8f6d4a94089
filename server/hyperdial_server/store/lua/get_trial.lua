-- get_trial: one trial, or which of study and trial is missing (a consistent read).
--
-- KEYS[1] study hash
-- KEYS[2] trials hash
-- ARGV[1] trial number
--
-- Returns {"OK", stored trial} or {"STUDY_NOT_FOUND"} or {"TRIAL_NOT_FOUND"}.
local text = redis.call('HGET', KEYS[2], ARGV[1])
if text then
  return {'OK', text}
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'STUDY_NOT_FOUND'}
end
return {'TRIAL_NOT_FOUND'}
