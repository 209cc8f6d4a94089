// Original file: ../../protos/hyperdial/v1/tuning_service.proto

import type { TrialView as _hyperdial_v1_TrialView, TrialView__Output as _hyperdial_v1_TrialView__Output } from '../../hyperdial/v1/TrialView';

/**
 * Request of `GetTrial`.
 */
export interface GetTrialRequest {
  /**
   * Name of the trial. Format: `studies/{study}/trials/{trial}`.
   */
  'name'?: (string);
  /**
   * How much of the trial to return; unspecified: `TRIAL_VIEW_FULL`.
   */
  'view'?: (_hyperdial_v1_TrialView);
}

/**
 * Request of `GetTrial`.
 */
export interface GetTrialRequest__Output {
  /**
   * Name of the trial. Format: `studies/{study}/trials/{trial}`.
   */
  'name': (string);
  /**
   * How much of the trial to return; unspecified: `TRIAL_VIEW_FULL`.
   */
  'view': (_hyperdial_v1_TrialView__Output);
}
