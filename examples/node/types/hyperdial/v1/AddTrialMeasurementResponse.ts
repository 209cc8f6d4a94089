// Original file: ../../protos/hyperdial/v1/tuning_service.proto

import type { EarlyStoppingDecision as _hyperdial_v1_EarlyStoppingDecision, EarlyStoppingDecision__Output as _hyperdial_v1_EarlyStoppingDecision__Output } from '../../hyperdial/v1/EarlyStoppingDecision';
import type { Trial as _hyperdial_v1_Trial, Trial__Output as _hyperdial_v1_Trial__Output } from '../../hyperdial/v1/Trial';

/**
 * Response of `AddTrialMeasurement`.
 */
export interface AddTrialMeasurementResponse {
  /**
   * What the policy decided at this report.
   */
  'decision'?: (_hyperdial_v1_EarlyStoppingDecision | null);
  /**
   * The trial after the report, in `TRIAL_VIEW_BASIC`, with its new `lease_expire_time`.
   */
  'trial'?: (_hyperdial_v1_Trial | null);
}

/**
 * Response of `AddTrialMeasurement`.
 */
export interface AddTrialMeasurementResponse__Output {
  /**
   * What the policy decided at this report.
   */
  'decision': (_hyperdial_v1_EarlyStoppingDecision__Output | null);
  /**
   * The trial after the report, in `TRIAL_VIEW_BASIC`, with its new `lease_expire_time`.
   */
  'trial': (_hyperdial_v1_Trial__Output | null);
}
