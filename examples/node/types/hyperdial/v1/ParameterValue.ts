// Original file: ../../protos/hyperdial/v1/study.proto

import type { Long } from '@grpc/proto-loader';

/**
 * One value of a parameter, typed by its domain.
 */
export interface ParameterValue {
  /**
   * Value of a float or discrete parameter.
   */
  'double_value'?: (number | string);
  /**
   * Value of an integer parameter.
   */
  'int_value'?: (number | string | Long);
  /**
   * Value of a categorical parameter.
   */
  'string_value'?: (string);
  /**
   * The value. Exactly one is set.
   */
  'kind'?: "double_value"|"int_value"|"string_value";
}

/**
 * One value of a parameter, typed by its domain.
 */
export interface ParameterValue__Output {
  /**
   * Value of a float or discrete parameter.
   */
  'double_value'?: (number);
  /**
   * Value of an integer parameter.
   */
  'int_value'?: (number);
  /**
   * Value of a categorical parameter.
   */
  'string_value'?: (string);
  /**
   * The value. Exactly one is set.
   */
  'kind'?: "double_value"|"int_value"|"string_value";
}
