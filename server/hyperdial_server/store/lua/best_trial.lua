-- uses: _lib
-- best_trial: the trial of lowest score; ties go to the lowest number because the members
-- of the scores set are zero-padded numbers, which sort by number.
--
-- Keys (store/_scripts.py BEST_TRIAL):
--   study          study hash
--   trials         trials hash
--   scores         scores sorted set
--   changes        changes sorted set (revision of each trial's last change)
--
-- Returns {"OK"} (no scored trial), {"OK", stored trial, revision or nil} or
-- {"STUDY_NOT_FOUND"}.
local refused = study_missing(k)
if refused then
  return refused
end
local top = redis.call('ZRANGE', k.scores, 0, 0)
if #top == 0 then
  return {'OK'}
end
local number = string.format('%d', tonumber(top[1]))
return {'OK', redis.call('HGET', k.trials, number), redis.call('ZSCORE', k.changes, number)}
