// Original file: ../../protos/hyperdial/v1/study.proto

/**
 * How values of a numeric parameter are spread.
 */
export const Scale = {
  /**
   * Not set: the same as `SCALE_LINEAR`.
   */
  SCALE_UNSPECIFIED: 'SCALE_UNSPECIFIED',
  /**
   * Uniform between the bounds.
   */
  SCALE_LINEAR: 'SCALE_LINEAR',
  /**
   * Uniform in the logarithm of the value.
   */
  SCALE_LOG: 'SCALE_LOG',
} as const;

/**
 * How values of a numeric parameter are spread.
 */
export type Scale =
  /**
   * Not set: the same as `SCALE_LINEAR`.
   */
  | 'SCALE_UNSPECIFIED'
  | 0
  /**
   * Uniform between the bounds.
   */
  | 'SCALE_LINEAR'
  | 1
  /**
   * Uniform in the logarithm of the value.
   */
  | 'SCALE_LOG'
  | 2

/**
 * How values of a numeric parameter are spread.
 */
export type Scale__Output = typeof Scale[keyof typeof Scale]
