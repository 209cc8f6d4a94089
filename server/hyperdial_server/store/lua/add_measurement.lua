-- uses: _lib
-- add_measurement: an intermediate report of a RUNNING trial, in one step: renews its lease (a
-- report is a heartbeat), records the measurement in the trial's curve (thinned within the
-- cap), applies the study's early-stopping policy and, if it says stop, makes the trial
-- STOPPED. Mirrors core/early_stopping.py (the memory store calls it): the contract suite
-- checks that both stores take the same decisions, messages included.
--
-- Every decision reads only what it needs, a constant number of commands whatever the study
-- size: the values of a step (percentile rules) or of a rung (successive halving, Hyperband)
-- are one lexicographic range of a sorted set whose scores are all 0 (store/_keys.py), counted
-- with ZLEXCOUNT; the k-th value of a step is found by rank (its first member's ZRANK, then
-- ZRANGE by rank), not by walking the range. Python computes everything that needs no stored
-- state (whether the rule decides at this step, how many rungs lie at or below it, sortable
-- texts of values) and passes it as arguments.
--
-- Keys (store/_scripts.py ADD_MEASUREMENT):
--   study          study hash
--   trials         trials hash
--   waiting        sorted set of WAITING trial numbers
--   running        sorted set of RUNNING trial numbers
--   completed      sorted set of COMPLETED trial numbers
--   failed         sorted set of FAILED trial numbers
--   stopped        sorted set of STOPPED trial numbers
--   infeasible     sorted set of INFEASIBLE trial numbers
--   scores         scores sorted set
--   leases         leases sorted set
--   expired        expired sorted set
--   reissue        re-issue queue
--   owners         owners hash
--   holders        holders sorted set
--   requests       requests hash
--   request_times  request_times sorted set
--   es_state       early-stopping bookkeeping hash (and each trial's rung values, "<n>:r",
--                  and values by step, "<n>@<step>", with their counts, "rungs", "steps")
--   es_curves      kept measurements sorted set
--   es_steps       values recorded by percentile rules, by step
--   es_rungs       values recorded at rungs, by bracket and rung
--   changes        changes sorted set (revision of each trial's last change)
--   front          the study's Pareto front hash (a trial the report stops is a candidate)
-- Arguments:
--   number         trial number
--   uid            uid the caller validated the report against, or '' for no check
--   lease          new lease deadline
--   expiry_patch   patch layer of a trial whose lease is found expired
--   step           step of the report, decimal
--   step_key       the same, zero-padded to 20 digits
--   report_values  the report's values, canonical JSON (a repeated report must match)
--   curve          the measurement as kept in the curve (JSON)
--   cap            most measurements kept (the policy's max_measurements): past it, passes
--                  drop every other unprotected measurement, the oldest first (the kept
--                  ones then lie on a stride of report ordinals, doubled at each pass), and
--                  a later report keeps the previous last one only on that stride, so that
--                  the curve stays evenly spread over the whole training
--   mode           'percentile', 'rungs', 'threshold', or '' (no policy)
--   rule           the name decisions of the policy report (median, percentile, ...)
--   value          the watched objective's oriented value (lower is better), exact text;
--                  '' without a policy
--   sortable       the same as 16 hex digits in the order of values
--   min_delta      smallest improvement of the best value that counts (0.0 but for threshold)
--   decides        '1' if the rule decides at this step (percentile: on its interval past the
--                  warm-up; threshold: past the warm-up)
--   percentile     percentile rules: the percentile
--   min_trials     percentile rules: fewest other values for the rule to decide
--   what           percentile rules: how messages name the cut ("median", "25th percentile")
--   sign           -1 if the watched objective is maximised, else 1: messages show values in
--                  the objective's own direction (core.early_stopping.shown)
--   bracket        rungs: the trial's bracket (0 but for Hyperband)
--   reached        rungs: how many rungs of the trial's ladder lie at or below this step
--   eta            rungs: the reduction factor
--   threshold      threshold rule: the oriented threshold, or '' for none
--   patience       threshold rule: patience steps (0: no patience rule)
--   min_delta_text threshold rule: min_delta as messages print it
--   stop_head      the patch of a trial the report stops, without its closing brace (state,
--                  values, complete_time)
--   score          the report's score, kept for when the trial stops, or ''
--   score_member   member of the trial in the scores set (zero-padded number)
--   front_vector   the report's front vector ("<v1>,<v2>,..."), kept like the score (the
--                  ninth field of the trial's es_state line), or ''
--   rid            request id, or ''
--   now            now (also the time of the change)
--   until_time     time until which the request record is kept
--   fingerprint    fingerprint of the call's payload, or '' for no check
--
-- Returns {"OK", stored trial, decision JSON, lease or nil, revision}, {"STUDY_NOT_FOUND"},
-- {"TRIAL_NOT_FOUND"}, {"TRIAL_NOT_RUNNING", state[":expired"]}, {"STEP_NOT_INCREASING",
-- last step[":values"]}, {"STALE_STUDY"}, {"REQUEST_ID_REUSED", what} or
-- {"REQUEST_ID_MISMATCH", what}. A report is a change of the trial (a new revision), a
-- repeated one too (it renews the lease); a replay is not.

-- A JSON string of a message: quotes, backslashes, control characters and '|' (request records
-- end at the first '|') escaped.
local function json_text(text)
  local escaped = string.gsub(text, '[%c"\\|]', function(c)
    return string.format('\\u%04x', string.byte(c))
  end)
  return '"' .. escaped .. '"'
end

-- A decision as store/_codec.py decision_from_json reads it (fields at their default left out).
local function decision_json(stop, step, rule, rung, message, compared)
  local parts = {'{"stop":' .. (stop and 'true' or 'false'), '"step":' .. step}
  if rule then
    parts[#parts + 1] = '"rule":"' .. rule .. '"'
  end
  if rung then
    parts[#parts + 1] = '"rung":' .. string.format('%d', rung)
  end
  if message ~= '' then
    parts[#parts + 1] = '"message":' .. json_text(message)
  end
  if compared > 0 then
    parts[#parts + 1] = '"compared":' .. string.format('%d', compared)
  end
  return table.concat(parts, ',') .. '}'
end

-- The value at the end of a member of es_steps or es_rungs ("...|<value>").
local function member_value(member)
  return tonumber(string.match(member, '([^|]*)$'))
end

-- Whether a member of es_curves, "<number 20>|<step 20>|<flag>|<ordinal 20>|<JSON>", may be
-- thinned (flag 'u', not 'p') and its ordinal (the how-manieth report of its trial it was).
local function thinnable(member)
  return string.sub(member, 43, 43) == 'u', tonumber(string.sub(member, 45, 64))
end

-- Thins the kept measurements of trial `mine` (its zero-padded number) within `cap`: each pass
-- doubles `stride` and drops the unprotected ones whose ordinal is off it (every other one,
-- the oldest first), the last one kept, until within the cap or nothing is left to drop.
-- Returns how many are kept, and the stride.
local function thin(mine, cap, stride)
  local alive = redis.call('ZRANGEBYLEX', k.es_curves, '[' .. mine .. '|', '(' .. mine .. '}')
  local dropped = {}
  while #alive > cap do
    local any = false
    for i = 1, #alive - 1 do
      any = any or thinnable(alive[i])
    end
    if not any then
      break -- only protected measurements and the last: the cap gives way
    end
    stride = stride * 2
    local left = {}
    for i, member in ipairs(alive) do
      local free, ordinal = thinnable(member)
      if i < #alive and free and ordinal % stride ~= 0 then
        dropped[#dropped + 1] = member
      else
        left[#left + 1] = member
      end
    end
    alive = left
  end
  for i = 1, #dropped, 1000 do
    redis.call('ZREM', k.es_curves, unpack(dropped, i, math.min(i + 999, #dropped)))
  end
  return #alive, stride
end

-- The count of the front's candidates too (front_seen: store/_keys.py), in the same HMGET.
local head, refused = open_study(k, a.uid ~= '' and a.uid or nil, 'front_seen')
if not head then
  return refused
end
local number = a.number
local rid = a.rid
local mine_rec = 'D:M:' .. number .. ':'
local rec
rec, refused = replay_request(k, rid, a.now, a.fingerprint, function(r)
  return string.sub(r, 1, #mine_rec) == mine_rec
end)
if refused then
  return refused
end
if rec then
  return {'OK', redis.call('HGET', k.trials, number), string.sub(rec, #mine_rec + 1),
    redis.call('ZSCORE', k.leases, number), redis.call('ZSCORE', k.changes, number)}
end
local text = redis.call('HGET', k.trials, number)
if not text then
  return {'TRIAL_NOT_FOUND'}
end
-- The trial must be RUNNING, as for a heartbeat: a lease found expired expires instead.
if not redis.call('ZSCORE', k.running, number) then
  if redis.call('ZSCORE', k.expired, number) then
    return {'TRIAL_NOT_RUNNING', 'FAILED:expired'}
  end
  return {'TRIAL_NOT_RUNNING', trial_state(k, number)}
end
local deadline = redis.call('ZSCORE', k.leases, number)
if deadline and tonumber(deadline) < tonumber(a.now) then
  expire_one(k, number, a.expiry_patch, a.now)
  return {'TRIAL_NOT_RUNNING', 'FAILED:expired'}
end

-- The trial's bookkeeping: last step, reports, kept measurements, next rung, best value.
local got = redis.call('HMGET', k.es_state, number, number .. ':v', number .. ':d',
  number .. ':r')
local last_step, count, kept, next_rung, best_step, best, stride = nil, 0, 0, 0, '', '', 1
if got[1] then
  local f = report_fields(got[1])
  last_step, count, kept, next_rung = f[1], tonumber(f[2]), tonumber(f[3]), tonumber(f[4])
  best_step, best, stride = f[5], f[6], tonumber(f[8])
end
local step = tonumber(a.step)
if last_step then
  -- Steps never go back; the last step again with its values is a repeat (a retry without
  -- request id): the last decision, and nothing changes but the lease.
  local last = tonumber(last_step)
  if step < last or (step == last and a.report_values ~= got[2]) then
    return {'STEP_NOT_INCREASING', unpad(last_step) .. (step == last and ':values' or '')}
  end
  if step == last then
    redis.call('ZADD', k.leases, a.lease, number)
    local revision = touch(k, number, a.now)
    if rid ~= '' then
      record_request(k, rid, mine_rec .. got[3], a.until_time, a.fingerprint)
    end
    return {'OK', text, got[3], a.lease, revision}
  end
end

local mine = pad(number)
local value = tonumber(a.value)
-- The best value so far improves only by more than min_delta (0 but for the patience rule).
if value and (best == '' or value < tonumber(best) - tonumber(a.min_delta)) then
  best, best_step = a.value, a.step
end
local stop, rule, rung, message, compared = false, nil, nil, '', 0
-- A value as messages show it (core.early_stopping.shown): never -0.
local sign = tonumber(a.sign)
local function shown(x)
  return sign * x + 0.0
end
-- Whether this report's measurement is kept through thinning: a rung was decided at it.
local protect = false
if a.mode == 'percentile' and a.decides == '1' then
  -- The other trials' values at this step (this trial has none there yet: steps increase).
  local lo, hi = '[' .. a.step_key .. '|', '(' .. a.step_key .. '}'
  local n = redis.call('ZLEXCOUNT', k.es_steps, lo, hi)
  if n > 0 and n >= tonumber(a.min_trials) then
    -- core.percentile_of, operation for operation (so the same double).
    local position = (n - 1) * tonumber(a.percentile) / 100.0
    local low = math.floor(position)
    local high = math.min(low + 1, n - 1)
    local fraction = position - low
    local first = redis.call('ZRANGEBYLEX', k.es_steps, lo, hi, 'LIMIT', 0, 1)[1]
    local base = redis.call('ZRANK', k.es_steps, first)
    local pair = redis.call('ZRANGE', k.es_steps, base + low, base + high)
    local va, vb = member_value(pair[1]), member_value(pair[#pair])
    local cut = va
    if fraction ~= 0 then
      cut = va + (vb - va) * fraction
    end
    compared = n
    if tonumber(best) > cut then
      stop, rule = true, a.rule
      message = string.format('best value %.6g is worse than the %s %.6g of %d other trials '
        .. 'at step %s', shown(tonumber(best)), a.what, shown(cut), n, a.step)
    end
  end
  redis.call('ZADD', k.es_steps, 0, a.step_key .. '|' .. a.sortable .. '|' .. mine .. '|'
    .. a.value)
  -- The same value under the trial and step ("<n>@<step>", store/_keys.py), counted, so that
  -- an ask reads the values of the trials its model takes, not the study's every one.
  redis.call('HSET', k.es_state, number .. '@' .. a.step, a.value)
  redis.call('HINCRBY', k.es_state, 'steps', 1)
elseif a.mode == 'rungs' then
  -- Each rung crossed for the first time, in order: record, rank, stop at the first missed.
  local reached, eta = tonumber(a.reached), tonumber(a.eta)
  -- The trial's own rung values too ("<bracket>|<rung>|<value>;" each, store/_keys.py), so
  -- that an ask reads those of the trials its model takes, not the study's every one.
  local own, added = got[4] or '', 0
  while next_rung < reached do
    local at = string.format('%03d|%03d', tonumber(a.bracket), next_rung)
    local better = redis.call('ZLEXCOUNT', k.es_rungs, '[' .. at .. '|',
      '(' .. at .. '|' .. a.sortable)
    redis.call('ZADD', k.es_rungs, 0, at .. '|' .. a.sortable .. '|' .. mine .. '|' .. a.value)
    own, added = own .. at .. '|' .. a.value .. ';', added + 1
    local size = redis.call('ZLEXCOUNT', k.es_rungs, '[' .. at .. '|', '(' .. at .. '}')
    rung, compared, protect = next_rung, size, true
    next_rung = next_rung + 1
    local keep = math.max(1, math.floor(size / eta))
    if better >= keep then
      stop, rule = true, a.rule
      message = string.format('value %.6g at rung %d has %d better of %d; only the best %d '
        .. 'continue', shown(value), rung, better, size, keep)
      break
    end
  end
  if added > 0 then
    redis.call('HSET', k.es_state, number .. ':r', own)
    redis.call('HINCRBY', k.es_state, 'rungs', added)
  end
elseif a.mode == 'threshold' and a.decides == '1' then
  local since = step - tonumber(best_step)
  if a.threshold ~= '' and value > tonumber(a.threshold) then
    stop, rule = true, 'threshold'
    message = string.format('value %.6g is worse than the threshold %.6g', shown(value),
      shown(tonumber(a.threshold)))
  elseif tonumber(a.patience) > 0 and since >= tonumber(a.patience) then
    stop, rule = true, 'patience'
    message = string.format('no improvement of more than %s on %.6g since step %s (%d steps; '
      .. 'patience %s)', a.min_delta_text, shown(tonumber(best)), best_step, since, a.patience)
  end
end
local decision = decision_json(stop, a.step, rule, rung, message, compared)

-- The curve: the previous last measurement stays if protected or on the stride of kept
-- ordinals (thinned once, every second one is kept...); then this one; then thinned within
-- the cap. Then the bookkeeping.
if count % stride ~= 0 then
  local prev = redis.call('ZREVRANGEBYLEX', k.es_curves, '(' .. mine .. '}', '[' .. mine .. '|',
    'LIMIT', 0, 1)[1]
  if prev and thinnable(prev) then
    redis.call('ZREM', k.es_curves, prev)
    kept = kept - 1
  end
end
count, kept = count + 1, kept + 1
local flag = (protect or stop) and 'p' or 'u'
redis.call('ZADD', k.es_curves, 0, mine .. '|' .. a.step_key .. '|' .. flag .. '|'
  .. string.format('%020d', count) .. '|' .. a.curve)
if kept > tonumber(a.cap) then
  kept, stride = thin(mine, tonumber(a.cap), stride)
end
-- The front vector is the ninth field even when empty: a line of eight was written by an
-- older server, which kept none (complete_trial tells the two apart).
local line = table.concat({a.step_key, count, kept, next_rung, best_step, best, a.score, stride,
  a.front_vector}, '|')
redis.call('HSET', k.es_state, number, line, number .. ':v', a.report_values, number .. ':d', decision)

local lease = false
local seen = {} -- the study's fields touch writes: the front's count, when the trial stops
if stop then
  -- STOPPED at once: out of the running set and the lease index, its holder released, its
  -- point not handed out again; its final values are this report's.
  redis.call('ZREM', k.running, number)
  redis.call('ZREM', k.leases, number)
  release(k, number)
  redis.call('ZADD', k.stopped, number, number)
  text = patch_trial(k, number, a.stop_head .. ',"mc":' .. count .. ',"stop":' .. decision .. '}')
  if a.score ~= '' then
    redis.call('ZADD', k.scores, a.score, a.score_member)
  end
  keep_front(k, head[1], number, a.front_vector)
  seen = {'front_seen', (tonumber(head[2]) or 0) + 1}
else
  redis.call('ZADD', k.leases, a.lease, number)
  lease = a.lease
  -- The count of reports is the trial's last layer, rewritten in place (store/_codec.py).
  local layer = ',{"mc":' .. count .. '}]'
  local at = string.find(text, ',{"mc":%d+}%]$')
  if at then
    text = string.sub(text, 1, at - 1) .. layer
  else
    text = string.sub(text, 1, -2) .. layer
  end
  redis.call('HSET', k.trials, number, text)
end
local revision = touch(k, number, a.now, unpack(seen))
if rid ~= '' then
  record_request(k, rid, mine_rec .. decision, a.until_time, a.fingerprint)
end
return {'OK', text, decision, lease, revision}
