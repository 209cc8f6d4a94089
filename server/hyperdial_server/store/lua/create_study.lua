-- create_study: stores a new study with no trials. The same request id as the call that
-- created the study, within its time, returns the study instead of STUDY_ALREADY_EXISTS.
--
-- Keys (store/_scripts.py CREATE_STUDY): every key of the study but ``deleted``, by the names
-- of StudyKeys, the study hash first (leftovers of nothing are removed, defensively)
-- Arguments:
--   record         study record JSON
--   uid            uid of the study
--   rid            request id, or ''
--   now            now
--   until_time     time until which the request id is kept
--   fingerprint    fingerprint of the call's payload, or '' for no check
--
-- Returns {"OK", study record JSON}, {"STUDY_ALREADY_EXISTS"} or {"REQUEST_ID_MISMATCH", what}.
if redis.call('EXISTS', k.study) == 1 then
  if a.rid ~= '' then
    local got = redis.call('HMGET', k.study, 'create_request', 'create_request_until', 'record',
      'create_request_fp')
    if got[1] == a.rid and tonumber(got[2]) >= tonumber(a.now) then
      -- A retry must repeat the call: the same id with another spec is refused (no
      -- fingerprint on either side, as in records made before there were any: no check).
      if got[4] and a.fingerprint ~= '' and got[4] ~= a.fingerprint then
        return {'REQUEST_ID_MISMATCH', 'CreateStudy'}
      end
      return {'OK', got[3]}
    end
  end
  return {'STUDY_ALREADY_EXISTS'}
end
redis.call('UNLINK', k.trials, k.numbers, k.waiting, k.running, k.completed, k.failed, k.queue,
  k.claims, k.scores, k.leases, k.reissue, k.expired, k.owners, k.holders, k.requests,
  k.request_times, k.stopped, k.es_state, k.es_curves, k.es_steps, k.es_rungs, k.changes,
  k.infeasible, k.front)
redis.call('HSET', k.study, 'record', a.record, 'uid', a.uid, 'trials', 0,
  'next_index', 0, 'handed_out', 0, 'front_seen', 0)
-- An empty front of this study (store/_keys.py): exact from the start.
redis.call('HSET', k.front, 'u', a.uid)
if a.rid ~= '' then
  redis.call('HSET', k.study, 'create_request', a.rid, 'create_request_until', a.until_time)
  if a.fingerprint ~= '' then
    redis.call('HSET', k.study, 'create_request_fp', a.fingerprint)
  end
end
return {'OK', a.record}
