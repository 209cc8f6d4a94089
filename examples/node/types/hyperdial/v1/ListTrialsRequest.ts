// Original file: ../../protos/hyperdial/v1/tuning_service.proto

import type { TrialState as _hyperdial_v1_TrialState, TrialState__Output as _hyperdial_v1_TrialState__Output } from '../../hyperdial/v1/TrialState';
import type { TrialView as _hyperdial_v1_TrialView, TrialView__Output as _hyperdial_v1_TrialView__Output } from '../../hyperdial/v1/TrialView';

/**
 * Request of `ListTrials`.
 */
export interface ListTrialsRequest {
  /**
   * Name of the study. Format: `studies/{study}`.
   */
  'parent'?: (string);
  /**
   * Most trials to return; 0 means the default of 100; at most 1000.
   */
  'page_size'?: (number);
  /**
   * `next_page_token` of the previous page, asked with the same `states`.
   */
  'page_token'?: (string);
  /**
   * Only trials in one of these states; empty means every state.
   */
  'states'?: (_hyperdial_v1_TrialState)[];
  /**
   * How much of each trial to return; unspecified: `TRIAL_VIEW_BASIC` (no measurements).
   */
  'view'?: (_hyperdial_v1_TrialView);
}

/**
 * Request of `ListTrials`.
 */
export interface ListTrialsRequest__Output {
  /**
   * Name of the study. Format: `studies/{study}`.
   */
  'parent': (string);
  /**
   * Most trials to return; 0 means the default of 100; at most 1000.
   */
  'page_size': (number);
  /**
   * `next_page_token` of the previous page, asked with the same `states`.
   */
  'page_token': (string);
  /**
   * Only trials in one of these states; empty means every state.
   */
  'states': (_hyperdial_v1_TrialState__Output)[];
  /**
   * How much of each trial to return; unspecified: `TRIAL_VIEW_BASIC` (no measurements).
   */
  'view': (_hyperdial_v1_TrialView__Output);
}
