-- create_trial: adds a WAITING (enqueued) or finished trial with the next number.
--
-- KEYS[1] study hash
-- KEYS[2] trials hash
-- KEYS[3] sorted set of every trial number
-- KEYS[4] sorted set of the trial's state
-- KEYS[5] queue of WAITING trial numbers
-- KEYS[6] scores sorted set
-- ARGV[1] trial JSON without its number, starting with '{'
-- ARGV[2] state: WAITING, COMPLETED or FAILED
-- ARGV[3] score, or '' for none
-- ARGV[4] uid the caller validated the trial against, or '' for no check
--
-- Returns {"OK", stored trial}, {"STUDY_NOT_FOUND"} or {"STALE_STUDY"}.
local uid = redis.call('HGET', KEYS[1], 'uid')
if not uid then
  return {'STUDY_NOT_FOUND'}
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
return {'OK', text}
