// Original file: ../../protos/hyperdial/v1/trial.proto

/**
 * How much of a trial a read returns (AIP-157).
 */
export const TrialView = {
  /**
   * The default: `TRIAL_VIEW_BASIC` for `ListTrials`, `TRIAL_VIEW_FULL` for `GetTrial`.
   */
  TRIAL_VIEW_UNSPECIFIED: 'TRIAL_VIEW_UNSPECIFIED',
  /**
   * Every field but `measurements`.
   */
  TRIAL_VIEW_BASIC: 'TRIAL_VIEW_BASIC',
  /**
   * Every field, the intermediate measurements too.
   */
  TRIAL_VIEW_FULL: 'TRIAL_VIEW_FULL',
} as const;

/**
 * How much of a trial a read returns (AIP-157).
 */
export type TrialView =
  /**
   * The default: `TRIAL_VIEW_BASIC` for `ListTrials`, `TRIAL_VIEW_FULL` for `GetTrial`.
   */
  | 'TRIAL_VIEW_UNSPECIFIED'
  | 0
  /**
   * Every field but `measurements`.
   */
  | 'TRIAL_VIEW_BASIC'
  | 1
  /**
   * Every field, the intermediate measurements too.
   */
  | 'TRIAL_VIEW_FULL'
  | 2

/**
 * How much of a trial a read returns (AIP-157).
 */
export type TrialView__Output = typeof TrialView[keyof typeof TrialView]
