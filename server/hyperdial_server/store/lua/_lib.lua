-- Text codes the scripts keep or answer, listed once. Python never builds or reads the
-- records: the memory store (store/_memory_state.py) keeps typed copies of them (Answered,
-- InProgress), and the Redis store parses the fallback codes in one place
-- (store/_redis_trials.py, commit_reserved).
--
-- Request records, the values of the study's requests hash (written by record_request):
--   D:A:<n>,<n>,...          an answered ask (SuggestTrials): the numbers of every trial it
--                            handed out, over all its steps; a retry replays them
--   D:T:<number>             an answered result (CompleteTrial) of trial <number>
--   D:C:<number>             an answered CreateTrial: the trial it enqueued or imported
--   D:M:<number>:<decision>  an answered AddTrialMeasurement of trial <number>, with the
--                            decision it answered (JSON without '|', see add_measurement.lua)
--   P:<attempt>:<deadline>   an ask in progress: claimed by execution <attempt> (a hex uid,
--                            without ':'), which alone may commit or renew it; a retry takes
--                            it over once <deadline> (its claim's) has passed
-- Each is followed by "|<fingerprint>" when the call that wrote it gave a payload fingerprint
-- (hex, without '|'): a later call with the same id and another fingerprint is refused.
--
-- Why commit_reserved fell back (the third element of its reply; Python's store.Fallback):
-- '' (no fallback), REQUEST_ID, CLIENT_HOLDS_TRIALS, REISSUE, ENQUEUED, EXPIRED_CLAIM,
-- MAX_TRIALS.

-- _lib: local functions shared by the scripts: opening checks (the study and its uid, request
-- ids), lease expiry, revisions of changed trials, client holds and request records.
-- ``Script.source`` (store/_scripts.py) puts this text in front of every script that starts
-- with the line "-- uses: _lib", after the generated preamble, so each script stays one atomic
-- EVALSHA.
--
-- The functions take ``k``, the preamble's table of the calling script's keys, by the names
-- of ``StudyKeys`` (store/_keys.py): study, trials, waiting, running, completed, failed,
-- stopped, infeasible, leases, expired, reissue, owners, holders, requests, request_times,
-- changes. Each function reads only the names it needs; tests/store/test_lua_contract.py
-- checks that every script declares them.

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

-- Records a change of trial `number` (of its stored record or of its lease) made at `now`:
-- the study's revision goes up by one, the trial takes it (its score in the changes set),
-- and `now` becomes the study's update_time, written with the study's fields `...` (name,
-- value, ...; in the same command). Returns the new revision. Every script that
-- writes a trial (k.trials) or a lease (k.leases) calls it once for each trial it changes,
-- so the trials changed after a revision are one range of the changes set.
--
-- The time is the caller's `now`, not Redis TIME (which Redis 7 would allow, as it replicates
-- a script's effects): every other time of a trial (creation, completion, lease deadline)
-- comes from the replicas' clocks, so update_time is on the same clock as the times of the
-- change it dates, the memory store records the very same value, and tests on a made-up
-- clock can check it. Replicas' clocks are kept in sync for leases already (NTP).
local function touch(k, number, now, ...)
  local revision = redis.call('HINCRBY', k.study, 'revision', 1)
  redis.call('ZADD', k.changes, revision, number)
  redis.call('HSET', k.study, 'update_time', now, ...)
  return revision
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

-- The state of trial `number` that is not RUNNING, by the sorted set of its state: WAITING,
-- COMPLETED, FAILED, STOPPED, INFEASIBLE, or '' (none: the keys disagree).
local function trial_state(k, number)
  local states = {{k.waiting, 'WAITING'}, {k.completed, 'COMPLETED'}, {k.failed, 'FAILED'},
    {k.stopped, 'STOPPED'}, {k.infeasible, 'INFEASIBLE'}}
  for _, pair in ipairs(states) do
    if redis.call('ZSCORE', pair[1], number) then
      return pair[2]
    end
  end
  return ''
end

-- The fields of an early-stopping bookkeeping line of the es_state hash (store/_keys.py),
-- "<last step>|<count>|<kept>|<next rung>|<best step>|<best>|<score>|<stride>", as texts.
local function report_fields(line)
  local fields = {}
  for field in string.gmatch(line .. '|', '([^|]*)|') do
    fields[#fields + 1] = field
  end
  return fields
end

-- A zero-padded step as decimal text ("00...05" -> "5", "00...0" -> "0").
local function unpad(text)
  return (string.gsub(text, '^0+(%d)', '%1'))
end

-- Expires the lease of the RUNNING trial `number` at `now`: FAILED with the expiry patch, its
-- point queued for re-issue, and marked as taking a late result.
local function expire_one(k, number, patch, now)
  redis.call('ZREM', k.leases, number)
  redis.call('ZREM', k.running, number)
  redis.call('ZADD', k.failed, number, number)
  redis.call('ZADD', k.expired, number, number)
  redis.call('ZADD', k.reissue, number, number)
  release(k, number)
  patch_trial(k, number, patch)
  touch(k, number, now)
end

-- Expires up to `limit` leases whose deadline is before `now`, earliest first; returns how
-- many.
local function expire_due(k, now, patch, limit)
  local due = redis.call('ZRANGEBYSCORE', k.leases, '-inf', '(' .. now, 'LIMIT', 0, limit)
  for _, number in ipairs(due) do
    expire_one(k, number, patch, now)
  end
  return #due
end

-- A front vector as stored in the front hash ("<v1>,<v2>,...", each exact repr text from
-- Python) as an array of numbers.
local function front_values(text)
  local values = {}
  for x in string.gmatch(text, '[^,]+') do
    values[#values + 1] = tonumber(x)
  end
  return values
end

-- Trial `number` of the study of uid `uid` became a candidate (COMPLETED or STOPPED) with the
-- front vector `vector` ('' for none: on no front). Keeps the study's Pareto front (k.front,
-- store/_keys.py) as core/pareto.py front_of would find it: puts the vector on the front
-- unless a vector there dominates it, dropping those it dominates (equal vectors dominate
-- neither way: all stay). O(front size). A front of another uid (left by a study deleted and
-- created again by an older server), or of none (a study stored before fronts were kept), is
-- wrong already and left alone: its read finds it so and computes it afresh. The caller
-- counts the candidate (the study's front_seen, written with touch, at no extra command).
local function keep_front(k, uid, number, vector)
  if vector == '' then
    return
  end
  local flat = redis.call('HGETALL', k.front)
  local owner, beaten = nil, {}
  local mine = front_values(vector)
  local dominated = false
  for i = 1, #flat, 2 do
    local field = flat[i]
    if field == 'u' then
      owner = flat[i + 1]
    elseif not dominated then
      local theirs = front_values(flat[i + 1])
      local better, worse = false, false
      for j = 1, #mine do
        if theirs[j] < mine[j] then
          better = true
        elseif theirs[j] > mine[j] then
          worse = true
        end
      end
      if better and not worse then
        dominated = true
      elseif worse and not better then
        beaten[#beaten + 1] = field
      end
    end
  end
  if dominated or owner ~= uid then
    return
  end
  -- In slices: unpack takes a few thousand values at most.
  for first = 1, #beaten, 1000 do
    redis.call('HDEL', k.front, unpack(beaten, first, math.min(first + 999, #beaten)))
  end
  redis.call('HSET', k.front, number, vector)
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
    ['D:T'] = 'CompleteTrial', ['D:C'] = 'CreateTrial', ['D:M'] = 'AddTrialMeasurement'}
  return kinds[string.sub(value, 1, 3)] or kinds[string.sub(value, 1, 2)] or 'another call'
end

-- The STALE_STUDY reply when `uid`, the uid a caller read (nil: no check), is not `study_uid`,
-- the study's; else nil.
local function check_uid(study_uid, uid)
  if uid ~= nil and study_uid ~= uid then
    return {'STALE_STUDY'}
  end
  return nil
end

-- The opening of a call that reads the study hash: its `uid` and then the fields `...` (an
-- HGET for the uid alone, else one HMGET). Returns the values read, uid first; or nil and the
-- error reply: STUDY_NOT_FOUND without a study, STALE_STUDY when `uid` (the uid the caller
-- read; nil: no check) is not the study's.
local function open_study(k, uid, ...)
  local head
  if select('#', ...) == 0 then
    head = {redis.call('HGET', k.study, 'uid')}
  else
    head = redis.call('HMGET', k.study, 'uid', ...)
  end
  if not head[1] then
    return nil, {'STUDY_NOT_FOUND'}
  end
  local stale = check_uid(head[1], uid)
  if stale then
    return nil, stale
  end
  return head
end

-- The opening of a call that only needs the study to exist (one EXISTS): the
-- STUDY_NOT_FOUND reply without it, else nil.
local function study_missing(k)
  if redis.call('EXISTS', k.study) == 0 then
    return {'STUDY_NOT_FOUND'}
  end
  return nil
end

-- The live record of request id `rid` and its fingerprint, or nil; a few records whose time
-- is over are purged first.
local function live_request(k, rid, now)
  purge_requests(k, now)
  return find_request(k, rid, now)
end

-- The opening of a call that replays the answer recorded under its request id `rid` ('' for
-- none). `is_mine(record)` tells a record of this kind of call. Returns nil when `rid` has no
-- live record; else the record, and the error reply when this call may not replay it:
-- REQUEST_ID_REUSED (a record of another kind of call) or REQUEST_ID_MISMATCH (one of this
-- kind whose recorded fingerprint differs from `fingerprint`, the payload's).
local function replay_request(k, rid, now, fingerprint, is_mine)
  if rid == '' then
    return nil
  end
  local rec, recorded = live_request(k, rid, now)
  if not rec then
    return nil
  end
  if not is_mine(rec) then
    return rec, {'REQUEST_ID_REUSED', request_kind(rec)}
  end
  if fingerprint_differs(recorded, fingerprint) then
    return rec, {'REQUEST_ID_MISMATCH', request_kind(rec)}
  end
  return rec
end

-- The opening of a step that moves an ask along (its commit, a renewal): the
-- REQUEST_IN_PROGRESS reply when the record of request id `rid` ('' for none) is not the
-- in-progress one of this execution, `attempt` ("P:<attempt>:..."): a retry took the ask over
-- (after this claim's deadline) or answered it. The record is read as it is, whatever its time.
local function ask_taken_over(k, rid, attempt)
  if rid == '' then
    return nil
  end
  local rec = redis.call('HGET', k.requests, rid)
  if rec and string.match(rec, '^P:([^:]*):') ~= attempt then
    return {'REQUEST_IN_PROGRESS'}
  end
  return nil
end
