-- uses: _lib
-- create_trial: adds a WAITING (enqueued) or finished trial with the next number. A request id
-- answered before returns the trial it created, as it is now.
--
-- Keys (store/_scripts.py CREATE_TRIAL):
--   study          study hash
--   trials         trials hash
--   numbers        sorted set of every trial number
--   state          sorted set of the trial's state
--   queue          queue of WAITING trial numbers
--   scores         scores sorted set
--   requests       requests hash
--   request_times  request_times sorted set
--   leases         leases sorted set
--   changes        changes sorted set (revision of each trial's last change)
--   front          the study's Pareto front hash (a finished trial may be a candidate)
-- Arguments:
--   body           trial JSON without its number, starting with '{'
--   state          state: WAITING, or finished (COMPLETED, FAILED, STOPPED, INFEASIBLE)
--   score          score, or '' for none
--   front_vector   front vector of a COMPLETED or STOPPED trial ("<v1>,<v2>,..."), or ''
--   uid            uid the caller validated the trial against, or '' for no check
--   rid            request id, or ''
--   now            now (also the time of the change)
--   until_time     time until which the request record is kept
--   fingerprint    fingerprint of the call's payload, or '' for no check
--
-- Returns {"OK", stored trial, lease or nil, revision}, {"STUDY_NOT_FOUND"}, {"STALE_STUDY"},
-- {"REQUEST_ID_REUSED", what} or {"REQUEST_ID_MISMATCH", what}.
-- The uid is checked after the request id: a retry gets its trial even from a study whose
-- uid changed since.
-- The count of the front's candidates too (front_seen: store/_keys.py), in the same HMGET.
local head, refused = open_study(k, nil, 'front_seen')
if not head then
  return refused
end
local rid = a.rid
local rec
rec, refused = replay_request(k, rid, a.now, a.fingerprint, function(r)
  return string.sub(r, 1, 4) == 'D:C:'
end)
if refused then
  return refused
end
if rec then
  local number = string.sub(rec, 5)
  return {'OK', redis.call('HGET', k.trials, number), redis.call('ZSCORE', k.leases, number),
    redis.call('ZSCORE', k.changes, number)}
end
-- An empty uid checks nothing.
refused = check_uid(head[1], a.uid ~= '' and a.uid or nil)
if refused then
  return refused
end
local number = string.format('%d', redis.call('HINCRBY', k.study, 'trials', 1))
-- The stored form is an array of layers; the number is spliced into the first one.
local text = '[{"number":' .. number .. ',' .. string.sub(a.body, 2) .. ']'
redis.call('HSET', k.trials, number, text)
redis.call('ZADD', k.numbers, number, number)
redis.call('ZADD', k.state, number, number)
if a.state == 'WAITING' then
  redis.call('RPUSH', k.queue, number)
end
if a.score ~= '' then
  redis.call('ZADD', k.scores, a.score, string.format('%020d', tonumber(number)))
end
local revision
if a.state == 'COMPLETED' or a.state == 'STOPPED' then
  keep_front(k, head[1], number, a.front_vector)
  revision = touch(k, number, a.now, 'front_seen', (tonumber(head[2]) or 0) + 1)
else
  revision = touch(k, number, a.now)
end
if rid ~= '' then
  record_request(k, rid, 'D:C:' .. number, a.until_time, a.fingerprint)
end
return {'OK', text, false, revision}
