-- uses: _lib
-- percentile_values: what the Bayesian sampler compares a stopped trial with under a
-- percentile rule (the median rule included), for the trials its model takes: the values the
-- rule recorded for the given trials at the steps where the most of the given STOPPED trials
-- made their last report (at most `max_steps` steps; ties: the lower step); read only.
-- O(trials given x max_steps), whatever the size of the study: each value is also a field of
-- es_state under its trial and step.
--
-- Keys (store/_scripts.py PERCENTILE_VALUES):
--   stopped        STOPPED trial numbers
--   es_state       early-stopping bookkeeping hash ("<n>" -> "<last step>|...", "<n>@<step>"
--                  -> the value the rule recorded, "steps" -> how many such fields)
--   es_steps       values recorded per step by percentile rules
-- Arguments:
--   max_steps      most steps returned
--   numbers        the trials' numbers (variadic)
--
-- Returns {"OWN", "<step>|<number>|<value>"...}; or, when an older server recorded values
-- without their field (the count differs from the size of es_steps), {"ALL", member...}: the
-- members of es_steps ("<step>|<sortable>|<number>|<value>", see store/_keys.py) at the steps
-- where the most of the study's STOPPED trials made their last report, so that none is missed.
local max_steps = tonumber(a.max_steps)

-- The steps where the most of `numbers` (nil: every STOPPED trial) stopped, zero-padded.
local function chosen_steps(numbers)
  local counts, steps = {}, {}
  local function count(n)
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
  if numbers == nil then
    for _, n in ipairs(redis.call('ZRANGE', k.stopped, 0, -1)) do
      count(n)
    end
  else
    for _, n in ipairs(numbers) do
      if redis.call('ZSCORE', k.stopped, n) then
        count(n)
      end
    end
  end
  -- Steps are zero-padded: text order is numeric order.
  table.sort(steps, function(x, y)
    if counts[x] ~= counts[y] then
      return counts[x] > counts[y]
    end
    return x < y
  end)
  local out = {}
  for i = 1, math.min(#steps, max_steps) do
    out[i] = steps[i]
  end
  return out
end

if redis.call('ZCARD', k.es_steps) ~= tonumber(redis.call('HGET', k.es_state, 'steps') or '0') then
  local out = {'ALL'}
  for _, step in ipairs(chosen_steps(nil)) do
    for _, member in ipairs(redis.call('ZRANGEBYLEX', k.es_steps, '[' .. step .. '|',
        '(' .. step .. '}')) do
      out[#out + 1] = member
    end
  end
  return out
end

local out = {'OWN'}
local fields, names = {}, {}
-- HMGET in chunks: unpack() of a long table overflows Lua's C stack (about 8,000 values).
local function flush()
  if #fields > 0 then
    local got = redis.call('HMGET', k.es_state, unpack(fields))
    for i = 1, #fields do
      if got[i] then
        out[#out + 1] = names[i] .. '|' .. got[i]
      end
    end
    fields, names = {}, {}
  end
end
for _, padded_step in ipairs(chosen_steps(a.numbers)) do
  local step = unpad(padded_step)
  for _, n in ipairs(a.numbers) do
    fields[#fields + 1] = n .. '@' .. step
    names[#names + 1] = step .. '|' .. n
    if #fields == 1000 then
      flush()
    end
  end
end
flush()
return out
