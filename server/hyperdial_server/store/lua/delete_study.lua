-- delete_study: removes every key of a study.
--
-- KEYS[1]   study hash
-- KEYS[2..] every other key of the study
--
-- Returns {"OK"} or {"STUDY_NOT_FOUND"}.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'STUDY_NOT_FOUND'}
end
-- UNLINK frees a large study in the background instead of blocking the server.
redis.call('UNLINK', unpack(KEYS))
return {'OK'}
