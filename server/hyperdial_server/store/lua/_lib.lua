-- _lib: local functions shared by the scripts that expire leases, hold trials for a client
-- or record request ids. ``_redis._load_script`` puts this text in front of every script that
-- starts with the line "-- uses: _lib", so each script stays one atomic EVALSHA.
--
-- The functions take ``k``, a table of the study's key names (every one passed in KEYS by
-- the calling script): trials, running, failed, leases, expired, reissue, owners, holders,
-- requests, request_times.

-- A trial number zero-padded to 20 digits: the order of text is the order of numbers.
local function pad(number)
  return string.format('%020d', tonumber(number))
end

-- Appends a patch layer (JSON written by Python) to a stored trial; returns the new text.
local function patch_trial(k, number, patch)
  local text = redis.call('HGET', k.trials, number)
  text = string.sub(text, 1, -2) .. ',' .. patch .. ']'
  redis.call('HSET', k.trials, number, text)
  return text
end

-- Records that `client_id` holds the RUNNING trial `number` (nothing for an empty id).
local function hold(k, number, client_id)
  if client_id ~= '' then
    redis.call('HSET', k.owners, number, client_id)
    redis.call('ZADD', k.holders, 0, client_id .. '\0' .. pad(number))
  end
end

-- Forgets the client holding trial `number`, if any.
local function release(k, number)
  local owner = redis.call('HGET', k.owners, number)
  if owner then
    redis.call('HDEL', k.owners, number)
    redis.call('ZREM', k.holders, owner .. '\0' .. pad(number))
  end
end

-- Expires the lease of the RUNNING trial `number`: FAILED with the expiry patch, its point
-- queued for re-issue, and marked as taking a late result.
local function expire_one(k, number, patch)
  redis.call('ZREM', k.leases, number)
  redis.call('ZREM', k.running, number)
  redis.call('ZADD', k.failed, number, number)
  redis.call('ZADD', k.expired, number, number)
  redis.call('ZADD', k.reissue, number, number)
  release(k, number)
  patch_trial(k, number, patch)
end

-- Expires up to `limit` leases whose deadline is before `now`, earliest first; returns how
-- many.
local function expire_due(k, now, patch, limit)
  local due = redis.call('ZRANGEBYSCORE', k.leases, '-inf', '(' .. now, 'LIMIT', 0, limit)
  for _, number in ipairs(due) do
    expire_one(k, number, patch)
  end
  return #due
end

-- Drops a few request records whose time is over (a bounded amount of work per call).
local function purge_requests(k, now)
  local old = redis.call('ZRANGEBYSCORE', k.request_times, '-inf', '(' .. now, 'LIMIT', 0, 8)
  if #old > 0 then
    redis.call('HDEL', k.requests, unpack(old))
    redis.call('ZREM', k.request_times, unpack(old))
  end
end

-- A stored request record is "<value>" or "<value>|<fingerprint>": the fingerprint (hex, from
-- Python) of the payload of the call that wrote it. Records without one (written before
-- fingerprints existed, or by a caller that gave none) are checked by id alone.
local function split_record(stored)
  local bar = string.find(stored, '|', 1, true)
  if not bar then
    return stored, ''
  end
  return string.sub(stored, 1, bar - 1), string.sub(stored, bar + 1)
end

-- The live record of request id `rid` and its fingerprint ('' for none), or nil (a record
-- past its time counts as absent).
local function find_request(k, rid, now)
  local value = redis.call('HGET', k.requests, rid)
  if not value then
    return nil
  end
  local until_time = redis.call('ZSCORE', k.request_times, rid)
  if until_time and tonumber(until_time) < tonumber(now) then
    return nil
  end
  return split_record(value)
end

-- Whether a call's payload fingerprint differs from the one recorded with its request id; a
-- missing one on either side is no difference (old records keep working).
local function fingerprint_differs(recorded, given)
  return recorded ~= '' and given ~= nil and given ~= '' and recorded ~= given
end

-- Records `value` as the answer of request id `rid` until `until_time`, with the payload
-- `fingerprint`; without one (nil), the fingerprint already recorded for `rid` is kept, so a
-- step that only moves an ask along (its commit, a renewal) need not know it.
local function record_request(k, rid, value, until_time, fingerprint)
  if fingerprint == nil then
    local old = redis.call('HGET', k.requests, rid)
    fingerprint = old and select(2, split_record(old)) or ''
  end
  if fingerprint ~= '' then
    value = value .. '|' .. fingerprint
  end
  redis.call('HSET', k.requests, rid, value)
  redis.call('ZADD', k.request_times, until_time, rid)
end

-- Forgets request id `rid`.
local function forget_request(k, rid)
  redis.call('HDEL', k.requests, rid)
  redis.call('ZREM', k.request_times, rid)
end

-- What a record was for, for the REQUEST_ID_REUSED error.
local function request_kind(value)
  local kinds = {['D:A'] = 'SuggestTrials', ['P:'] = 'SuggestTrials',
    ['D:T'] = 'CompleteTrial', ['D:C'] = 'CreateTrial'}
  return kinds[string.sub(value, 1, 3)] or kinds[string.sub(value, 1, 2)] or 'another call'
end
