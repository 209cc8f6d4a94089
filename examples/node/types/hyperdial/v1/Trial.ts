// Original file: ../../protos/hyperdial/v1/trial.proto

import type { TrialState as _hyperdial_v1_TrialState, TrialState__Output as _hyperdial_v1_TrialState__Output } from '../../hyperdial/v1/TrialState';
import type { ParameterValue as _hyperdial_v1_ParameterValue, ParameterValue__Output as _hyperdial_v1_ParameterValue__Output } from '../../hyperdial/v1/ParameterValue';
import type { Measurement as _hyperdial_v1_Measurement, Measurement__Output as _hyperdial_v1_Measurement__Output } from '../../hyperdial/v1/Measurement';
import type { Timestamp as _google_protobuf_Timestamp, Timestamp__Output as _google_protobuf_Timestamp__Output } from '../../google/protobuf/Timestamp';
import type { EarlyStoppingDecision as _hyperdial_v1_EarlyStoppingDecision, EarlyStoppingDecision__Output as _hyperdial_v1_EarlyStoppingDecision__Output } from '../../hyperdial/v1/EarlyStoppingDecision';
import type { Long } from '@grpc/proto-loader';

/**
 * One evaluation of the objectives at one point of the search space.
 */
export interface Trial {
  /**
   * Resource name of the trial. Format: `studies/{study}/trials/{trial}`, where `{trial}`
   * is the trial number.
   */
  'name'?: (string);
  /**
   * Number of the trial in its study: 1, 2, 3… in order of creation.
   */
  'number'?: (number | string | Long);
  /**
   * Where the trial is in its life.
   */
  'state'?: (_hyperdial_v1_TrialState);
  /**
   * Values of the active parameters, by parameter name. Inactive conditional parameters
   * are absent.
   */
  'parameters'?: ({[key: string]: _hyperdial_v1_ParameterValue});
  /**
   * The final result, set when the trial is `TRIAL_STATE_COMPLETED`.
   */
  'final_measurement'?: (_hyperdial_v1_Measurement | null);
  /**
   * The client that was handed the trial, as given to `SuggestTrials`.
   */
  'client_id'?: (string);
  /**
   * When the trial was created.
   */
  'create_time'?: (_google_protobuf_Timestamp | null);
  /**
   * When the trial finished (any state past `TRIAL_STATE_RUNNING`).
   */
  'complete_time'?: (_google_protobuf_Timestamp | null);
  /**
   * Why the trial failed, set when the trial is `TRIAL_STATE_FAILED`.
   */
  'failure_reason'?: (string);
  /**
   * Small user key/value annotations (see the documented size limits).
   */
  'metadata'?: ({[key: string]: string});
  /**
   * When the lease of a RUNNING trial expires unless renewed by `HeartbeatTrial`.
   */
  'lease_expire_time'?: (_google_protobuf_Timestamp | null);
  /**
   * Intermediate measurements (`AddTrialMeasurement`), in order of step. Only in
   * `TRIAL_VIEW_FULL`; at most the policy's `max_measurements_per_trial` (see there).
   */
  'measurements'?: (_hyperdial_v1_Measurement)[];
  /**
   * How many intermediate measurements the trial reported, kept or thinned (every view).
   */
  'measurement_count'?: (number | string | Long);
  /**
   * Why the trial stopped, set when it is `TRIAL_STATE_STOPPED`.
   */
  'stop_decision'?: (_hyperdial_v1_EarlyStoppingDecision | null);
  /**
   * The Hyperband bracket of the trial (see `HyperbandRule`); 0 under any other policy.
   */
  'bracket'?: (number);
  /**
   * Set on a trial created to measure again the point of a trial whose lease expired: the
   * resource name of that trial. Format: `studies/{study}/trials/{trial}`. Empty otherwise.
   */
  'original_trial'?: (string);
  /**
   * Set on a trial whose lease expired once its point was handed out again: the resource name
   * of the trial created for it (whose `original_trial` names this one). Empty otherwise. When
   * this trial is `TRIAL_STATE_COMPLETED` all the same (its result arrived after the lease
   * expired), the two are twins: both measure the same point.
   */
  'reissued_trial'?: (string);
  /**
   * The study's revision (see `Study.revision`) at the trial's last change: its creation, its
   * hand-out, a heartbeat, a report, its result, the expiry of its lease or the re-issue of its
   * point. See `ListTrialsRequest.changed_after_revision`.
   */
  'revision'?: (number | string | Long);
  /**
   * Whether the trial's outcome is infeasible: true for a `TRIAL_STATE_INFEASIBLE` trial, and
   * for a `TRIAL_STATE_COMPLETED` one (or a stopped one ranked by its last measurement) whose
   * values break an outcome constraint of the study (`StudySpec.constraints`) or lack one.
   * An infeasible trial is never optimal. False for trials that have not finished.
   */
  'infeasible'?: (boolean);
  /**
   * Why the trial is infeasible: the worker's reason for a `TRIAL_STATE_INFEASIBLE` trial,
   * or the constraints broken, such as "latency_ms = 25.3 > 20 (upper bound)". Empty when
   * `infeasible` is false.
   */
  'infeasibility_reason'?: (string);
}

