// Original file: ../../protos/hyperdial/v1/study.proto

/**
 * The sampling algorithm of a study.
 */
export const Algorithm = {
  /**
   * Not set: the server's default (`ALGORITHM_BAYESIAN` in this version).
   */
  ALGORITHM_UNSPECIFIED: 'ALGORITHM_UNSPECIFIED',
  /**
   * Full factorial grid, visited in a seeded shuffled order; every point exactly once.
   */
  ALGORITHM_GRID: 'ALGORITHM_GRID',
  /**
   * Independent uniform sampling (log-uniform for `SCALE_LOG`).
   */
  ALGORITHM_RANDOM: 'ALGORITHM_RANDOM',
  /**
   * Scrambled Sobol sequence.
   */
  ALGORITHM_QUASI_RANDOM: 'ALGORITHM_QUASI_RANDOM',
  /**
   * Bayesian optimisation: a Gaussian-process model of the objective and an expected-improvement
   * acquisition, after `initial_trials` quasi-random trials (the first the centre of a space
   * of 10 parameters or more).
   */
  ALGORITHM_BAYESIAN: 'ALGORITHM_BAYESIAN',
} as const;

/**
 * The sampling algorithm of a study.
 */
export type Algorithm =
  /**
   * Not set: the server's default (`ALGORITHM_BAYESIAN` in this version).
   */
  | 'ALGORITHM_UNSPECIFIED'
  | 0
  /**
   * Full factorial grid, visited in a seeded shuffled order; every point exactly once.
   */
  | 'ALGORITHM_GRID'
  | 1
  /**
   * Independent uniform sampling (log-uniform for `SCALE_LOG`).
   */
  | 'ALGORITHM_RANDOM'
  | 2
  /**
   * Scrambled Sobol sequence.
   */
  | 'ALGORITHM_QUASI_RANDOM'
  | 3
  /**
   * Bayesian optimisation: a Gaussian-process model of the objective and an expected-improvement
   * acquisition, after `initial_trials` quasi-random trials (the first the centre of a space
   * of 10 parameters or more).
   */
  | 'ALGORITHM_BAYESIAN'
  | 4

/**
 * The sampling algorithm of a study.
 */
export type Algorithm__Output = typeof Algorithm[keyof typeof Algorithm]
