-- uses: _lib
-- renew_claim: pushes the deadline of every member of a claim ("<slot>:<token>") to a new
-- deadline, and the in-progress record of the ask's request id with it, if every member is
-- still claimed under the token (else nothing changes). A member past its deadline that nobody
-- took again is still the caller's, as for commit_trials.
--
-- Keys (store/_scripts.py RENEW_CLAIM):
--   study          study hash (field uid)
--   claims         claims sorted set: "<slot>:<token>" scored by deadline
--   requests       requests hash
--   request_times  request_times sorted set
-- Arguments:
--   uid            uid the caller read
--   token          token of the claim
--   deadline       new deadline of the claim (now + claim_ttl)
--   rid            request id, or ''
--   attempt        attempt id of this execution of the ask
--   until_time     time until which the request record is kept
--   slots...       slots of the claim: "<index>" or "r<number>"
--
-- Returns {"OK"}, {"STUDY_NOT_FOUND"}, {"STALE_STUDY"}, {"REQUEST_IN_PROGRESS"} or
-- {"CLAIM_EXPIRED"}.
local head, refused = open_study(k, a.uid)
if not head then
  return refused
end
local rid = a.rid
-- A retry that took the ask over (or answered it) owns the ask now: as in commit_trials.
refused = ask_taken_over(k, rid, a.attempt)
if refused then
  return refused
end
for _, slot in ipairs(a.slots) do
  if not redis.call('ZSCORE', k.claims, slot .. ':' .. a.token) then
    return {'CLAIM_EXPIRED'}
  end
end
for _, slot in ipairs(a.slots) do
  redis.call('ZADD', k.claims, 'XX', a.deadline, slot .. ':' .. a.token)
end
if rid ~= '' then
  -- The format claim_trials writes: a concurrent retry is refused until the new deadline.
  record_request(k, rid, 'P:' .. a.attempt .. ':' .. a.deadline, a.until_time)
end
return {'OK'}
