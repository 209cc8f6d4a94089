-- uses: _lib
-- commit_trials: creates one RUNNING trial per claimed slot (a re-issued point or a sampler
-- index), numbered in order, if every slot is still claimed under the token (else nothing
-- changes), and records the ask's answer under its request id.
--
-- Keys (store/_scripts.py COMMIT_TRIALS):
--   study          study hash (fields uid, trials)
--   trials         trials hash
--   numbers        sorted set of every trial number
--   running        sorted set of RUNNING trial numbers
--   claims         claims sorted set: "<slot>:<token>" scored by deadline
--   leases         leases sorted set
--   owners         owners hash
--   holders        holders sorted set
--   requests       requests hash
--   request_times  request_times sorted set
--   changes        changes sorted set (revision of each trial's last change)
-- Arguments:
--   uid            uid the caller read
--   token          token of the claim
--   lease          lease deadline of the new trials
--   client_id      client_id
--   rid            request id, or ''
--   attempt        attempt id of this execution of the ask
--   until_time     time until which the request record is kept
--   handed         numbers this execution handed out already, comma-separated, or ''
--   now            now (the time of the changes)
--   slots...       pairs: slot ("<index>" or "r<number>"), trial JSON without its number
--                  (starts with '{'); the trial of "r<number>" gets a patch naming the new one
--
-- Returns {"OK", {stored trial...}, {revision...}}, {"STUDY_NOT_FOUND"}, {"STALE_STUDY"},
-- {"CLAIM_EXPIRED"} or {"REQUEST_IN_PROGRESS"}. Each new trial is a change (a revision), and
-- so is the expired trial of a re-issued point, which then names its twin.
local head, refused = open_study(k, a.uid)
if not head then
  return refused
end
local rid = a.rid
-- A retry that took the ask over (after this claim's deadline) answers it instead.
refused = ask_taken_over(k, rid, a.attempt)
if refused then
  return refused
end
-- A claim past its deadline that nobody took again is still this caller's: only a member
-- that is gone (re-taken under another token) refuses the commit.
for i = 1, #a.slots, 2 do
  if not redis.call('ZSCORE', k.claims, a.slots[i] .. ':' .. a.token) then
    return {'CLAIM_EXPIRED'}
  end
end
local texts, revisions = {}, {}
local count = #a.slots / 2
local answer = {}
for number in string.gmatch(a.handed, '%d+') do
  answer[#answer + 1] = number
end
if count > 0 then
  local first = redis.call('HINCRBY', k.study, 'trials', count) - count + 1
  for j = 0, count - 1 do
    local number = string.format('%d', first + j)
    local text = '[{"number":' .. number .. ',' .. string.sub(a.slots[2 + 2 * j], 2) .. ']'
    redis.call('HSET', k.trials, number, text)
    redis.call('ZADD', k.numbers, number, number)
    redis.call('ZADD', k.running, number, number)
    redis.call('ZADD', k.leases, a.lease, number)
    redis.call('ZREM', k.claims, a.slots[1 + 2 * j] .. ':' .. a.token)
    hold(k, number, a.client_id)
    revisions[j + 1] = touch(k, number, a.now)
    local slot = a.slots[1 + 2 * j]
    if string.sub(slot, 1, 1) == 'r' then
      -- A re-issued point: the expired trial names its twin (the new one names it already).
      local source = string.sub(slot, 2)
      patch_trial(k, source, '{"reissued":' .. number .. '}')
      touch(k, source, a.now)
    end
    texts[j + 1] = text
    answer[#answer + 1] = number
  end
end
if rid ~= '' then
  record_request(k, rid, 'D:A:' .. table.concat(answer, ','), a.until_time)
end
return {'OK', texts, revisions}
