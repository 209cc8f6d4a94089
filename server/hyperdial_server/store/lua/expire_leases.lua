-- uses: _lib
-- expire_leases: the sweep's step for one study: expires its due leases and tells the
-- earliest deadline left, for the lease index.
--
-- KEYS[1] study hash
-- KEYS[2] trials hash
-- KEYS[3] sorted set of RUNNING trial numbers
-- KEYS[4] sorted set of FAILED trial numbers
-- KEYS[5] leases sorted set
-- KEYS[6] expired sorted set
-- KEYS[7] re-issue queue
-- KEYS[8] owners hash
-- KEYS[9] holders sorted set
-- ARGV[1] now
-- ARGV[2] patch layer of a trial whose lease expires
-- ARGV[3] most leases to expire
--
-- Returns {"OK", expired count, earliest deadline left or ''} or {"STUDY_NOT_FOUND"}.
local k = {trials = KEYS[2], running = KEYS[3], failed = KEYS[4], leases = KEYS[5],
  expired = KEYS[6], reissue = KEYS[7], owners = KEYS[8], holders = KEYS[9]}
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'STUDY_NOT_FOUND'}
end
local count = expire_due(k, ARGV[1], ARGV[2], tonumber(ARGV[3]))
local first = redis.call('ZRANGE', KEYS[5], 0, 0, 'WITHSCORES')
return {'OK', count, first[2] or ''}
