-- uses: _lib
-- get_trial: one trial with its lease, or which of study and trial is missing (a consistent
-- read). With a time, the study's due leases expire first.
--
-- KEYS[1] study hash
-- KEYS[2] trials hash
-- KEYS[3] sorted set of RUNNING trial numbers
-- KEYS[4] sorted set of FAILED trial numbers
-- KEYS[5] leases sorted set
-- KEYS[6] expired sorted set
-- KEYS[7] re-issue queue
-- KEYS[8] owners hash
-- KEYS[9] holders sorted set
-- ARGV[1] trial number
-- ARGV[2] now, or '' for no expiry
-- ARGV[3] patch layer of a trial whose lease expires
-- ARGV[4] most leases to expire
--
-- Returns {"OK", stored trial, lease or nil}, {"STUDY_NOT_FOUND"} or {"TRIAL_NOT_FOUND"}.
local k = {trials = KEYS[2], running = KEYS[3], failed = KEYS[4], leases = KEYS[5],
  expired = KEYS[6], reissue = KEYS[7], owners = KEYS[8], holders = KEYS[9]}
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'STUDY_NOT_FOUND'}
end
if ARGV[2] ~= '' then
  expire_due(k, ARGV[2], ARGV[3], tonumber(ARGV[4]))
end
local text = redis.call('HGET', KEYS[2], ARGV[1])
if not text then
  return {'TRIAL_NOT_FOUND'}
end
return {'OK', text, redis.call('ZSCORE', KEYS[5], ARGV[1])}
