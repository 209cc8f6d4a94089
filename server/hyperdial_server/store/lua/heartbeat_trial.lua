-- uses: _lib
-- heartbeat_trial: renews the lease of a RUNNING trial; a lease found expired expires instead.
--
-- Keys (store/_scripts.py HEARTBEAT_TRIAL):
--   study          study hash
--   trials         trials hash
--   waiting        sorted set of WAITING trial numbers
--   running        sorted set of RUNNING trial numbers
--   completed      sorted set of COMPLETED trial numbers
--   failed         sorted set of FAILED trial numbers
--   stopped        sorted set of STOPPED trial numbers
--   infeasible     sorted set of INFEASIBLE trial numbers
--   leases         leases sorted set
--   expired        expired sorted set
--   reissue        re-issue queue
--   owners         owners hash
--   holders        holders sorted set
--   changes        changes sorted set (revision of each trial's last change)
-- Arguments:
--   number         trial number
--   now            now
--   lease          new lease deadline
--   expiry_patch   patch layer of a trial whose lease expires
--
-- Returns {"OK", stored trial, revision}, {"STUDY_NOT_FOUND"}, {"TRIAL_NOT_FOUND"} or
-- {"TRIAL_NOT_RUNNING", state[":expired"]}. A renewal is a change of the trial (its lease), so
-- is an expiry.
local refused = study_missing(k)
if refused then
  return refused
end
local number = a.number
local text = redis.call('HGET', k.trials, number)
if not text then
  return {'TRIAL_NOT_FOUND'}
end
if redis.call('ZSCORE', k.running, number) then
  local deadline = redis.call('ZSCORE', k.leases, number)
  if deadline and tonumber(deadline) < tonumber(a.now) then
    expire_one(k, number, a.expiry_patch, a.now)
    return {'TRIAL_NOT_RUNNING', 'FAILED:expired'}
  end
  redis.call('ZADD', k.leases, a.lease, number)
  return {'OK', text, touch(k, number, a.now)}
end
if redis.call('ZSCORE', k.expired, number) then
  return {'TRIAL_NOT_RUNNING', 'FAILED:expired'}
end
return {'TRIAL_NOT_RUNNING', trial_state(k, number)}
