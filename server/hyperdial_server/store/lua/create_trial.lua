-- uses: _lib
-- create_trial: adds a WAITING (enqueued) or finished trial with the next number. A request id
-- answered before returns the trial it created, as it is now.
--
-- KEYS[1] study hash
-- KEYS[2] trials hash
-- KEYS[3] sorted set of every trial number
-- KEYS[4] sorted set of the trial's state
-- KEYS[5] queue of WAITING trial numbers
-- KEYS[6] scores sorted set
-- KEYS[7] requests hash
-- KEYS[8] request_times sorted set
-- KEYS[9] leases sorted set
-- ARGV[1] trial JSON without its number, starting with '{'
-- ARGV[2] state: WAITING, COMPLETED or FAILED
-- ARGV[3] score, or '' for none
-- ARGV[4] uid the caller validated the trial against, or '' for no check
-- ARGV[5] request id, or ''
-- ARGV[6] now
-- ARGV[7] time until which the request record is kept
-- ARGV[8] fingerprint of the call's payload, or '' for no check
--
-- Returns {"OK", stored trial, lease or nil}, {"STUDY_NOT_FOUND"}, {"STALE_STUDY"},
-- {"REQUEST_ID_REUSED", what} or {"REQUEST_ID_MISMATCH", what}.
local k = {requests = KEYS[7], request_times = KEYS[8]}
local uid = redis.call('HGET', KEYS[1], 'uid')
if not uid then
  return {'STUDY_NOT_FOUND'}
end
local rid = ARGV[5]
if rid ~= '' then
  purge_requests(k, ARGV[6])
  local rec, fingerprint = find_request(k, rid, ARGV[6])
  if rec then
    if string.sub(rec, 1, 4) == 'D:C:' then
      if fingerprint_differs(fingerprint, ARGV[8]) then
        return {'REQUEST_ID_MISMATCH', request_kind(rec)}
      end
      local number = string.sub(rec, 5)
      return {'OK', redis.call('HGET', KEYS[2], number), redis.call('ZSCORE', KEYS[9], number)}
    end
    return {'REQUEST_ID_REUSED', request_kind(rec)}
  end
end
if ARGV[4] ~= '' and uid ~= ARGV[4] then
  return {'STALE_STUDY'}
end
local number = string.format('%d', redis.call('HINCRBY', KEYS[1], 'trials', 1))
-- The stored form is an array of layers; the number is spliced into the first one.
local text = '[{"number":' .. number .. ',' .. string.sub(ARGV[1], 2) .. ']'
redis.call('HSET', KEYS[2], number, text)
redis.call('ZADD', KEYS[3], number, number)
redis.call('ZADD', KEYS[4], number, number)
if ARGV[2] == 'WAITING' then
  redis.call('RPUSH', KEYS[5], number)
end
if ARGV[3] ~= '' then
  redis.call('ZADD', KEYS[6], ARGV[3], string.format('%020d', tonumber(number)))
end
if rid ~= '' then
  record_request(k, rid, 'D:C:' .. number, ARGV[7], ARGV[8])
end
return {'OK', text, false}
