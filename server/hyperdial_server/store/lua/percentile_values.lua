-- uses: _lib
-- percentile_values: what the Bayesian sampler compares a stopped trial with under a
-- percentile rule (the median rule included): the values the rule recorded at the steps where
-- STOPPED trials made their last report, at the `max_steps` steps with the most of them (ties:
-- the lower step); read only.
--
-- Keys (store/_scripts.py PERCENTILE_VALUES):
--   stopped        STOPPED trial numbers
--   es_state       early-stopping bookkeeping hash ("<n>" -> "<last step>|...")
--   es_steps       values recorded per step by percentile rules
-- Arguments:
--   max_steps      most steps returned
--
-- Returns {"OK", member...}: the members of es_steps at the chosen steps
-- ("<step>|<sortable>|<number>|<value>", see store/_keys.py).
local counts, steps = {}, {}
for _, n in ipairs(redis.call('ZRANGE', k.stopped, 0, -1)) do
  local line = redis.call('HGET', k.es_state, n)
  if line then
    local step = string.match(line, '^([^|]+)|')
    if counts[step] == nil then
      counts[step] = 0
      steps[#steps + 1] = step
    end
    counts[step] = counts[step] + 1
  end
end
-- Steps are zero-padded: text order is numeric order.
table.sort(steps, function(x, y)
  if counts[x] ~= counts[y] then
    return counts[x] > counts[y]
  end
  return x < y
end)
local out = {'OK'}
for i = 1, math.min(#steps, tonumber(a.max_steps)) do
  local step = steps[i]
  for _, member in ipairs(redis.call('ZRANGEBYLEX', k.es_steps, '[' .. step .. '|',
      '(' .. step .. '}')) do
    out[#out + 1] = member
  end
end
return out
