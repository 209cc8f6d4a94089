-- uses: _lib
-- complete_trial: ends a RUNNING trial (COMPLETED, FAILED, STOPPED by its worker, or
-- INFEASIBLE), or records the late result of a trial whose lease expired; nothing changes
-- otherwise. A request id answered before returns the trial as it is, and so does a stop of a
-- trial already STOPPED.
--
-- A stopped trial's final values are those of its last report (es_state "<n>:v"), its stop
-- decision ("rule":"worker") is at the step of that report (0 without one), and without a
-- score of its own it is ranked by the score given with that report, if any, and so is its
-- front vector. A trial that becomes COMPLETED or STOPPED is a candidate of the study's
-- Pareto front, kept in the same step (keep_front of _lib).
--
-- Keys (store/_scripts.py COMPLETE_TRIAL):
--   study          study hash
--   trials         trials hash
--   waiting        sorted set of WAITING trial numbers
--   running        sorted set of RUNNING trial numbers
--   completed      sorted set of COMPLETED trial numbers
--   failed         sorted set of FAILED trial numbers
--   stopped        sorted set of STOPPED trial numbers
--   infeasible     sorted set of INFEASIBLE trial numbers
--   scores         scores sorted set
--   leases         leases sorted set
--   expired        expired sorted set (lease-expired trials that take a late result)
--   reissue        re-issue queue
--   owners         owners hash
--   holders        holders sorted set
--   requests       requests hash
--   request_times  request_times sorted set
--   es_state       early-stopping bookkeeping hash (last report, its values and decision)
--   changes        changes sorted set (revision of each trial's last change)
--   front          the study's Pareto front hash
-- Arguments:
--   number         trial number
--   state          new state: COMPLETED, FAILED, STOPPED or INFEASIBLE
--   patch          patch layer appended to the trial (state, values or failure_reason (also
--                  the reason of INFEASIBLE), complete_time, metadata to merge)
--   stop           for STOPPED: the stop decision's JSON after its step, ending with '}'
--                  ('"rule":"worker","message":"..."}'); '' otherwise
--   score          score, or '' for none (a stop without one takes its last report's)
--   score_member   member of the trial in the scores set (zero-padded number)
--   front_vector   the trial's front vector ("<v1>,<v2>,...": values of the objectives,
--                  lower is better), or '' for none (a stop without one takes its last
--                  report's)
--   uid            uid the caller validated the values against, or '' for no check
--   rid            request id, or ''
--   now            now (also the time of the change)
--   until_time     time until which the request record is kept
--   fingerprint    fingerprint of the call's payload, or '' for no check
--
-- Returns {"OK", stored trial, revision}, {"STUDY_NOT_FOUND"}, {"TRIAL_NOT_FOUND"},
-- {"TRIAL_NOT_RUNNING", state}, {"STALE_STUDY"}, {"REQUEST_ID_REUSED", what} or
-- {"REQUEST_ID_MISMATCH", what}. A replay, and a stop of a trial STOPPED already, change
-- nothing (the trial's revision stays).
-- An empty uid checks nothing (nil for open_study).
-- The count of the front's candidates too (front_seen: store/_keys.py), in the same HMGET.
local head, refused = open_study(k, a.uid ~= '' and a.uid or nil, 'front_seen')
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
  return {'OK', redis.call('HGET', k.trials, number), redis.call('ZSCORE', k.changes, number)}
end
if redis.call('HEXISTS', k.trials, number) == 0 then
  return {'TRIAL_NOT_FOUND'}
end
local state = a.state
local sets = {COMPLETED = k.completed, FAILED = k.failed, STOPPED = k.stopped,
  INFEASIBLE = k.infeasible}
if state == 'STOPPED' and redis.call('ZSCORE', k.stopped, number) then
  -- Stopped already (by the policy at a report, or by an earlier stop): answered as it is.
  if rid ~= '' then
    record_request(k, rid, 'D:T:' .. number, a.until_time, a.fingerprint)
  end
  return {'OK', redis.call('HGET', k.trials, number), redis.call('ZSCORE', k.changes, number)}
end
if redis.call('ZSCORE', k.running, number) then
  redis.call('ZREM', k.running, number)
  redis.call('ZREM', k.leases, number)
  release(k, number)
  redis.call('ZADD', sets[state], number, number)
elseif redis.call('ZSCORE', k.expired, number) then
  -- A late result: taken once. Values, a stop (the worker's verdict on the point, with the
  -- measurements it reported) or an infeasible verdict (the point cannot give a result) end
  -- the trial and withdraw its point from the re-issue queue if it is still there; a failure
  -- (of the infrastructure, not of the point) only replaces the reason.
  redis.call('ZREM', k.expired, number)
  if state ~= 'FAILED' then
    redis.call('ZREM', k.failed, number)
    redis.call('ZADD', sets[state], number, number)
    redis.call('ZREM', k.reissue, number)
  end
else
  return {'TRIAL_NOT_RUNNING', trial_state(k, number)}
end
local patch = a.patch
local score = a.score
local vector = a.front_vector
-- Whether the trial joins the front's candidates: not when a stop would take the vector of a
-- report an older server recorded (it kept none), so the front stays short of a candidate
-- and its next read computes it afresh.
local candidate = state == 'COMPLETED' or state == 'STOPPED'
if state == 'STOPPED' then
  local got = redis.call('HMGET', k.es_state, number, number .. ':v')
  local step = '0'
  if got[1] then
    local fields = report_fields(got[1])
    step = unpad(fields[1])
    if score == '' then
      score = fields[7]
    end
    if vector == '' then
      vector = fields[9]
      candidate = vector ~= nil
    end
  end
  local decision = '{"stop":true,"step":' .. step .. ',' .. a.stop
  local values = got[2] and (',"values":' .. got[2]) or ''
  patch = string.sub(patch, 1, -2) .. values .. ',"stop":' .. decision .. '}'
  redis.call('HSET', k.es_state, number .. ':d', decision)
end
local text = patch_trial(k, number, patch)
local revision
if candidate then
  keep_front(k, head[1], number, vector)
  revision = touch(k, number, a.now, 'front_seen', (tonumber(head[2]) or 0) + 1)
else
  revision = touch(k, number, a.now)
end
if score ~= '' then
  redis.call('ZADD', k.scores, score, a.score_member)
end
if rid ~= '' then
  record_request(k, rid, 'D:T:' .. number, a.until_time, a.fingerprint)
end
return {'OK', text, revision}
