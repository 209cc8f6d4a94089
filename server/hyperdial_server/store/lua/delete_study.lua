-- uses: _lib
-- delete_study: removes every key of a study. A request id that deleted the study before,
-- within its time, changes nothing (not even a study created since) and answers OK.
--
-- Keys (store/_scripts.py DELETE_STUDY): every key of the study, by the names of StudyKeys,
-- the study hash first, then
--   deleted        hash of the request ids that deleted the study (outlives it, with a TTL)
-- Arguments:
--   rid            request id, or ''
--   now            now
--   until_time     time until which the request id is kept
--   ttl_ms         TTL of the request ids hash, milliseconds
--   fingerprint    fingerprint of the call's payload, or '' for no check
--
-- Returns {"OK"}, {"STUDY_NOT_FOUND"} or {"REQUEST_ID_MISMATCH", what}.
local deleted = k.deleted
if a.rid ~= '' then
  -- "<until>" or "<until>|<fingerprint>".
  local got = redis.call('HGET', deleted, a.rid)
  if got then
    local bar = string.find(got, '|', 1, true)
    local until_time = bar and string.sub(got, 1, bar - 1) or got
    local fingerprint = bar and string.sub(got, bar + 1) or ''
    if tonumber(until_time) >= tonumber(a.now) then
      if fingerprint ~= '' and a.fingerprint ~= '' and fingerprint ~= a.fingerprint then
        return {'REQUEST_ID_MISMATCH', 'DeleteStudy'}
      end
      return {'OK'}
    end
  end
end
local refused = study_missing(k)
if refused then
  return refused
end
-- UNLINK frees a large study in the background instead of blocking the server.
redis.call('UNLINK', k.study, k.trials, k.numbers, k.waiting, k.running, k.completed, k.failed,
  k.queue, k.claims, k.scores, k.leases, k.reissue, k.expired, k.owners, k.holders, k.requests,
  k.request_times, k.stopped, k.es_state, k.es_curves, k.es_steps, k.es_rungs, k.changes,
  k.infeasible, k.front)
if a.rid ~= '' then
  local value = a.until_time
  if a.fingerprint ~= '' then
    value = value .. '|' .. a.fingerprint
  end
  redis.call('HSET', deleted, a.rid, value)
  redis.call('PEXPIRE', deleted, a.ttl_ms)
end
return {'OK'}
