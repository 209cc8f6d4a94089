// Original file: ../../protos/hyperdial/v1/study.proto


/**
 * A set of ordered numeric values.
 */
export interface DiscreteDomain {
  /**
   * The values, finite, strictly increasing. At least one.
   */
  'values'?: (number | string)[];
}

/**
 * A set of ordered numeric values.
 */
export interface DiscreteDomain__Output {
  /**
   * The values, finite, strictly increasing. At least one.
   */
  'values': (number)[];
}
