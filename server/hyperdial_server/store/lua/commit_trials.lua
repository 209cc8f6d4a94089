-- uses: _lib
-- commit_trials: creates one RUNNING trial per claimed slot (a re-issued point or a sampler
-- index), numbered in order, if every slot is still claimed under the token (else nothing
-- changes), and records the ask's answer under its request id.
--
-- KEYS[1]  study hash (fields uid, trials)
-- KEYS[2]  trials hash
-- KEYS[3]  sorted set of every trial number
-- KEYS[4]  sorted set of RUNNING trial numbers
-- KEYS[5]  claims sorted set: "<slot>:<token>" scored by deadline
-- KEYS[6]  leases sorted set
-- KEYS[7]  owners hash
-- KEYS[8]  holders sorted set
-- KEYS[9]  requests hash
-- KEYS[10] request_times sorted set
-- ARGV[1]  uid the caller read
-- ARGV[2]  token of the claim
-- ARGV[3]  lease deadline of the new trials
-- ARGV[4]  client_id
-- ARGV[5]  request id, or ''
-- ARGV[6]  attempt id of this execution of the ask
-- ARGV[7]  time until which the request record is kept
-- ARGV[8]  numbers this execution handed out already, comma-separated, or ''
-- ARGV[9], ARGV[10], ... pairs: slot ("<index>" or "r<number>"), trial JSON without its
--          number (starts with '{'); the trial of "r<number>" gets a patch naming the new one
--
-- Returns {"OK", {stored trial...}}, {"STUDY_NOT_FOUND"}, {"STALE_STUDY"},
-- {"CLAIM_EXPIRED"} or {"REQUEST_IN_PROGRESS"}.
local k = {trials = KEYS[2], owners = KEYS[7], holders = KEYS[8], requests = KEYS[9],
  request_times = KEYS[10]}
local uid = redis.call('HGET', KEYS[1], 'uid')
if not uid then
  return {'STUDY_NOT_FOUND'}
end
if uid ~= ARGV[1] then
  return {'STALE_STUDY'}
end
local rid = ARGV[5]
if rid ~= '' then
  -- A retry that took the ask over (after this claim's deadline) answers it instead.
  local rec = redis.call('HGET', KEYS[9], rid)
  if rec and string.match(rec, '^P:([^:]*):') ~= ARGV[6] then
    return {'REQUEST_IN_PROGRESS'}
  end
end
-- A claim past its deadline that nobody took again is still this caller's: only a member
-- that is gone (re-taken under another token) refuses the commit.
for i = 9, #ARGV, 2 do
  if not redis.call('ZSCORE', KEYS[5], ARGV[i] .. ':' .. ARGV[2]) then
    return {'CLAIM_EXPIRED'}
  end
end
local texts = {}
local count = (#ARGV - 8) / 2
local answer = {}
for number in string.gmatch(ARGV[8], '%d+') do
  answer[#answer + 1] = number
end
if count > 0 then
  local first = redis.call('HINCRBY', KEYS[1], 'trials', count) - count + 1
  for j = 0, count - 1 do
    local number = string.format('%d', first + j)
    local text = '[{"number":' .. number .. ',' .. string.sub(ARGV[10 + 2 * j], 2) .. ']'
    redis.call('HSET', KEYS[2], number, text)
    redis.call('ZADD', KEYS[3], number, number)
    redis.call('ZADD', KEYS[4], number, number)
    redis.call('ZADD', KEYS[6], ARGV[3], number)
    redis.call('ZREM', KEYS[5], ARGV[9 + 2 * j] .. ':' .. ARGV[2])
    hold(k, number, ARGV[4])
    local slot = ARGV[9 + 2 * j]
    if string.sub(slot, 1, 1) == 'r' then
      -- A re-issued point: the expired trial names its twin (the new one names it already).
      patch_trial(k, string.sub(slot, 2), '{"reissued":' .. number .. '}')
    end
    texts[j + 1] = text
    answer[#answer + 1] = number
  end
end
if rid ~= '' then
  record_request(k, rid, 'D:A:' .. table.concat(answer, ','), ARGV[7])
end
return {'OK', texts}
