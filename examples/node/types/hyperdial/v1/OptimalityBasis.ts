// Original file: ../../protos/hyperdial/v1/tuning_service.proto

/**
 * What `ListOptimalTrials` judges trials by.
 */
export const OptimalityBasis = {
  /**
   * Not set: `OPTIMALITY_BASIS_OBSERVED`.
   */
  OPTIMALITY_BASIS_UNSPECIFIED: 'OPTIMALITY_BASIS_UNSPECIFIED',
  /**
   * The values the trials reported. Right for deterministic objectives; with noisy ones the
   * best observed value is biased towards lucky measurements.
   */
  OPTIMALITY_BASIS_OBSERVED: 'OPTIMALITY_BASIS_OBSERVED',
  /**
   * The recommendation: a Gaussian-process model of every completed trial's results (the
   * same model as `ALGORITHM_BAYESIAN`, whatever the study's algorithm) predicts each one's
   * noise-free values, and trials are judged by those predictions. Right for noisy objectives:
   * a point measured several times, or whose neighbours agree, is preferred to one lucky
   * measurement. With one objective the best is the lowest predicted mean plus one standard
   * deviation of the prediction (oriented: the highest mean minus one when maximised): of two
   * points predicted alike, the one the model is surer of. With fewer than 2 completed trials,
   * the same trials as observed, without predictions.
   */
  OPTIMALITY_BASIS_MODEL: 'OPTIMALITY_BASIS_MODEL',
} as const;

/**
 * What `ListOptimalTrials` judges trials by.
 */
export type OptimalityBasis =
  /**
   * Not set: `OPTIMALITY_BASIS_OBSERVED`.
   */
  | 'OPTIMALITY_BASIS_UNSPECIFIED'
  | 0
  /**
   * The values the trials reported. Right for deterministic objectives; with noisy ones the
   * best observed value is biased towards lucky measurements.
   */
  | 'OPTIMALITY_BASIS_OBSERVED'
  | 1
  /**
   * The recommendation: a Gaussian-process model of every completed trial's results (the
   * same model as `ALGORITHM_BAYESIAN`, whatever the study's algorithm) predicts each one's
   * noise-free values, and trials are judged by those predictions. Right for noisy objectives:
   * a point measured several times, or whose neighbours agree, is preferred to one lucky
   * measurement. With one objective the best is the lowest predicted mean plus one standard
   * deviation of the prediction (oriented: the highest mean minus one when maximised): of two
   * points predicted alike, the one the model is surer of. With fewer than 2 completed trials,
   * the same trials as observed, without predictions.
   */
  | 'OPTIMALITY_BASIS_MODEL'
  | 2

/**
 * What `ListOptimalTrials` judges trials by.
 */
export type OptimalityBasis__Output = typeof OptimalityBasis[keyof typeof OptimalityBasis]
