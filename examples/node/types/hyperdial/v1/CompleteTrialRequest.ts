// Original file: ../../protos/hyperdial/v1/tuning_service.proto

import type { Measurement as _hyperdial_v1_Measurement, Measurement__Output as _hyperdial_v1_Measurement__Output } from '../../hyperdial/v1/Measurement';
import type { TrialFailure as _hyperdial_v1_TrialFailure, TrialFailure__Output as _hyperdial_v1_TrialFailure__Output } from '../../hyperdial/v1/TrialFailure';
import type { TrialStop as _hyperdial_v1_TrialStop, TrialStop__Output as _hyperdial_v1_TrialStop__Output } from '../../hyperdial/v1/TrialStop';
import type { TrialInfeasibility as _hyperdial_v1_TrialInfeasibility, TrialInfeasibility__Output as _hyperdial_v1_TrialInfeasibility__Output } from '../../hyperdial/v1/TrialInfeasibility';

/**
 * Request of `CompleteTrial`.
 */
export interface CompleteTrialRequest {
  /**
   * Name of the trial. Format: `studies/{study}/trials/{trial}`.
   */
  'name'?: (string);
  /**
   * The objective values: one finite value for every objective of the study, and one for
   * every outcome constraint (`StudySpec.constraints`).
   */
  'final_measurement'?: (_hyperdial_v1_Measurement | null);
  /**
   * The trial failed; it becomes `TRIAL_STATE_FAILED`.
   */
  'failure'?: (_hyperdial_v1_TrialFailure | null);
  /**
   * Annotations merged into the trial's metadata.
   */
  'metadata'?: ({[key: string]: string});
  /**
   * Makes the call idempotent: a retry with the same id (any string of 1 to 128 characters,
   * for example a UUID4) within the retention time returns the first answer and changes
   * nothing. Empty: no deduplication.
   */
  'request_id'?: (string);
  /**
   * The worker stopped the trial early; it becomes `TRIAL_STATE_STOPPED`, ranked by its
   * last intermediate measurement. Answered as is for a trial the policy already stopped.
   */
  'stop'?: (_hyperdial_v1_TrialStop | null);
  /**
   * The parameters cannot give a result (out of memory, diverged, invalid configuration);
   * the trial becomes `TRIAL_STATE_INFEASIBLE`. Use `failure` instead when the
   * infrastructure failed (a node lost, a preemption): that point is worth another try.
   */
  'infeasibility'?: (_hyperdial_v1_TrialInfeasibility | null);
  /**
   * How the trial ended. Exactly one must be set.
   */
  'outcome'?: "final_measurement"|"failure"|"stop"|"infeasibility";
}

/**
 * Request of `CompleteTrial`.
 */
export interface CompleteTrialRequest__Output {
  /**
   * Name of the trial. Format: `studies/{study}/trials/{trial}`.
   */
  'name': (string);
  /**
   * The objective values: one finite value for every objective of the study, and one for
   * every outcome constraint (`StudySpec.constraints`).
   */
  'final_measurement'?: (_hyperdial_v1_Measurement__Output | null);
  /**
   * The trial failed; it becomes `TRIAL_STATE_FAILED`.
   */
  'failure'?: (_hyperdial_v1_TrialFailure__Output | null);
  /**
   * Annotations merged into the trial's metadata.
   */
  'metadata': ({[key: string]: string});
  /**
   * Makes the call idempotent: a retry with the same id (any string of 1 to 128 characters,
   * for example a UUID4) within the retention time returns the first answer and changes
   * nothing. Empty: no deduplication.
   */
  'request_id': (string);
  /**
   * The worker stopped the trial early; it becomes `TRIAL_STATE_STOPPED`, ranked by its
   * last intermediate measurement. Answered as is for a trial the policy already stopped.
   */
  'stop'?: (_hyperdial_v1_TrialStop__Output | null);
  /**
   * The parameters cannot give a result (out of memory, diverged, invalid configuration);
   * the trial becomes `TRIAL_STATE_INFEASIBLE`. Use `failure` instead when the
   * infrastructure failed (a node lost, a preemption): that point is worth another try.
   */
  'infeasibility'?: (_hyperdial_v1_TrialInfeasibility__Output | null);
  /**
   * How the trial ended. Exactly one must be set.
   */
  'outcome'?: "final_measurement"|"failure"|"stop"|"infeasibility";
}
