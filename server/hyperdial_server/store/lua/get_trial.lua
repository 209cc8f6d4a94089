-- uses: _lib
-- get_trial: one trial with its lease (and its kept measurements when asked), or which of study
-- and trial is missing (a consistent read). With a time, the study's due leases expire first.
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
--   changes        changes sorted set (revision of each trial's last change)
--   es_curves      kept measurements sorted set
-- Arguments:
--   number         trial number
--   curve          '1': with the trial's kept measurements; '' without
--   now            now, or '' for no expiry
--   expiry_patch   patch layer of a trial whose lease expires
--   expire_batch   most leases to expire
--
-- Returns {"OK", stored trial, lease or nil, {measurement member...}, revision or nil},
-- {"STUDY_NOT_FOUND"} or {"TRIAL_NOT_FOUND"}.
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
local curve = {}
if a.curve ~= '' then
  local mine = pad(a.number)
  curve = redis.call('ZRANGEBYLEX', k.es_curves, '[' .. mine .. '|', '(' .. mine .. '}')
end
return {'OK', text, redis.call('ZSCORE', k.leases, a.number), curve,
  redis.call('ZSCORE', k.changes, a.number)}
