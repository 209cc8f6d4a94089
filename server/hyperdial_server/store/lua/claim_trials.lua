-- uses: _lib
-- claim_trials: takes up to `count` trials to hand out. First the study's due leases expire;
-- then, in order: the RUNNING trials the client holds (client_id resume), points of
-- lease-expired trials (re-issue queue), enqueued trials (oldest first), sampler indices and
-- re-issues whose claim expired uncommitted, fresh indices from the counter.
--
-- Keys (store/_scripts.py CLAIM_TRIALS):
--   study          study hash (fields uid, next_index, handed_out)
--   trials         trials hash
--   queue          queue of WAITING trial numbers
--   waiting        sorted set of WAITING trial numbers
--   running        sorted set of RUNNING trial numbers
--   claims         claims sorted set: "<index>:<token>" or "r<number>:<token>" scored by deadline
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
--   count          count (>= 1)
--   capacity       capacity, or -1 for no bound
--   max_trials     max_trials, or -1 for no limit
--   now            now
--   claim_deadline deadline of this claim (now + claim_ttl)
--   token          token of this claim
--   patch          patch layer appended to each enqueued trial handed out (state, client_id)
--   lease          lease deadline of the trials handed out (now + lease_timeout)
--   client_id      client_id ('' for none: no resume)
--   expiry_patch   patch layer of a trial whose lease expires
--   expire_batch   most leases to expire
--   rid            request id, or ''
--   attempt        attempt id of this execution of the ask
--   until_time     time until which the request record is kept
--   handed         numbers this execution handed out already, comma-separated, or ''
--   fingerprint    fingerprint of the ask's payload, or '' for no check
--
-- Returns {"OK", {trial text...}, {lease...}, {index...}, {source, source text, ...}, pending,
-- replayed (0 or 1), {revision...}}, {"STUDY_NOT_FOUND"}, {"STALE_STUDY"},
-- {"REQUEST_IN_PROGRESS"}, {"REQUEST_ID_REUSED", what} or {"REQUEST_ID_MISMATCH", what}.
-- A resumed trial (its lease renewed) and an enqueued one handed out are changes of the trial
-- (a new revision each); a point taken from the re-issue queue changes no trial until the
-- commit creates its twin.
local head, refused = open_study(k, a.uid, 'handed_out', 'next_index')
if not head then
  return refused
end
local now = a.now
local rid = a.rid

-- 0. The request id: an answered ask is replayed; one in progress elsewhere is refused.
local function is_ask(rec)
  return string.sub(rec, 1, 4) == 'D:A:' or string.sub(rec, 1, 2) == 'P:'
end
local rec
rec, refused = replay_request(k, rid, now, a.fingerprint, is_ask)
if refused then
  -- The same id for an ask with another payload: neither replayed nor taken over.
  return refused
