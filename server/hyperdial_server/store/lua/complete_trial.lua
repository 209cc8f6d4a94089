-- uses: _lib
-- complete_trial: ends a RUNNING trial (COMPLETED or FAILED), or records the late result of a
-- trial whose lease expired; nothing changes otherwise. A request id answered before returns
-- the trial as it is.
--
-- Keys (store/_scripts.py COMPLETE_TRIAL):
--   study          study hash
--   trials         trials hash
--   waiting        sorted set of WAITING trial numbers
--   running        sorted set of RUNNING trial numbers
--   completed      sorted set of COMPLETED trial numbers
--   failed         sorted set of FAILED trial numbers
--   scores         scores sorted set
--   leases         leases sorted set
--   expired        expired sorted set (lease-expired trials that take a late result)
--   reissue        re-issue queue
--   owners         owners hash
--   holders        holders sorted set
--   requests       requests hash
--   request_times  request_times sorted set
-- Arguments:
--   number         trial number
--   state          new state: COMPLETED or FAILED
--   patch          patch layer appended to the trial (state, values or failure_reason,
--                  complete_time, metadata to merge)
--   score          score, or '' for none
--   score_member   member of the trial in the scores set (zero-padded number)
--   uid            uid the caller validated the values against, or '' for no check
--   rid            request id, or ''
--   now            now
--   until_time     time until which the request record is kept
--   fingerprint    fingerprint of the call's payload, or '' for no check
--
-- Returns {"OK", stored trial}, {"STUDY_NOT_FOUND"}, {"TRIAL_NOT_FOUND"},
-- {"TRIAL_NOT_RUNNING", state}, {"STALE_STUDY"}, {"REQUEST_ID_REUSED", what} or
-- {"REQUEST_ID_MISMATCH", what}.
-- An empty uid checks nothing (nil for open_study).
local head, refused = open_study(k, a.uid ~= '' and a.uid or nil)
if not head then
  return refused
end
local number = a.number
local rid = a.rid
local rec
rec, refused = replay_request(k, rid, a.now, a.fingerprint, function(r)
  return r == 'D:T:' .. number
end)
if refused then
  return refused
end
if rec then
  return {'OK', redis.call('HGET', k.trials, number)}
end
if redis.call('HEXISTS', k.trials, number) == 0 then
  return {'TRIAL_NOT_FOUND'}
end
if redis.call('ZSCORE', k.running, number) then
  redis.call('ZREM', k.running, number)
  redis.call('ZREM', k.leases, number)
  release(k, number)
  if a.state == 'COMPLETED' then
    redis.call('ZADD', k.completed, number, number)
  else
    redis.call('ZADD', k.failed, number, number)
  end
elseif redis.call('ZSCORE', k.expired, number) then
  -- A late result: taken once. Values complete the trial and withdraw its point from the
  -- re-issue queue if it is still there; a failure only replaces the reason.
  redis.call('ZREM', k.expired, number)
  if a.state == 'COMPLETED' then
    redis.call('ZREM', k.failed, number)
    redis.call('ZADD', k.completed, number, number)
    redis.call('ZREM', k.reissue, number)
  end
else
  local states = {{k.waiting, 'WAITING'}, {k.completed, 'COMPLETED'}, {k.failed, 'FAILED'}}
  for _, pair in ipairs(states) do
    if redis.call('ZSCORE', pair[1], number) then
      return {'TRIAL_NOT_RUNNING', pair[2]}
    end
  end
  return {'TRIAL_NOT_RUNNING', ''}
end
local text = patch_trial(k, number, a.patch)
if a.score ~= '' then
  redis.call('ZADD', k.scores, a.score, a.score_member)
end
if rid ~= '' then
  record_request(k, rid, 'D:T:' .. number, a.until_time, a.fingerprint)
end
return {'OK', text}
