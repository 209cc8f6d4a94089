// Original file: ../../protos/hyperdial/v1/study.proto


/**
 * A limit on a metric the trials report: "latency_ms <= 20", "accuracy >= 0.9". At least one
 * bound is set; with both, `lower_bound <= upper_bound`. Bounds are inclusive.
 */
export interface OutcomeConstraint {
  /**
   * Name of the metric, as reported in `Measurement.values`: 1 to 128 printable characters,
   * distinct from every objective's name and every other constraint's.
   */
  'name'?: (string);
  /**
   * The metric must be at most this value. Absent: no upper limit.
   */
  'upper_bound'?: (number | string);
  /**
   * The metric must be at least this value. Absent: no lower limit.
   */
  'lower_bound'?: (number | string);
  '_upper_bound'?: "upper_bound";
  '_lower_bound'?: "lower_bound";
}

/**
 * A limit on a metric the trials report: "latency_ms <= 20", "accuracy >= 0.9". At least one
 * bound is set; with both, `lower_bound <= upper_bound`. Bounds are inclusive.
 */
export interface OutcomeConstraint__Output {
  /**
   * Name of the metric, as reported in `Measurement.values`: 1 to 128 printable characters,
   * distinct from every objective's name and every other constraint's.
   */
  'name': (string);
  /**
   * The metric must be at most this value. Absent: no upper limit.
   */
  'upper_bound'?: (number);
  /**
   * The metric must be at least this value. Absent: no lower limit.
   */
  'lower_bound'?: (number);
  '_upper_bound'?: "upper_bound";
  '_lower_bound'?: "lower_bound";
}
