// Original file: ../../protos/hyperdial/v1/tuning_service.proto

import type { ParameterValue as _hyperdial_v1_ParameterValue, ParameterValue__Output as _hyperdial_v1_ParameterValue__Output } from '../../hyperdial/v1/ParameterValue';
import type { Measurement as _hyperdial_v1_Measurement, Measurement__Output as _hyperdial_v1_Measurement__Output } from '../../hyperdial/v1/Measurement';
import type { TrialFailure as _hyperdial_v1_TrialFailure, TrialFailure__Output as _hyperdial_v1_TrialFailure__Output } from '../../hyperdial/v1/TrialFailure';
import type { TrialInfeasibility as _hyperdial_v1_TrialInfeasibility, TrialInfeasibility__Output as _hyperdial_v1_TrialInfeasibility__Output } from '../../hyperdial/v1/TrialInfeasibility';

/**
 * Request of `CreateTrial`.
 */
export interface CreateTrialRequest {
  /**
   * Name of the study. Format: `studies/{study}`.
   */
  'parent'?: (string);
  /**
   * Values of the active parameters, by name; each inside its domain and of its type.
   */
  'parameters'?: ({[key: string]: _hyperdial_v1_ParameterValue});
  /**
   * The objective values of a trial that completed elsewhere (and its constraint values,
   * as for `CompleteTrial`).
   */
  'final_measurement'?: (_hyperdial_v1_Measurement | null);
  /**
   * The failure of a trial that failed elsewhere.
   */
  'failure'?: (_hyperdial_v1_TrialFailure | null);
  /**
   * Annotations of the trial.
   */
  'metadata'?: ({[key: string]: string});
  /**
   * Makes the call idempotent: a retry with the same id (any string of 1 to 128 characters,
   * for example a UUID4) within the retention time returns the first answer and changes
   * nothing. Empty: no deduplication.
   */
  'request_id'?: (string);
  /**
   * A trial whose parameters proved infeasible elsewhere (`TRIAL_STATE_INFEASIBLE`).
   */
  'infeasibility'?: (_hyperdial_v1_TrialInfeasibility | null);
  /**
   * How the trial ended, for a trial imported as finished. Unset: the trial is enqueued
   * (`TRIAL_STATE_WAITING`) and handed out by the next `SuggestTrials`.
   */
  'outcome'?: "final_measurement"|"failure"|"infeasibility";
}

/**
 * Request of `CreateTrial`.
 */
export interface CreateTrialRequest__Output {
  /**
   * Name of the study. Format: `studies/{study}`.
   */
  'parent': (string);
  /**
   * Values of the active parameters, by name; each inside its domain and of its type.
   */
  'parameters': ({[key: string]: _hyperdial_v1_ParameterValue__Output});
  /**
   * The objective values of a trial that completed elsewhere (and its constraint values,
   * as for `CompleteTrial`).
   */
  'final_measurement'?: (_hyperdial_v1_Measurement__Output | null);
  /**
   * The failure of a trial that failed elsewhere.
   */
  'failure'?: (_hyperdial_v1_TrialFailure__Output | null);
  /**
   * Annotations of the trial.
   */
  'metadata': ({[key: string]: string});
  /**
   * Makes the call idempotent: a retry with the same id (any string of 1 to 128 characters,
   * for example a UUID4) within the retention time returns the first answer and changes
   * nothing. Empty: no deduplication.
   */
  'request_id': (string);
  /**
   * A trial whose parameters proved infeasible elsewhere (`TRIAL_STATE_INFEASIBLE`).
   */
  'infeasibility'?: (_hyperdial_v1_TrialInfeasibility__Output | null);
  /**
   * How the trial ended, for a trial imported as finished. Unset: the trial is enqueued
   * (`TRIAL_STATE_WAITING`) and handed out by the next `SuggestTrials`.
   */
  'outcome'?: "final_measurement"|"failure"|"infeasibility";
}