/**
 * One evaluation of the objectives at one point of the search space.
 */
export interface Trial__Output {
  /**
   * Resource name of the trial. Format: `studies/{study}/trials/{trial}`, where `{trial}`
   * is the trial number.
   */
  'name': (string);
  /**
   * Number of the trial in its study: 1, 2, 3… in order of creation.
   */
  'number': (number);
  /**
   * Where the trial is in its life.
   */
  'state': (_hyperdial_v1_TrialState__Output);
  /**
   * Values of the active parameters, by parameter name. Inactive conditional parameters
   * are absent.
   */
  'parameters': ({[key: string]: _hyperdial_v1_ParameterValue__Output});
  /**
   * The final result, set when the trial is `TRIAL_STATE_COMPLETED`.
   */
  'final_measurement': (_hyperdial_v1_Measurement__Output | null);
  /**
   * The client that was handed the trial, as given to `SuggestTrials`.
   */
  'client_id': (string);
  /**
   * When the trial was created.
   */
  'create_time': (_google_protobuf_Timestamp__Output | null);
  /**
   * When the trial finished (any state past `TRIAL_STATE_RUNNING`).
   */
  'complete_time': (_google_protobuf_Timestamp__Output | null);
  /**
   * Why the trial failed, set when the trial is `TRIAL_STATE_FAILED`.
   */
  'failure_reason': (string);
  /**
   * Small user key/value annotations (see the documented size limits).
   */
  'metadata': ({[key: string]: string});
  /**
   * When the lease of a RUNNING trial expires unless renewed by `HeartbeatTrial`.
   */
  'lease_expire_time': (_google_protobuf_Timestamp__Output | null);
  /**
   * Intermediate measurements (`AddTrialMeasurement`), in order of step. Only in
   * `TRIAL_VIEW_FULL`; at most the policy's `max_measurements_per_trial` (see there).
   */
  'measurements': (_hyperdial_v1_Measurement__Output)[];
  /**
   * How many intermediate measurements the trial reported, kept or thinned (every view).
   */
  'measurement_count': (number);
  /**
   * Why the trial stopped, set when it is `TRIAL_STATE_STOPPED`.
   */
  'stop_decision': (_hyperdial_v1_EarlyStoppingDecision__Output | null);
  /**
   * The Hyperband bracket of the trial (see `HyperbandRule`); 0 under any other policy.
   */
  'bracket': (number);
  /**
   * Set on a trial created to measure again the point of a trial whose lease expired: the
   * resource name of that trial. Format: `studies/{study}/trials/{trial}`. Empty otherwise.
   */
  'original_trial': (string);
  /**
   * Set on a trial whose lease expired once its point was handed out again: the resource name
   * of the trial created for it (whose `original_trial` names this one). Empty otherwise. When
   * this trial is `TRIAL_STATE_COMPLETED` all the same (its result arrived after the lease
   * expired), the two are twins: both measure the same point.
   */
  'reissued_trial': (string);
  /**
   * The study's revision (see `Study.revision`) at the trial's last change: its creation, its
   * hand-out, a heartbeat, a report, its result, the expiry of its lease or the re-issue of its
   * point. See `ListTrialsRequest.changed_after_revision`.
   */
  'revision': (number);
  /**
   * Whether the trial's outcome is infeasible: true for a `TRIAL_STATE_INFEASIBLE` trial, and
   * for a `TRIAL_STATE_COMPLETED` one (or a stopped one ranked by its last measurement) whose
   * values break an outcome constraint of the study (`StudySpec.constraints`) or lack one.
   * An infeasible trial is never optimal. False for trials that have not finished.
   */
  'infeasible': (boolean);
  /**
   * Why the trial is infeasible: the worker's reason for a `TRIAL_STATE_INFEASIBLE` trial,
   * or the constraints broken, such as "latency_ms = 25.3 > 20 (upper bound)". Empty when
   * `infeasible` is false.
   */
  'infeasibility_reason': (string);
}
