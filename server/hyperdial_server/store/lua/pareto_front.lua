-- uses: _lib
-- pareto_front: the trials on the study's Pareto front, kept by keep_front of _lib as trials
-- become candidates, in O(front size) whatever the size of the study. The front is answered
-- only if it is exact: of this study's uid, and having counted every COMPLETED and STOPPED
-- trial (neither state is ever left, so equal counts mean the same trials). Otherwise (a study
-- stored before fronts were kept, a candidate made by an older server, a front left by a study
-- deleted by one) the caller computes it afresh and puts it back (install_front.lua).
--
-- Keys (store/_scripts.py PARETO_FRONT):
--   study          study hash
--   trials         trials hash
--   completed      sorted set of COMPLETED trial numbers
--   stopped        sorted set of STOPPED trial numbers
--   front          the study's Pareto front hash
--   changes        changes sorted set (revision of each trial's last change)
--
-- Returns {"OK", {stored trial...}, {revision or false...}} in ascending order of number,
-- {"STALE_FRONT"} or {"STUDY_NOT_FOUND"}.
local head, refused = open_study(k, nil, 'front_seen')
if not head then
  return refused
end
local seen = tonumber(head[2]) or 0
local flat = redis.call('HGETALL', k.front)
local owner, numbers = nil, {}
for i = 1, #flat, 2 do
  local field = flat[i]
  if field == 'u' then
    owner = flat[i + 1]
  else
    numbers[#numbers + 1] = tonumber(field)
  end
end
local candidates = redis.call('ZCARD', k.completed) + redis.call('ZCARD', k.stopped)
if owner ~= head[1] or seen ~= candidates then
  return {'STALE_FRONT'}
end
table.sort(numbers)
local texts, revisions = {}, {}
for i, number in ipairs(numbers) do
  local n = string.format('%d', number)
  texts[i] = redis.call('HGET', k.trials, n)
  revisions[i] = redis.call('ZSCORE', k.changes, n) or false
end
return {'OK', texts, revisions}
