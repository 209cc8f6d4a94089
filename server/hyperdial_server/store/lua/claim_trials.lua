-- claim_trials: takes up to `count` trials to hand out, in order: enqueued trials (oldest
-- first), sampler indices whose claim expired uncommitted, fresh indices from the counter.
--
-- KEYS[1] study hash (fields uid, next_index, handed_out)
-- KEYS[2] trials hash
-- KEYS[3] queue of WAITING trial numbers
-- KEYS[4] sorted set of WAITING trial numbers
-- KEYS[5] sorted set of RUNNING trial numbers
-- KEYS[6] claims sorted set: "<index>:<token>" scored by deadline
-- ARGV[1] uid the caller read
-- ARGV[2] count (>= 1)
-- ARGV[3] capacity, or -1 for no bound
-- ARGV[4] max_trials, or -1 for no limit
-- ARGV[5] now
-- ARGV[6] deadline of this claim (now + claim_ttl)
-- ARGV[7] token of this claim
-- ARGV[8] patch layer appended to each enqueued trial handed out (state, client_id)
--
-- Returns {"OK", {stored trial...}, {index...}}, {"STUDY_NOT_FOUND"} or {"STALE_STUDY"}.
local uid = redis.call('HGET', KEYS[1], 'uid')
if not uid then
  return {'STUDY_NOT_FOUND'}
end
if uid ~= ARGV[1] then
  return {'STALE_STUDY'}
end
local left = tonumber(ARGV[2])
local capacity = tonumber(ARGV[3])
local max_trials = tonumber(ARGV[4])
local handed_before = tonumber(redis.call('HGET', KEYS[1], 'handed_out'))
local handed_out = handed_before
local budget = math.huge
if max_trials >= 0 then
  budget = max_trials - handed_out
end

-- 1. Enqueued trials; each counts against max_trials.
local trials = {}
while left > 0 and budget > 0 do
  local number = redis.call('LPOP', KEYS[3])
  if not number then
    break
  end
  local text = redis.call('HGET', KEYS[2], number)
  text = string.sub(text, 1, -2) .. ',' .. ARGV[8] .. ']'
  redis.call('HSET', KEYS[2], number, text)
  redis.call('ZREM', KEYS[4], number)
  redis.call('ZADD', KEYS[5], number, number)
  trials[#trials + 1] = text
  left = left - 1
  budget = budget - 1
  handed_out = handed_out + 1
end

-- 2. Indices whose claim expired (deadline < now): counted once already, re-taken as they are.
local indices = {}
if left > 0 then
  local expired = redis.call('ZRANGEBYSCORE', KEYS[6], '-inf', '(' .. ARGV[5],
    'LIMIT', 0, left)
  for _, member in ipairs(expired) do
    local index = string.sub(member, 1, string.find(member, ':', 1, true) - 1)
    redis.call('ZREM', KEYS[6], member)
    redis.call('ZADD', KEYS[6], ARGV[6], index .. ':' .. ARGV[7])
    indices[#indices + 1] = tonumber(index)
  end
  left = left - #expired
end

-- 3. Fresh indices from the counter, below capacity and within max_trials.
local take = math.min(left, budget)
if take > 0 and capacity >= 0 then
  take = math.min(take, capacity - tonumber(redis.call('HGET', KEYS[1], 'next_index')))
end
if take > 0 then
  local first = redis.call('HINCRBY', KEYS[1], 'next_index', take) - take
  for index = first, first + take - 1 do
    redis.call('ZADD', KEYS[6], ARGV[6], string.format('%d', index) .. ':' .. ARGV[7])
    indices[#indices + 1] = index
  end
  handed_out = handed_out + take
end

if handed_out ~= handed_before then
  redis.call('HSET', KEYS[1], 'handed_out', string.format('%d', handed_out))
end
return {'OK', trials, indices}
