// Original file: ../../protos/hyperdial/v1/tuning_service.proto

import type { Measurement as _hyperdial_v1_Measurement, Measurement__Output as _hyperdial_v1_Measurement__Output } from '../../hyperdial/v1/Measurement';

/**
 * Request of `AddTrialMeasurement`.
 */
export interface AddTrialMeasurementRequest {
  /**
   * Name of the trial. Format: `studies/{study}/trials/{trial}`.
   */
  'name'?: (string);
  /**
   * The measurement: its `step` (0 or more, not below the trial's last), a finite value for
   * the objective the policy watches (of a study without a policy: for at least one
   * objective), finite values of other objectives if any, and optionally `elapsed_duration`.
   */
  'measurement'?: (_hyperdial_v1_Measurement | null);
  /**
   * Makes the call idempotent: a retry with the same id (any string of 1 to 128 characters,
   * for example a UUID4) within the retention time returns the first answer and changes
   * nothing. Empty: no deduplication; a repeated report of the trial's last step with the same
   * values is answered the same decision all the same.
   */
  'request_id'?: (string);
}

/**
 * Request of `AddTrialMeasurement`.
 */
export interface AddTrialMeasurementRequest__Output {
  /**
   * Name of the trial. Format: `studies/{study}/trials/{trial}`.
   */
  'name': (string);
  /**
   * The measurement: its `step` (0 or more, not below the trial's last), a finite value for
   * the objective the policy watches (of a study without a policy: for at least one
   * objective), finite values of other objectives if any, and optionally `elapsed_duration`.
   */
  'measurement': (_hyperdial_v1_Measurement__Output | null);
  /**
   * Makes the call idempotent: a retry with the same id (any string of 1 to 128 characters,
   * for example a UUID4) within the retention time returns the first answer and changes
   * nothing. Empty: no deduplication; a repeated report of the trial's last step with the same
   * values is answered the same decision all the same.
   */
  'request_id': (string);
}
