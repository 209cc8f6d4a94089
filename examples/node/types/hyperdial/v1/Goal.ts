// Original file: ../../protos/hyperdial/v1/study.proto

/**
 * The direction of an objective.
 */
export const Goal = {
  /**
   * Not set: rejected with INVALID_ARGUMENT.
   */
  GOAL_UNSPECIFIED: 'GOAL_UNSPECIFIED',
  /**
   * Lower is better.
   */
  GOAL_MINIMIZE: 'GOAL_MINIMIZE',
  /**
   * Higher is better.
   */
  GOAL_MAXIMIZE: 'GOAL_MAXIMIZE',
} as const;

/**
 * The direction of an objective.
 */
export type Goal =
  /**
   * Not set: rejected with INVALID_ARGUMENT.
   */
  | 'GOAL_UNSPECIFIED'
  | 0
  /**
   * Lower is better.
   */
  | 'GOAL_MINIMIZE'
  | 1
  /**
   * Higher is better.
   */
  | 'GOAL_MAXIMIZE'
  | 2

/**
 * The direction of an objective.
 */
export type Goal__Output = typeof Goal[keyof typeof Goal]
