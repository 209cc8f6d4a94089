// Original file: ../../protos/hyperdial/v1/trial.proto

/**
 * Where a trial is in its life.
 */
export const TrialState = {
  /**
   * Not set. Never stored, and refused as a `ListTrials` filter.
   */
  TRIAL_STATE_UNSPECIFIED: 'TRIAL_STATE_UNSPECIFIED',
  /**
   * Enqueued by `CreateTrial`, waiting to be handed out by the next `SuggestTrials`.
   */
  TRIAL_STATE_WAITING: 'TRIAL_STATE_WAITING',
  /**
   * Handed out to a worker, waiting for its result.
   */
  TRIAL_STATE_RUNNING: 'TRIAL_STATE_RUNNING',
  /**
   * Finished with objective values.
   */
  TRIAL_STATE_COMPLETED: 'TRIAL_STATE_COMPLETED',
  /**
   * Finished without a result; `failure_reason` says why.
   */
  TRIAL_STATE_FAILED: 'TRIAL_STATE_FAILED',
  /**
   * Stopped early, by the study's early-stopping policy or by the worker (`CompleteTrial`
   * with `stop`); `stop_decision` says why, and `final_measurement` is its last intermediate
   * measurement. Optuna calls this state PRUNED, Vizier STOPPED.
   */
  TRIAL_STATE_STOPPED: 'TRIAL_STATE_STOPPED',
  /**
   * Finished without a result because its parameters cannot give one: the model ran out of
   * memory, training diverged, the configuration is invalid (`CompleteTrial` with
   * `infeasibility`). The point is a result in itself: samplers learn to avoid its region,
   * and it is never handed out again. `infeasibility_reason` says why. Unlike
   * `TRIAL_STATE_FAILED` (the infrastructure failed; the point is worth trying again).
   */
  TRIAL_STATE_INFEASIBLE: 'TRIAL_STATE_INFEASIBLE',
} as const;

/**
 * Where a trial is in its life.
 */
export type TrialState =
  /**
   * Not set. Never stored, and refused as a `ListTrials` filter.
   */
  | 'TRIAL_STATE_UNSPECIFIED'
  | 0
  /**
   * Enqueued by `CreateTrial`, waiting to be handed out by the next `SuggestTrials`.
   */
  | 'TRIAL_STATE_WAITING'
  | 1
  /**
   * Handed out to a worker, waiting for its result.
   */
  | 'TRIAL_STATE_RUNNING'
  | 2
  /**
   * Finished with objective values.
   */
  | 'TRIAL_STATE_COMPLETED'
  | 3
  /**
   * Finished without a result; `failure_reason` says why.
   */
  | 'TRIAL_STATE_FAILED'
  | 4
  /**
   * Stopped early, by the study's early-stopping policy or by the worker (`CompleteTrial`
   * with `stop`); `stop_decision` says why, and `final_measurement` is its last intermediate
   * measurement. Optuna calls this state PRUNED, Vizier STOPPED.
   */
  | 'TRIAL_STATE_STOPPED'
  | 5
  /**
   * Finished without a result because its parameters cannot give one: the model ran out of
   * memory, training diverged, the configuration is invalid (`CompleteTrial` with
   * `infeasibility`). The point is a result in itself: samplers learn to avoid its region,
   * and it is never handed out again. `infeasibility_reason` says why. Unlike
   * `TRIAL_STATE_FAILED` (the infrastructure failed; the point is worth trying again).
   */
  | 'TRIAL_STATE_INFEASIBLE'
  | 6

/**
 * Where a trial is in its life.
 */
export type TrialState__Output = typeof TrialState[keyof typeof TrialState]
