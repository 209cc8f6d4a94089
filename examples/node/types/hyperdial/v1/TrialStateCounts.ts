// Original file: ../../protos/hyperdial/v1/study.proto

import type { Long } from '@grpc/proto-loader';

/**
 * How many trials of a study are in each state.
 */
export interface TrialStateCounts {
  /**
   * `TRIAL_STATE_WAITING` trials.
   */
  'waiting'?: (number | string | Long);
  /**
   * `TRIAL_STATE_RUNNING` trials.
   */
  'running'?: (number | string | Long);
  /**
   * `TRIAL_STATE_COMPLETED` trials.
   */
  'completed'?: (number | string | Long);
  /**
   * `TRIAL_STATE_FAILED` trials.
   */
  'failed'?: (number | string | Long);
  /**
   * `TRIAL_STATE_STOPPED` trials.
   */
  'stopped'?: (number | string | Long);
  /**
   * `TRIAL_STATE_INFEASIBLE` trials.
   */
  'infeasible'?: (number | string | Long);
}

/**
 * How many trials of a study are in each state.
 */
export interface TrialStateCounts__Output {
  /**
   * `TRIAL_STATE_WAITING` trials.
   */
  'waiting': (number);
  /**
   * `TRIAL_STATE_RUNNING` trials.
   */
  'running': (number);
  /**
   * `TRIAL_STATE_COMPLETED` trials.
   */
  'completed': (number);
  /**
   * `TRIAL_STATE_FAILED` trials.
   */
  'failed': (number);
  /**
   * `TRIAL_STATE_STOPPED` trials.
   */
  'stopped': (number);
  /**
   * `TRIAL_STATE_INFEASIBLE` trials.
   */
  'infeasible': (number);
}
