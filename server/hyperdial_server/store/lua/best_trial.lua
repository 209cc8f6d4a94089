-- best_trial: the trial of lowest score; ties go to the lowest number because the members
-- of the scores set are zero-padded numbers, which sort by number.
--
-- KEYS[1] study hash
-- KEYS[2] trials hash
-- KEYS[3] scores sorted set
--
-- Returns {"OK"} (no scored trial), {"OK", stored trial} or {"STUDY_NOT_FOUND"}.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'STUDY_NOT_FOUND'}
end
local top = redis.call('ZRANGE', KEYS[3], 0, 0)
if #top == 0 then
  return {'OK'}
end
local number = string.format('%d', tonumber(top[1]))
return {'OK', redis.call('HGET', KEYS[2], number)}
