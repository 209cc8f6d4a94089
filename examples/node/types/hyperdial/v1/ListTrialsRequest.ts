// Original file: ../../protos/hyperdial/v1/tuning_service.proto

import type { TrialState as _hyperdial_v1_TrialState, TrialState__Output as _hyperdial_v1_TrialState__Output } from '../../hyperdial/v1/TrialState';
import type { TrialView as _hyperdial_v1_TrialView, TrialView__Output as _hyperdial_v1_TrialView__Output } from '../../hyperdial/v1/TrialView';
import type { Long } from '@grpc/proto-loader';

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
  /**
   * When above 0: only the trials that changed after this revision of the study (their
   * `revision` is greater), in ascending order of `revision` instead of number. A reader that
   * keeps a copy of a study passes the `revision` of its last complete read, and reads only
   * what changed since, whatever the size of the study. 0 or absent: every trial. Negative is
   * INVALID_ARGUMENT.
   */
  'changed_after_revision'?: (number | string | Long);
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
  /**
   * When above 0: only the trials that changed after this revision of the study (their
   * `revision` is greater), in ascending order of `revision` instead of number. A reader that
   * keeps a copy of a study passes the `revision` of its last complete read, and reads only
   * what changed since, whatever the size of the study. 0 or absent: every trial. Negative is
   * INVALID_ARGUMENT.
   */
  'changed_after_revision': (number);
}
