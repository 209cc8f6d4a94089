// Original file: ../../protos/hyperdial/v1/tuning_service.proto

import type { EarlyStoppingDecision as _hyperdial_v1_EarlyStoppingDecision, EarlyStoppingDecision__Output as _hyperdial_v1_EarlyStoppingDecision__Output } from '../../hyperdial/v1/EarlyStoppingDecision';

/**
 * Response of `CheckTrialEarlyStopping`.
 */
export interface CheckTrialEarlyStoppingResponse {
  /**
   * The decision: that of the trial's last report (for a stopped trial, why it stopped), or
   * continue for a trial that reported nothing yet.
   */
  'decision'?: (_hyperdial_v1_EarlyStoppingDecision | null);
}

/**
 * Response of `CheckTrialEarlyStopping`.
 */
export interface CheckTrialEarlyStoppingResponse__Output {
  /**
   * The decision: that of the trial's last report (for a stopped trial, why it stopped), or
   * continue for a trial that reported nothing yet.
   */
  'decision': (_hyperdial_v1_EarlyStoppingDecision__Output | null);
}
