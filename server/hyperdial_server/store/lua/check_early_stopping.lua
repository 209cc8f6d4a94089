-- uses: _lib
-- check_early_stopping: the decision of a trial's last report (its stop decision once
-- STOPPED), read only; or which of study and trial is missing (a consistent read).
--
-- Keys (store/_scripts.py CHECK_EARLY_STOPPING):
--   study          study hash
--   trials         trials hash
--   es_state       early-stopping bookkeeping hash
-- Arguments:
--   number         trial number
--
-- Returns {"OK", decision JSON or nil (no report yet)}, {"STUDY_NOT_FOUND"} or
-- {"TRIAL_NOT_FOUND"}.
local refused = study_missing(k)
if refused then
  return refused
end
if redis.call('HEXISTS', k.trials, a.number) == 0 then
  return {'TRIAL_NOT_FOUND'}
end
return {'OK', redis.call('HGET', k.es_state, a.number .. ':d')}
