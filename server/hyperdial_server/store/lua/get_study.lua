-- get_study: what a read of a study takes from its hash, and how many of its trials are in
-- each state, in one atomic step (so the counts add up to its number of trials, and go with
-- its revision).
--
-- Keys (store/_scripts.py GET_STUDY):
--   study          study hash (fields record, trials, uid, revision, update_time)
--   waiting        sorted set of WAITING trial numbers
--   running        sorted set of RUNNING trial numbers
--   completed      sorted set of COMPLETED trial numbers
--   failed         sorted set of FAILED trial numbers
--   stopped        sorted set of STOPPED trial numbers
--   infeasible     sorted set of INFEASIBLE trial numbers
--
-- Returns {{record, trials, uid, revision, update_time}, waiting, running, completed, failed,
-- stopped, infeasible}: the fields nil when absent (every one for a study that does not
-- exist), then the number of trials in each state, in the order of TrialState.
return {
  redis.call('HMGET', k.study, 'record', 'trials', 'uid', 'revision', 'update_time'),
  redis.call('ZCARD', k.waiting),
  redis.call('ZCARD', k.running),
  redis.call('ZCARD', k.completed),
  redis.call('ZCARD', k.failed),
  redis.call('ZCARD', k.stopped),
  redis.call('ZCARD', k.infeasible),
}
