-- uses: _lib
-- expire_leases: the sweep's step for one study: expires its due leases and tells the
-- earliest deadline left, for the lease index.
--
-- Keys (store/_scripts.py EXPIRE_LEASES):
--   study          study hash
--   trials         trials hash
--   running        sorted set of RUNNING trial numbers
--   failed         sorted set of FAILED trial numbers
--   leases         leases sorted set
--   expired        expired sorted set
--   reissue        re-issue queue
--   owners         owners hash
--   holders        holders sorted set
--   changes        changes sorted set (revision of each trial's last change)
-- Arguments:
--   now            now
--   expiry_patch   patch layer of a trial whose lease expires
--   expire_batch   most leases to expire
--
-- Returns {"OK", expired count, earliest deadline left or ''} or {"STUDY_NOT_FOUND"}.
local refused = study_missing(k)
if refused then
  return refused
end
local count = expire_due(k, a.now, a.expiry_patch, tonumber(a.expire_batch))
local first = redis.call('ZRANGE', k.leases, 0, 0, 'WITHSCORES')
return {'OK', count, first[2] or ''}
