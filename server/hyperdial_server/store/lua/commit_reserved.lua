-- uses: _lib
-- commit_reserved: an ask in one step, for the common case. Creates one RUNNING trial per
-- point (computed by the caller from indices it reserved) if the ask needs nothing that
-- claim_trials would hand out first; else changes nothing but the expiry of due leases and
-- answers why it fell back, and the caller asks through claim_trials and commit_trials.
--
-- claim_trials would hand out first: the client's own RUNNING trials (client_id resume), points
-- of lease-expired trials, enqueued trials, and claims that expired uncommitted. An ask also
-- falls back when its request id has a record (a retry: claim_trials replays or refuses it)
-- and when the points would take the study past max_trials.
--
-- KEYS[1]  study hash (fields uid, trials, handed_out)
-- KEYS[2]  trials hash
-- KEYS[3]  sorted set of every trial number
-- KEYS[4]  sorted set of RUNNING trial numbers
-- KEYS[5]  queue of WAITING trial numbers
-- KEYS[6]  claims sorted set, scored by deadline
-- KEYS[7]  leases sorted set
-- KEYS[8]  re-issue queue (sorted set)
-- KEYS[9]  sorted set of FAILED trial numbers
-- KEYS[10] expired sorted set
-- KEYS[11] owners hash
-- KEYS[12] holders sorted set
-- KEYS[13] requests hash
-- KEYS[14] request_times sorted set
-- ARGV[1]  uid the caller read
-- ARGV[2]  lease deadline of the new trials
-- ARGV[3]  client_id ('' for none)
-- ARGV[4]  patch layer of a trial whose lease expires
-- ARGV[5]  most leases to expire
-- ARGV[6]  max_trials, or -1 for no limit
-- ARGV[7]  request id, or ''
-- ARGV[8]  now
-- ARGV[9]  time until which the request record is kept ('' without a request id)
-- ARGV[10] fingerprint of the ask's payload, or ''
-- ARGV[11], ARGV[12], ... trial JSON without its number (starts with '{'), one per point
--
-- Returns {"OK", {stored trial...}, ""}, {"OK", {}, why it fell back}, {"STUDY_NOT_FOUND"} or
-- {"STALE_STUDY"}.
local k = {trials = KEYS[2], running = KEYS[4], failed = KEYS[9], leases = KEYS[7],
  expired = KEYS[10], reissue = KEYS[8], owners = KEYS[11], holders = KEYS[12],
  requests = KEYS[13], request_times = KEYS[14]}
local head = redis.call('HMGET', KEYS[1], 'uid', 'handed_out')
if not head[1] then
  return {'STUDY_NOT_FOUND'}
end
if head[1] ~= ARGV[1] then
  return {'STALE_STUDY'}
end
local now = ARGV[8]
local rid = ARGV[7]
if rid ~= '' then
  purge_requests(k, now)
  if find_request(k, rid, now) then
    return {'OK', {}, 'REQUEST_ID'}
  end
end
expire_due(k, now, ARGV[4], tonumber(ARGV[5]))
local client_id = ARGV[3]
if client_id ~= '' and #redis.call('ZRANGEBYLEX', KEYS[12], '[' .. client_id .. '\0',
    '(' .. client_id .. '\1', 'LIMIT', 0, 1) > 0 then
  return {'OK', {}, 'CLIENT_HOLDS_TRIALS'}
end
if redis.call('ZCARD', KEYS[8]) > 0 then
  return {'OK', {}, 'REISSUE'}
end
if redis.call('LLEN', KEYS[5]) > 0 then
  return {'OK', {}, 'ENQUEUED'}
end
if #redis.call('ZRANGEBYSCORE', KEYS[6], '-inf', '(' .. now, 'LIMIT', 0, 1) > 0 then
  return {'OK', {}, 'EXPIRED_CLAIM'}
end
local count = #ARGV - 10
local handed_out = tonumber(head[2]) + count
local max_trials = tonumber(ARGV[6])
if max_trials >= 0 and handed_out > max_trials then
  return {'OK', {}, 'MAX_TRIALS'}
end
redis.call('HSET', KEYS[1], 'handed_out', string.format('%d', handed_out))
local first = redis.call('HINCRBY', KEYS[1], 'trials', count) - count + 1
local texts, answer = {}, {}
for j = 0, count - 1 do
  local number = string.format('%d', first + j)
  local text = '[{"number":' .. number .. ',' .. string.sub(ARGV[11 + j], 2) .. ']'
  redis.call('HSET', KEYS[2], number, text)
  redis.call('ZADD', KEYS[3], number, number)
  redis.call('ZADD', KEYS[4], number, number)
  redis.call('ZADD', KEYS[7], ARGV[2], number)
  hold(k, number, client_id)
  texts[j + 1] = text
  answer[j + 1] = number
end
if rid ~= '' then
  record_request(k, rid, 'D:A:' .. table.concat(answer, ','), ARGV[9], ARGV[10])
end
return {'OK', texts, ''}
