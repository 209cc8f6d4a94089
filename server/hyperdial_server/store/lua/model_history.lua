-- uses: _lib
-- model_history: the trials a model-based sampler reads, with the study's revision. A study of
-- at most best + recent trials gives every trial; a longer one gives its `best` trials (with
-- `by` 'score', of lowest score; with 'front', the trials of its Pareto front of lowest
-- number, if the front is this study's), the `recent` trials changed last (by the changes set)
-- and the `running` RUNNING trials of highest number, each trial once, so the cost is bounded
-- by those sizes (and the front's) and the log of the study's size, not by the study. In
-- ascending order of number either way. With a time, the study's due leases expire first.
--
-- Keys (store/_scripts.py MODEL_HISTORY):
--   study          study hash
--   trials         trials hash
--   running        sorted set of RUNNING trial numbers
--   failed         sorted set of FAILED trial numbers
--   leases         leases sorted set
--   expired        expired sorted set
--   reissue        re-issue queue
--   owners         owners hash
--   holders        holders sorted set
--   changes        changes sorted set (revision of each trial's last change)
--   numbers        sorted set of every trial number
--   scores         scores sorted set (zero-padded numbers)
--   front          the study's Pareto front hash
-- Arguments:
--   best           best trials of a long study (>= 0)
--   by             'score' or 'front': what the best trials are
--   recent         trials changed last in a long study (>= 0)
--   running_limit  RUNNING trials of highest number in a long study (>= 0)
--   now            now, or '' for no expiry
--   expiry_patch   patch layer of a trial whose lease expires
--   expire_batch   most leases to expire
--
-- Returns {"OK", {stored trial...}, {lease or nil...}, {revision or nil...}, study revision,
-- number of trials of the study} or {"STUDY_NOT_FOUND"}.
local refused = study_missing(k)
if refused then
  return refused
end
if a.now ~= '' then
  expire_due(k, a.now, a.expiry_patch, tonumber(a.expire_batch))
end
local best = tonumber(a.best)
local recent = tonumber(a.recent)
local total = redis.call('ZCARD', k.numbers)
local fields = {}
if total <= best + recent then
  fields = redis.call('ZRANGE', k.numbers, 0, -1)
else
  local numbers = {}
  local seen = {}
  local function take(n)
    n = tonumber(n)
    if not seen[n] then
      seen[n] = true
      numbers[#numbers + 1] = n
    end
  end
  if best > 0 and a.by == 'score' then
    for _, member in ipairs(redis.call('ZRANGE', k.scores, 0, best - 1)) do
      take(member)
    end
  elseif best > 0 and a.by == 'front' then
    -- A front left by a deleted study of the same id is another study's: not read.
    if redis.call('HGET', k.front, 'u') == redis.call('HGET', k.study, 'uid') then
      local on = {}
      for _, field in ipairs(redis.call('HKEYS', k.front)) do
        if field ~= 'u' then
          on[#on + 1] = tonumber(field)
        end
      end
      table.sort(on)
      for i = 1, math.min(best, #on) do
        take(on[i])
      end
    end
  end
  if recent > 0 then
    for _, member in ipairs(redis.call('ZRANGE', k.changes, 0, recent - 1, 'REV')) do
      take(member)
    end
  end
  local limit = tonumber(a.running_limit)
  if limit > 0 then
    for _, member in ipairs(redis.call('ZRANGE', k.running, 0, limit - 1, 'REV')) do
      take(member)
    end
  end
  table.sort(numbers)
  for i, n in ipairs(numbers) do
    fields[i] = string.format('%d', n)
  end
end
local revision = redis.call('HGET', k.study, 'revision') or 0
if #fields == 0 then
  return {'OK', {}, {}, {}, revision, total}
end
local texts = redis.call('HMGET', k.trials, unpack(fields))
local leases = redis.call('ZMSCORE', k.leases, unpack(fields))
local revisions = redis.call('ZMSCORE', k.changes, unpack(fields))
return {'OK', texts, leases, revisions, revision, total}