end
if rec then
  if string.sub(rec, 1, 4) == 'D:A:' then
    local texts, leases, revisions = {}, {}, {}
    for number in string.gmatch(string.sub(rec, 5), '%d+') do
      texts[#texts + 1] = redis.call('HGET', k.trials, number)
      leases[#leases + 1] = redis.call('ZSCORE', k.leases, number)
      revisions[#revisions + 1] = redis.call('ZSCORE', k.changes, number)
    end
    return {'OK', texts, leases, {}, {}, 0, 1, revisions}
  end
  -- 'P:': in progress.
  local attempt, deadline = string.match(rec, '^P:([^:]*):(.*)$')
  if attempt ~= a.attempt and tonumber(deadline) >= tonumber(now) then
    return {'REQUEST_IN_PROGRESS'}
  end
end

expire_due(k, now, a.expiry_patch, tonumber(a.expire_batch))

local left = tonumber(a.count)
local capacity = tonumber(a.capacity)
local max_trials = tonumber(a.max_trials)
local handed_before = tonumber(head[2])
local handed_out = handed_before
local budget = math.huge
if max_trials >= 0 then
  budget = max_trials - handed_out
end
local lease = a.lease
local client_id = a.client_id
local already = {}
local answer = {}
for number in string.gmatch(a.handed, '%d+') do
  already[number] = true
  answer[#answer + 1] = number
end
local texts, leases, revisions = {}, {}, {}

-- 1. The client's own RUNNING trials, oldest first, leases renewed; not counted again.
if left > 0 and client_id ~= '' then
  local held = redis.call('ZRANGEBYLEX', k.holders, '[' .. client_id .. '\0',
    '(' .. client_id .. '\1', 'LIMIT', 0, left + #answer)
  for _, member in ipairs(held) do
    local number = string.format('%d', tonumber(string.sub(member, #client_id + 2)))
    if left > 0 and not already[number] then
      redis.call('ZADD', k.leases, lease, number)
      revisions[#revisions + 1] = touch(k, number, now)
      texts[#texts + 1] = redis.call('HGET', k.trials, number)
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
  local popped = redis.call('ZPOPMIN', k.reissue, left)
  for i = 1, #popped, 2 do
    local number = popped[i]
    redis.call('ZADD', k.claims, a.claim_deadline, 'r' .. number .. ':' .. a.token)
    reissues[#reissues + 1] = number
    reissues[#reissues + 1] = redis.call('HGET', k.trials, number)
    claimed = claimed + 1
    left = left - 1
  end
end

-- 3. Enqueued trials; each counts against max_trials.
while left > 0 and budget > 0 do
  local number = redis.call('LPOP', k.queue)
  if not number then
    break
  end
  redis.call('ZREM', k.waiting, number)
  redis.call('ZADD', k.running, number, number)
  redis.call('ZADD', k.leases, lease, number)
  hold(k, number, client_id)
  texts[#texts + 1] = patch_trial(k, number, a.patch)
  revisions[#revisions + 1] = touch(k, number, now)
  leases[#leases + 1] = lease
  answer[#answer + 1] = number
  left = left - 1
  budget = budget - 1
  handed_out = handed_out + 1
end

-- 4. Claims that expired uncommitted (deadline < now): re-taken as they are.
local indices = {}
if left > 0 then
  local expired = redis.call('ZRANGEBYSCORE', k.claims, '-inf', '(' .. now, 'LIMIT', 0, left)
  for _, member in ipairs(expired) do
    local slot = string.sub(member, 1, string.find(member, ':', 1, true) - 1)
    redis.call('ZREM', k.claims, member)
    redis.call('ZADD', k.claims, a.claim_deadline, slot .. ':' .. a.token)
    if string.sub(slot, 1, 1) == 'r' then
      local number = string.sub(slot, 2)
      reissues[#reissues + 1] = number
      reissues[#reissues + 1] = redis.call('HGET', k.trials, number)
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
  local first = redis.call('HINCRBY', k.study, 'next_index', take) - take
  for index = first, first + take - 1 do
    redis.call('ZADD', k.claims, a.claim_deadline, string.format('%d', index) .. ':' .. a.token)
    indices[#indices + 1] = index
  end
  claimed = claimed + take
  handed_out = handed_out + take
end

if handed_out ~= handed_before then
  redis.call('HSET', k.study, 'handed_out', string.format('%d', handed_out))
end

-- The request record: in progress until the commit, or answered now.
if rid ~= '' then
  if claimed > 0 then
    record_request(k, rid, 'P:' .. a.attempt .. ':' .. a.claim_deadline, a.until_time,
      a.fingerprint)
  elseif #answer > 0 then
    record_request(k, rid, 'D:A:' .. table.concat(answer, ','), a.until_time, a.fingerprint)
  else
    forget_request(k, rid)
  end
end

local pending = 0
if #texts == 0 and claimed == 0 then
  pending = redis.call('ZCARD', k.running) + redis.call('ZCARD', k.claims)
end
return {'OK', texts, leases, indices, reissues, pending, 0, revisions}
