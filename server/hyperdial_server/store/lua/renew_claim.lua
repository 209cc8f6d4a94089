-- uses: _lib
-- renew_claim: pushes the deadline of every member of a claim ("<slot>:<token>") to a new
-- deadline, and the in-progress record of the ask's request id with it, if every member is
-- still claimed under the token (else nothing changes). A member past its deadline that nobody
-- took again is still the caller's, as for commit_trials.
--
-- KEYS[1]  study hash (field uid)
-- KEYS[2]  claims sorted set: "<slot>:<token>" scored by deadline
-- KEYS[3]  requests hash
-- KEYS[4]  request_times sorted set
-- ARGV[1]  uid the caller read
-- ARGV[2]  token of the claim
-- ARGV[3]  new deadline of the claim (now + claim_ttl)
-- ARGV[4]  request id, or ''
-- ARGV[5]  attempt id of this execution of the ask
-- ARGV[6]  time until which the request record is kept
-- ARGV[7], ARGV[8], ... slots of the claim: "<index>" or "r<number>"
--
-- Returns {"OK"}, {"STUDY_NOT_FOUND"}, {"STALE_STUDY"}, {"REQUEST_IN_PROGRESS"} or
-- {"CLAIM_EXPIRED"}.
local k = {requests = KEYS[3], request_times = KEYS[4]}
local uid = redis.call('HGET', KEYS[1], 'uid')
if not uid then
  return {'STUDY_NOT_FOUND'}
end
if uid ~= ARGV[1] then
  return {'STALE_STUDY'}
end
local rid = ARGV[4]
if rid ~= '' then
  -- A retry that took the ask over (or answered it) owns the ask now: as in commit_trials.
  local rec = redis.call('HGET', KEYS[3], rid)
  if rec and string.match(rec, '^P:([^:]*):') ~= ARGV[5] then
    return {'REQUEST_IN_PROGRESS'}
  end
end
for i = 7, #ARGV do
  if not redis.call('ZSCORE', KEYS[2], ARGV[i] .. ':' .. ARGV[2]) then
    return {'CLAIM_EXPIRED'}
  end
end
for i = 7, #ARGV do
  redis.call('ZADD', KEYS[2], 'XX', ARGV[3], ARGV[i] .. ':' .. ARGV[2])
end
if rid ~= '' then
  -- The format claim_trials writes: a concurrent retry is refused until the new deadline.
  record_request(k, rid, 'P:' .. ARGV[5] .. ':' .. ARGV[3], ARGV[6])
end
return {'OK'}
