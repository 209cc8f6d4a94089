-- commit_trials: creates one RUNNING trial per claimed index, numbered in order, if every
-- index is still claimed under the token (else nothing changes).
--
-- KEYS[1] study hash (fields uid, trials)
-- KEYS[2] trials hash
-- KEYS[3] sorted set of every trial number
-- KEYS[4] sorted set of RUNNING trial numbers
-- KEYS[5] claims sorted set: "<index>:<token>" scored by deadline
-- ARGV[1] uid the caller read
-- ARGV[2] token of the claim
-- ARGV[3], ARGV[4], ... pairs: sampler index, trial JSON without its number (starts with '{')
--
-- Returns {"OK", {stored trial...}}, {"STUDY_NOT_FOUND"}, {"STALE_STUDY"} or
-- {"CLAIM_EXPIRED"}.
local uid = redis.call('HGET', KEYS[1], 'uid')
if not uid then
  return {'STUDY_NOT_FOUND'}
end
if uid ~= ARGV[1] then
  return {'STALE_STUDY'}
end
-- A claim past its deadline that nobody took again is still this caller's: only a member
-- that is gone (re-taken under another token) refuses the commit.
for i = 3, #ARGV, 2 do
  if not redis.call('ZSCORE', KEYS[5], ARGV[i] .. ':' .. ARGV[2]) then
    return {'CLAIM_EXPIRED'}
  end
end
local texts = {}
local count = (#ARGV - 2) / 2
if count == 0 then
  return {'OK', texts}
end
local first = redis.call('HINCRBY', KEYS[1], 'trials', count) - count + 1
for j = 0, count - 1 do
  local number = string.format('%d', first + j)
  local text = '[{"number":' .. number .. ',' .. string.sub(ARGV[4 + 2 * j], 2) .. ']'
  redis.call('HSET', KEYS[2], number, text)
  redis.call('ZADD', KEYS[3], number, number)
  redis.call('ZADD', KEYS[4], number, number)
  redis.call('ZREM', KEYS[5], ARGV[3 + 2 * j] .. ':' .. ARGV[2])
  texts[j + 1] = text
end
return {'OK', texts}
