-- list_trials: one page of trials in ascending order of number, from one or more sorted sets
-- of numbers (all trials, or one set per wanted state). Each set gives at most page_size + 1
-- numbers, so the cost is bounded by the page, not by the study.
--
-- KEYS[1]   study hash
-- KEYS[2]   trials hash
-- KEYS[3..] sorted sets of trial numbers to merge (score = number)
-- ARGV[1]   only numbers strictly greater than this one
-- ARGV[2]   page size (>= 1)
--
-- Returns {"OK", more (0 or 1), stored trial...} or {"STUDY_NOT_FOUND"}.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'STUDY_NOT_FOUND'}
end
local page_size = tonumber(ARGV[2])
local numbers = {}
for i = 3, #KEYS do
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
local reply = {'OK', more}
if #numbers == 0 then
  return reply
end
local fields = {}
for i = 1, math.min(#numbers, page_size) do
  fields[i] = string.format('%d', numbers[i])
end
local texts = redis.call('HMGET', KEYS[2], unpack(fields))
for i = 1, #texts do
  reply[i + 2] = texts[i]
end
return reply
