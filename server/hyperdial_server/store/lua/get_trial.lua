-- uses: _lib
-- get_trial: one trial with its lease, or which of study and trial is missing (a consistent
-- read). With a time, the study's due leases expire first.
--
-- Keys (store/_scripts.py GET_TRIAL):
--   study          study hash
--   trials         trials hash
--   running        sorted set of RUNNING trial numbers
--   failed         sorted set of FAILED trial numbers
--   leases         leases sorted set
--   expired        expired sorted set
--   reissue        re-issue queue
--   owners         owners hash
--   holders        holders sorted set
-- Arguments:
--   number         trial number
--   now            now, or '' for no expiry
--   expiry_patch   patch layer of a trial whose lease expires
--   expire_batch   most leases to expire
--
-- Returns {"OK", stored trial, lease or nil}, {"STUDY_NOT_FOUND"} or {"TRIAL_NOT_FOUND"}.
local refused = study_missing(k)
if refused then
  return refused
end
if a.now ~= '' then
  expire_due(k, a.now, a.expiry_patch, tonumber(a.expire_batch))
end
local text = redis.call('HGET', k.trials, a.number)
if not text then
  return {'TRIAL_NOT_FOUND'}
end
return {'OK', text, redis.call('ZSCORE', k.leases, a.number)}
