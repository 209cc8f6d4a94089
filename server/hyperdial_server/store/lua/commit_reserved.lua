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
-- Keys (store/_scripts.py COMMIT_RESERVED):
--   study          study hash (fields uid, trials, handed_out)
--   trials         trials hash
--   numbers        sorted set of every trial number
--   running        sorted set of RUNNING trial numbers
--   queue          queue of WAITING trial numbers
--   claims         claims sorted set, scored by deadline
--   leases         leases sorted set
--   reissue        re-issue queue (sorted set)
--   failed         sorted set of FAILED trial numbers
--   expired        expired sorted set
--   owners         owners hash
--   holders        holders sorted set
--   requests       requests hash
--   request_times  request_times sorted set
--   changes        changes sorted set (revision of each trial's last change)
-- Arguments:
--   uid            uid the caller read
--   lease          lease deadline of the new trials
--   client_id      client_id ('' for none)
--   expiry_patch   patch layer of a trial whose lease expires
--   expire_batch   most leases to expire
--   max_trials     max_trials, or -1 for no limit
--   rid            request id, or ''
--   now            now
--   until_time     time until which the request record is kept ('' without a request id)
--   fingerprint    fingerprint of the ask's payload, or ''
--   bodies...      trial JSON without its number (starts with '{'), one per point
--
-- Returns {"OK", {stored trial...}, "", {revision...}}, {"OK", {}, why it fell back},
-- {"STUDY_NOT_FOUND"} or {"STALE_STUDY"}.
local head, refused = open_study(k, a.uid, 'handed_out')
if not head then
  return refused
end
local now = a.now
local rid = a.rid
if rid ~= '' and live_request(k, rid, now) then
  return {'OK', {}, 'REQUEST_ID'}
end
expire_due(k, now, a.expiry_patch, tonumber(a.expire_batch))
local client_id = a.client_id
if client_id ~= '' and #redis.call('ZRANGEBYLEX', k.holders, '[' .. client_id .. '\0',
    '(' .. client_id .. '\1', 'LIMIT', 0, 1) > 0 then
  return {'OK', {}, 'CLIENT_HOLDS_TRIALS'}
end
if redis.call('ZCARD', k.reissue) > 0 then
  return {'OK', {}, 'REISSUE'}
end
if redis.call('LLEN', k.queue) > 0 then
  return {'OK', {}, 'ENQUEUED'}
end
if #redis.call('ZRANGEBYSCORE', k.claims, '-inf', '(' .. now, 'LIMIT', 0, 1) > 0 then
  return {'OK', {}, 'EXPIRED_CLAIM'}
end
local count = #a.bodies
local handed_out = tonumber(head[2]) + count
local max_trials = tonumber(a.max_trials)
if max_trials >= 0 and handed_out > max_trials then
  return {'OK', {}, 'MAX_TRIALS'}
end
redis.call('HSET', k.study, 'handed_out', string.format('%d', handed_out))
local first = redis.call('HINCRBY', k.study, 'trials', count) - count + 1
local texts, answer, revisions = {}, {}, {}
for j = 0, count - 1 do
  local number = string.format('%d', first + j)
  local text = '[{"number":' .. number .. ',' .. string.sub(a.bodies[j + 1], 2) .. ']'
  redis.call('HSET', k.trials, number, text)
  redis.call('ZADD', k.numbers, number, number)
  redis.call('ZADD', k.running, number, number)
  redis.call('ZADD', k.leases, a.lease, number)
  hold(k, number, client_id)
  revisions[j + 1] = touch(k, number, now)
  texts[j + 1] = text
  answer[j + 1] = number
end
if rid ~= '' then
  record_request(k, rid, 'D:A:' .. table.concat(answer, ','), a.until_time, a.fingerprint)
end
return {'OK', texts, '', revisions}
