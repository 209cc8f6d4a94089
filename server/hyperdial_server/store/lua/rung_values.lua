-- rung_values: what the Bayesian sampler compares the trials it models with under successive
-- halving or Hyperband: the values those trials recorded at rungs; read only. O(trials given),
-- whatever the size of the study: each trial's own values are one field of es_state.
--
-- Keys (store/_scripts.py RUNG_VALUES):
--   es_state       early-stopping bookkeeping hash ("<n>:r" -> the trial's rung values,
--                  "rungs" -> how many those fields hold)
--   es_rungs       values recorded at rungs, by bracket and rung
-- Arguments:
--   numbers        the trials' numbers (variadic)
--
-- Returns {"OWN", field...}: each given trial's "<n>:r" field ("<bracket>|<rung>|<value>;"
-- each, or false), in the order given; or {"ALL", member...}: every member of es_rungs
-- ("<bracket>|<rung>|<sortable>|<number>|<value>"), when an older server recorded values
-- without the trial's field (the count differs from the set's size), so that none is missed.
local recorded = redis.call('ZCARD', k.es_rungs)
if recorded ~= tonumber(redis.call('HGET', k.es_state, 'rungs') or '0') then
  return {'ALL', redis.call('ZRANGE', k.es_rungs, 0, -1)}
end
if recorded == 0 or #a.numbers == 0 then
  return {'OWN', {}}
end
-- HMGET in chunks: unpack() of a long table overflows Lua's C stack (about 8,000 values).
local out, fields = {}, {}
for i, n in ipairs(a.numbers) do
  fields[#fields + 1] = n .. ':r'
  if #fields == 1000 or i == #a.numbers then
    for _, v in ipairs(redis.call('HMGET', k.es_state, unpack(fields))) do
      out[#out + 1] = v
    end
    fields = {}
  end
end
return {'OWN', out}
