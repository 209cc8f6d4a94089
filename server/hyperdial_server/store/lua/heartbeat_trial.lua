-- uses: _lib
-- heartbeat_trial: renews the lease of a RUNNING trial; a lease found expired expires instead.
--
-- KEYS[1]  study hash
-- KEYS[2]  trials hash
-- KEYS[3]  sorted set of WAITING trial numbers
-- KEYS[4]  sorted set of RUNNING trial numbers
-- KEYS[5]  sorted set of COMPLETED trial numbers
-- KEYS[6]  sorted set of FAILED trial numbers
-- KEYS[7]  leases sorted set
-- KEYS[8]  expired sorted set
-- KEYS[9]  re-issue queue
-- KEYS[10] owners hash
-- KEYS[11] holders sorted set
-- ARGV[1]  trial number
-- ARGV[2]  now
-- ARGV[3]  new lease deadline
-- ARGV[4]  patch layer of a trial whose lease expires
--
-- Returns {"OK", stored trial}, {"STUDY_NOT_FOUND"}, {"TRIAL_NOT_FOUND"} or
-- {"TRIAL_NOT_RUNNING", state[":expired"]}.
local k = {trials = KEYS[2], running = KEYS[4], failed = KEYS[6], leases = KEYS[7],
  expired = KEYS[8], reissue = KEYS[9], owners = KEYS[10], holders = KEYS[11]}
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'STUDY_NOT_FOUND'}
end
local number = ARGV[1]
local text = redis.call('HGET', KEYS[2], number)
if not text then
  return {'TRIAL_NOT_FOUND'}
end
if redis.call('ZSCORE', KEYS[4], number) then
  local deadline = redis.call('ZSCORE', KEYS[7], number)
  if deadline and tonumber(deadline) < tonumber(ARGV[2]) then
    expire_one(k, number, ARGV[4])
    return {'TRIAL_NOT_RUNNING', 'FAILED:expired'}
  end
  redis.call('ZADD', KEYS[7], ARGV[3], number)
  return {'OK', text}
end
if redis.call('ZSCORE', KEYS[8], number) then
  return {'TRIAL_NOT_RUNNING', 'FAILED:expired'}
end
local states = {{3, 'WAITING'}, {5, 'COMPLETED'}, {6, 'FAILED'}}
for _, pair in ipairs(states) do
  if redis.call('ZSCORE', KEYS[pair[1]], number) then
    return {'TRIAL_NOT_RUNNING', pair[2]}
  end
end
return {'TRIAL_NOT_RUNNING', ''}
