-- uses: _lib
-- list_trials: one page of trials in ascending order of number, from one or more sorted sets
-- of numbers (all trials, or one set per wanted state). Each set gives at most page_size + 1
-- numbers, so the cost is bounded by the page, not by the study (one more range per trial for
-- the kept measurements, when asked). With a time, the study's due leases expire first.
--
-- Keys (store/_scripts.py LIST_TRIALS):
--   study          study hash
--   trials         trials hash
--   running        sorted set of RUNNING trial numbers
--   failed         sorted set of FAILED trial numbers
--   leases         leases sorted set
--   expired        expired sorted set
--   reissue        re-issue queue
--   owners         owners hash
--   holders        holders sorted set
--   es_curves      kept measurements sorted set
--   sources...     sorted sets of trial numbers to merge (score = number)
-- Arguments:
--   after          only numbers strictly greater than this one
--   curve          '1': with each trial's kept measurements; '' without
--   page_size      page size (>= 1)
--   now            now, or '' for no expiry
--   expiry_patch   patch layer of a trial whose lease expires
--   expire_batch   most leases to expire
--
-- Returns {"OK", more (0 or 1), {stored trial...}, {lease or nil...}, {{measurement member...}
-- per trial, or none without '1'}} or {"STUDY_NOT_FOUND"}.
local refused = study_missing(k)
if refused then
  return refused
end
if a.now ~= '' then
  expire_due(k, a.now, a.expiry_patch, tonumber(a.expire_batch))
end
local page_size = tonumber(a.page_size)
local numbers = {}
for _, source in ipairs(k.sources) do
  local part = redis.call('ZRANGEBYSCORE', source, '(' .. a.after, '+inf',
    'LIMIT', 0, page_size + 1)
  for _, n in ipairs(part) do
    numbers[#numbers + 1] = tonumber(n)
  end
end
table.sort(numbers)
local more = 0
if #numbers > page_size then
  more = 1
end
if #numbers == 0 then
  return {'OK', more, {}, {}, {}}
end
local fields = {}
local curves = {}
for i = 1, math.min(#numbers, page_size) do
  fields[i] = string.format('%d', numbers[i])
  if a.curve ~= '' then
    local mine = pad(numbers[i])
    curves[i] = redis.call('ZRANGEBYLEX', k.es_curves, '[' .. mine .. '|', '(' .. mine .. '}')
  end
end
local texts = redis.call('HMGET', k.trials, unpack(fields))
local leases = redis.call('ZMSCORE', k.leases, unpack(fields))
return {'OK', more, texts, leases, curves}
