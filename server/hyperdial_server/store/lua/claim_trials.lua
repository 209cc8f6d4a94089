-- uses: _lib
-- claim_trials: takes up to `count` trials to hand out. First the study's due leases expire;
-- then, in order: the RUNNING trials the client holds (client_id resume), points of
-- lease-expired trials (re-issue queue), enqueued trials (oldest first), sampler indices and
-- re-issues whose claim expired uncommitted, fresh indices from the counter.
--
-- KEYS[1]  study hash (fields uid, next_index, handed_out)
-- KEYS[2]  trials hash
-- KEYS[3]  queue of WAITING trial numbers
-- KEYS[4]  sorted set of WAITING trial numbers
-- KEYS[5]  sorted set of RUNNING trial numbers
-- KEYS[6]  claims sorted set: "<index>:<token>" or "r<number>:<token>" scored by deadline
-- KEYS[7]  leases sorted set
-- KEYS[8]  re-issue queue (sorted set)
-- KEYS[9]  sorted set of FAILED trial numbers
-- KEYS[10] expired sorted set
-- KEYS[11] owners hash
-- KEYS[12] holders sorted set
-- KEYS[13] requests hash
-- KEYS[14] request_times sorted set
-- ARGV[1]  uid the caller read
-- ARGV[2]  count (>= 1)
-- ARGV[3]  capacity, or -1 for no bound
-- ARGV[4]  max_trials, or -1 for no limit
-- ARGV[5]  now
-- ARGV[6]  deadline of this claim (now + claim_ttl)
-- ARGV[7]  token of this claim
-- ARGV[8]  patch layer appended to each enqueued trial handed out (state, client_id)
-- ARGV[9]  lease deadline of the trials handed out (now + lease_timeout)
-- ARGV[10] client_id ('' for none: no resume)
-- ARGV[11] patch layer of a trial whose lease expires
-- ARGV[12] most leases to expire
-- ARGV[13] request id, or ''
-- ARGV[14] attempt id of this execution of the ask
-- ARGV[15] time until which the request record is kept
-- ARGV[16] numbers this execution handed out already, comma-separated, or ''
-- ARGV[17] fingerprint of the ask's payload, or '' for no check
--
-- Returns {"OK", {trial text...}, {lease...}, {index...}, {source, source text, ...}, pending,
-- replayed (0 or 1)}, {"STUDY_NOT_FOUND"}, {"STALE_STUDY"}, {"REQUEST_IN_PROGRESS"},
-- {"REQUEST_ID_REUSED", what} or {"REQUEST_ID_MISMATCH", what}.
local k = {trials = KEYS[2], running = KEYS[5], failed = KEYS[9], leases = KEYS[7],
  expired = KEYS[10], reissue = KEYS[8], owners = KEYS[11], holders = KEYS[12],
  requests = KEYS[13], request_times = KEYS[14]}
local head = redis.call('HMGET', KEYS[1], 'uid', 'handed_out', 'next_index')
if not head[1] then
  return {'STUDY_NOT_FOUND'}
end
if head[1] ~= ARGV[1] then
  return {'STALE_STUDY'}
end
local now = ARGV[5]
local rid = ARGV[13]

