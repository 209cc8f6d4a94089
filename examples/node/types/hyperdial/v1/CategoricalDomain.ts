// Original file: ../../protos/hyperdial/v1/study.proto


/**
 * A set of unordered string values.
 */
export interface CategoricalDomain {
  /**
   * The values, distinct, each 1 to 128 characters. At least one.
   */
  'values'?: (string)[];
}

/**
 * A set of unordered string values.
 */
export interface CategoricalDomain__Output {
  /**
   * The values, distinct, each 1 to 128 characters. At least one.
   */
  'values': (string)[];
}
