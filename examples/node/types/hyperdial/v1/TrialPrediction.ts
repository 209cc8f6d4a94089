// Original file: ../../protos/hyperdial/v1/tuning_service.proto


/**
 * What the model predicts for the parameters of one trial.
 */
export interface TrialPrediction {
  /**
   * Predicted noise-free value of each objective, by objective name: the posterior mean.
   */
  'mean'?: ({[key: string]: number | string});
  /**
   * Standard deviation of that prediction (the model's uncertainty about the noise-free
   * value, without the noise of one more measurement), by objective name.
   */
  'stddev'?: ({[key: string]: number | string});
  /**
   * Completed trials measured at exactly these parameters (1 without repeats).
   */
  'measurements'?: (number);
  /**
   * The standard deviation of the noise of one measurement the model fitted, by objective
   * name (0 when the study declares `deterministic_objective`).
   */
  'noise_stddev'?: ({[key: string]: number | string});
}

/**
 * What the model predicts for the parameters of one trial.
 */
export interface TrialPrediction__Output {
  /**
   * Predicted noise-free value of each objective, by objective name: the posterior mean.
   */
  'mean': ({[key: string]: number});
  /**
   * Standard deviation of that prediction (the model's uncertainty about the noise-free
   * value, without the noise of one more measurement), by objective name.
   */
  'stddev': ({[key: string]: number});
  /**
   * Completed trials measured at exactly these parameters (1 without repeats).
   */
  'measurements': (number);
  /**
   * The standard deviation of the noise of one measurement the model fitted, by objective
   * name (0 when the study declares `deterministic_objective`).
   */
  'noise_stddev': ({[key: string]: number});
}
