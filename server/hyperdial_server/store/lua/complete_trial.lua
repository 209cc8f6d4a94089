-- uses: _lib
-- complete_trial: ends a RUNNING trial (COMPLETED or FAILED), or records the late result of a
-- trial whose lease expired; nothing changes otherwise. A request id answered before returns
-- the trial as it is.
--
-- KEYS[1]  study hash
-- KEYS[2]  trials hash
-- KEYS[3]  sorted set of WAITING trial numbers
-- KEYS[4]  sorted set of RUNNING trial numbers
-- KEYS[5]  sorted set of COMPLETED trial numbers
-- KEYS[6]  sorted set of FAILED trial numbers
-- KEYS[7]  scores sorted set
-- KEYS[8]  leases sorted set
-- KEYS[9]  expired sorted set (lease-expired trials that take a late result)
-- KEYS[10] re-issue queue
-- KEYS[11] owners hash
-- KEYS[12] holders sorted set
-- KEYS[13] requests hash
-- KEYS[14] request_times sorted set
-- ARGV[1]  trial number
-- ARGV[2]  new state: COMPLETED or FAILED
-- ARGV[3]  patch layer appended to the trial (state, values or failure_reason,
--          complete_time, metadata to merge)
-- ARGV[4]  score, or '' for none
-- ARGV[5]  member of the trial in the scores set (zero-padded number)
-- ARGV[6]  uid the caller validated the values against, or '' for no check
-- ARGV[7]  request id, or ''
-- ARGV[8]  now
-- ARGV[9]  time until which the request record is kept
-- ARGV[10] fingerprint of the call's payload, or '' for no check
--
-- Returns {"OK", stored trial}, {"STUDY_NOT_FOUND"}, {"TRIAL_NOT_FOUND"},
-- {"TRIAL_NOT_RUNNING", state}, {"STALE_STUDY"}, {"REQUEST_ID_REUSED", what} or
-- {"REQUEST_ID_MISMATCH", what}.
local k = {trials = KEYS[2], owners = KEYS[11], holders = KEYS[12], requests = KEYS[13],
  request_times = KEYS[14]}
local uid = redis.call('HGET', KEYS[1], 'uid')
if not uid then
  return {'STUDY_NOT_FOUND'}
end
if ARGV[6] ~= '' and uid ~= ARGV[6] then
  return {'STALE_STUDY'}
end
local number = ARGV[1]
local rid = ARGV[7]
if rid ~= '' then
  purge_requests(k, ARGV[8])
  local rec, fingerprint = find_request(k, rid, ARGV[8])
  if rec then
    if rec == 'D:T:' .. number then
      if fingerprint_differs(fingerprint, ARGV[10]) then
        return {'REQUEST_ID_MISMATCH', request_kind(rec)}
      end
      return {'OK', redis.call('HGET', KEYS[2], number)}
    end
    return {'REQUEST_ID_REUSED', request_kind(rec)}
  end
end
if redis.call('HEXISTS', KEYS[2], number) == 0 then
  return {'TRIAL_NOT_FOUND'}
end
if redis.call('ZSCORE', KEYS[4], number) then
  redis.call('ZREM', KEYS[4], number)
  redis.call('ZREM', KEYS[8], number)
  release(k, number)
  if ARGV[2] == 'COMPLETED' then
    redis.call('ZADD', KEYS[5], number, number)
  else
    redis.call('ZADD', KEYS[6], number, number)
  end
elseif redis.call('ZSCORE', KEYS[9], number) then
  -- A late result: taken once. Values complete the trial and withdraw its point from the
  -- re-issue queue if it is still there; a failure only replaces the reason.
  redis.call('ZREM', KEYS[9], number)
  if ARGV[2] == 'COMPLETED' then
    redis.call('ZREM', KEYS[6], number)
    redis.call('ZADD', KEYS[5], number, number)
    redis.call('ZREM', KEYS[10], number)
  end
else
  local states = {{3, 'WAITING'}, {5, 'COMPLETED'}, {6, 'FAILED'}}
  for _, pair in ipairs(states) do
    if redis.call('ZSCORE', KEYS[pair[1]], number) then
      return {'TRIAL_NOT_RUNNING', pair[2]}
    end
  end
  return {'TRIAL_NOT_RUNNING', ''}
end
local text = patch_trial(k, number, ARGV[3])
if ARGV[4] ~= '' then
  redis.call('ZADD', KEYS[7], ARGV[4], ARGV[5])
end
if rid ~= '' then
  record_request(k, rid, 'D:T:' .. number, ARGV[9], ARGV[10])
end
return {'OK', text}
