-- uses: _lib
-- list_trials: one page of trials in ascending order of number, from one or more sorted sets
-- of numbers (all trials, or one set per wanted state). Each set gives at most page_size + 1
-- numbers, so the cost is bounded by the page, not by the study. With a time, the study's due
-- leases expire first.
--
-- KEYS[1]    study hash
-- KEYS[2]    trials hash
-- KEYS[3]    sorted set of RUNNING trial numbers
-- KEYS[4]    sorted set of FAILED trial numbers
-- KEYS[5]    leases sorted set
-- KEYS[6]    expired sorted set
-- KEYS[7]    re-issue queue
-- KEYS[8]    owners hash
-- KEYS[9]    holders sorted set
-- KEYS[10..] sorted sets of trial numbers to merge (score = number)
-- ARGV[1]    only numbers strictly greater than this one
-- ARGV[2]    page size (>= 1)
-- ARGV[3]    now, or '' for no expiry
-- ARGV[4]    patch layer of a trial whose lease expires
-- ARGV[5]    most leases to expire
--
-- Returns {"OK", more (0 or 1), {stored trial...}, {lease or nil...}} or {"STUDY_NOT_FOUND"}.
local k = {trials = KEYS[2], running = KEYS[3], failed = KEYS[4], leases = KEYS[5],
  expired = KEYS[6], reissue = KEYS[7], owners = KEYS[8], holders = KEYS[9]}
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'STUDY_NOT_FOUND'}
end
if ARGV[3] ~= '' then
  expire_due(k, ARGV[3], ARGV[4], tonumber(ARGV[5]))
end
local page_size = tonumber(ARGV[2])
local numbers = {}
for i = 10, #KEYS do
  local part = redis.call('ZRANGEBYSCORE', KEYS[i], '(' .. ARGV[1], '+inf',
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
  return {'OK', more, {}, {}}
end
local fields = {}
for i = 1, math.min(#numbers, page_size) do
  fields[i] = string.format('%d', numbers[i])
end
local texts = redis.call('HMGET', KEYS[2], unpack(fields))
local leases = redis.call('ZMSCORE', KEYS[5], unpack(fields))
return {'OK', more, texts, leases}
