-- uses: _lib
-- list_trials: one page of trials, with the study's revision. In ascending order of number,
-- from one or more sorted sets of numbers (all trials, or one set per wanted state); or, with
-- after_revision above 0, the trials changed after that revision in ascending order of
-- revision, from the changes set, kept when in one of the sets of wanted states (none: every
-- state). Either way each set gives at most page_size + 1 members, so the cost is bounded by
-- the page, not by the study (one more range per trial for the kept measurements, when asked).
-- With a time, the study's due leases expire first.
--
-- A page of changes looks at page_size changes (and one more, to tell whether more follow);
-- the states filter may leave out some of them, so the page may be shorter than page_size,
-- even empty, and the next page starts after the last change looked at (`position`), not
-- after the last trial returned.
--
-- Keys (store/_scripts.py LIST_TRIALS):
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
--   es_curves      kept measurements sorted set
--   sources...     by number: sorted sets of trial numbers to merge (score = number); by
--                  revision: the sorted sets of the wanted states, none for every state
-- Arguments:
--   after          by number: only numbers strictly greater than this one
--   after_revision '0': by number; else only trials whose revision is greater, by revision
--   page_size      page size (>= 1)
--   curve          '1': with each trial's kept measurements; '' without
--   now            now, or '' for no expiry
--   expiry_patch   patch layer of a trial whose lease expires
--   expire_batch   most leases to expire
--
-- Returns {"OK", more (0 or 1), {stored trial...}, {lease or nil...}, {{measurement member...}
-- per trial, or none without '1'}, {revision or nil...}, study revision, position} or
-- {"STUDY_NOT_FOUND"}. `position`: by revision, the revision of the last change looked at
-- (after_revision when none); by number, '0' (the number of the last trial says it).
local refused = study_missing(k)
if refused then
  return refused
end
if a.now ~= '' then
  expire_due(k, a.now, a.expiry_patch, tonumber(a.expire_batch))
end
local page_size = tonumber(a.page_size)
local fields = {}
local revisions = nil -- by revision, the scores of the changes kept
local more = 0
local position = '0'
if a.after_revision ~= '0' then
  position = a.after_revision
  local part = redis.call('ZRANGEBYSCORE', k.changes, '(' .. a.after_revision, '+inf',
    'WITHSCORES', 'LIMIT', 0, page_size + 1)
  local seen = #part / 2
  if seen > page_size then
    more = 1
    seen = page_size
  end
  local candidates = {}
  for i = 1, seen do
    candidates[i] = part[2 * i - 1]
  end
  if seen > 0 then
    position = part[2 * seen]
    local wanted = {}
    if #k.sources == 0 then
      for i = 1, seen do
        wanted[i] = true
      end
    end
    for _, source in ipairs(k.sources) do
      local found = redis.call('ZMSCORE', source, unpack(candidates))
      for i = 1, seen do
        if found[i] then
          wanted[i] = true
        end
      end
    end
    revisions = {}
    for i = 1, seen do
      if wanted[i] then
        fields[#fields + 1] = candidates[i]
        revisions[#fields] = part[2 * i]
      end
    end
  end
else
  local numbers = {}
  for _, source in ipairs(k.sources) do
    local part = redis.call('ZRANGEBYSCORE', source, '(' .. a.after, '+inf',
      'LIMIT', 0, page_size + 1)
    for _, n in ipairs(part) do
      numbers[#numbers + 1] = tonumber(n)
    end
  end
  table.sort(numbers)
  if #numbers > page_size then
    more = 1
  end
  for i = 1, math.min(#numbers, page_size) do
    fields[i] = string.format('%d', numbers[i])
  end
end
local revision = redis.call('HGET', k.study, 'revision') or 0
if #fields == 0 then
  return {'OK', more, {}, {}, {}, {}, revision, position}
end
local curves = {}
if a.curve ~= '' then
  for i, number in ipairs(fields) do
    local mine = pad(number)
    curves[i] = redis.call('ZRANGEBYLEX', k.es_curves, '[' .. mine .. '|', '(' .. mine .. '}')
  end
end
local texts = redis.call('HMGET', k.trials, unpack(fields))
local leases = redis.call('ZMSCORE', k.leases, unpack(fields))
if not revisions then
  revisions = redis.call('ZMSCORE', k.changes, unpack(fields))
end
return {'OK', more, texts, leases, curves, revisions, revision, position}