-- 0. The request id: an answered ask is replayed; one in progress elsewhere is refused.
if rid ~= '' then
  purge_requests(k, now)
  local rec, fingerprint = find_request(k, rid, now)
  local ask = rec and (string.sub(rec, 1, 4) == 'D:A:' or string.sub(rec, 1, 2) == 'P:')
  if ask and fingerprint_differs(fingerprint, ARGV[17]) then
    -- The same id for an ask with another payload: neither replayed nor taken over.
    return {'REQUEST_ID_MISMATCH', request_kind(rec)}
  end
  if rec then
    if string.sub(rec, 1, 4) == 'D:A:' then
      local texts, leases = {}, {}
      for number in string.gmatch(string.sub(rec, 5), '%d+') do
        texts[#texts + 1] = redis.call('HGET', KEYS[2], number)
        leases[#leases + 1] = redis.call('ZSCORE', KEYS[7], number)
      end
      return {'OK', texts, leases, {}, {}, 0, 1}
    elseif string.sub(rec, 1, 2) == 'P:' then
      local attempt, deadline = string.match(rec, '^P:([^:]*):(.*)$')
      if attempt ~= ARGV[14] and tonumber(deadline) >= tonumber(now) then
        return {'REQUEST_IN_PROGRESS'}
      end
    else
      return {'REQUEST_ID_REUSED', request_kind(rec)}
    end
  end
end

expire_due(k, now, ARGV[11], tonumber(ARGV[12]))

local left = tonumber(ARGV[2])
local capacity = tonumber(ARGV[3])
local max_trials = tonumber(ARGV[4])
local handed_before = tonumber(head[2])
local handed_out = handed_before
local budget = math.huge
if max_trials >= 0 then
  budget = max_trials - handed_out
end
local lease = ARGV[9]
local client_id = ARGV[10]
local already = {}
local answer = {}
for number in string.gmatch(ARGV[16], '%d+') do
  already[number] = true
  answer[#answer + 1] = number
end
local texts, leases = {}, {}

-- 1. The client's own RUNNING trials, oldest first, leases renewed; not counted again.
if left > 0 and client_id ~= '' then
  local held = redis.call('ZRANGEBYLEX', KEYS[12], '[' .. client_id .. '\0',
    '(' .. client_id .. '\1', 'LIMIT', 0, left + #answer)
  for _, member in ipairs(held) do
    local number = string.format('%d', tonumber(string.sub(member, #client_id + 2)))
    if left > 0 and not already[number] then
      redis.call('ZADD', KEYS[7], lease, number)
      texts[#texts + 1] = redis.call('HGET', KEYS[2], number)
      leases[#leases + 1] = lease
      answer[#answer + 1] = number
      left = left - 1
    end
  end
end

-- 2. Points of lease-expired trials: counted once already, when first handed out.
local reissues = {}
local claimed = 0
if left > 0 then
  local popped = redis.call('ZPOPMIN', KEYS[8], left)
  for i = 1, #popped, 2 do
    local number = popped[i]
    redis.call('ZADD', KEYS[6], ARGV[6], 'r' .. number .. ':' .. ARGV[7])
    reissues[#reissues + 1] = number
    reissues[#reissues + 1] = redis.call('HGET', KEYS[2], number)
    claimed = claimed + 1
    left = left - 1
  end
end

-- 3. Enqueued trials; each counts against max_trials.
while left > 0 and budget > 0 do
  local number = redis.call('LPOP', KEYS[3])
  if not number then
    break
  end
  redis.call('ZREM', KEYS[4], number)
  redis.call('ZADD', KEYS[5], number, number)
  redis.call('ZADD', KEYS[7], lease, number)
  hold(k, number, client_id)
  texts[#texts + 1] = patch_trial(k, number, ARGV[8])
  leases[#leases + 1] = lease
  answer[#answer + 1] = number
  left = left - 1
  budget = budget - 1
  handed_out = handed_out + 1
end

-- 4. Claims that expired uncommitted (deadline < now): re-taken as they are.
local indices = {}
if left > 0 then
  local expired = redis.call('ZRANGEBYSCORE', KEYS[6], '-inf', '(' .. now, 'LIMIT', 0, left)
  for _, member in ipairs(expired) do
    local slot = string.sub(member, 1, string.find(member, ':', 1, true) - 1)
    redis.call('ZREM', KEYS[6], member)
    redis.call('ZADD', KEYS[6], ARGV[6], slot .. ':' .. ARGV[7])
    if string.sub(slot, 1, 1) == 'r' then
      local number = string.sub(slot, 2)
      reissues[#reissues + 1] = number
      reissues[#reissues + 1] = redis.call('HGET', KEYS[2], number)
    else
      indices[#indices + 1] = tonumber(slot)
    end
    claimed = claimed + 1
  end
  left = left - #expired
end

-- 5. Fresh indices from the counter, below capacity and within max_trials.
local take = math.min(left, budget)
if take > 0 and capacity >= 0 then
  take = math.min(take, capacity - tonumber(head[3]))
end
if take > 0 then
  local first = redis.call('HINCRBY', KEYS[1], 'next_index', take) - take
  for index = first, first + take - 1 do
    redis.call('ZADD', KEYS[6], ARGV[6], string.format('%d', index) .. ':' .. ARGV[7])
    indices[#indices + 1] = index
  end
  claimed = claimed + take
  handed_out = handed_out + take
end

if handed_out ~= handed_before then
  redis.call('HSET', KEYS[1], 'handed_out', string.format('%d', handed_out))
end

-- The request record: in progress until the commit, or answered now.
if rid ~= '' then
  if claimed > 0 then
    record_request(k, rid, 'P:' .. ARGV[14] .. ':' .. ARGV[6], ARGV[15], ARGV[17])
  elseif #answer > 0 then
    record_request(k, rid, 'D:A:' .. table.concat(answer, ','), ARGV[15], ARGV[17])
  else
    forget_request(k, rid)
  end
end

local pending = 0
if #texts == 0 and claimed == 0 then
  pending = redis.call('ZCARD', KEYS[5]) + redis.call('ZCARD', KEYS[6])
end
return {'OK', texts, leases, indices, reissues, pending, 0}
