// Original file: ../../protos/hyperdial/v1/study.proto

import type { ParameterValue as _hyperdial_v1_ParameterValue, ParameterValue__Output as _hyperdial_v1_ParameterValue__Output } from '../../hyperdial/v1/ParameterValue';

/**
 * The condition under which a parameter is active.
 */
export interface ParentCondition {
  /**
   * Name of the parent parameter. It must be categorical, integer or discrete.
   */
  'parent'?: (string);
  /**
   * Parent values that activate the child, each of the parent's type: `string_value` for a
   * categorical parent, `int_value` for an integer parent, `double_value` for a discrete one.
   */
  'values'?: (_hyperdial_v1_ParameterValue)[];
}

/**
 * The condition under which a parameter is active.
 */
export interface ParentCondition__Output {
  /**
   * Name of the parent parameter. It must be categorical, integer or discrete.
   */
  'parent': (string);
  /**
   * Parent values that activate the child, each of the parent's type: `string_value` for a
   * categorical parent, `int_value` for an integer parent, `double_value` for a discrete one.
   */
  'values': (_hyperdial_v1_ParameterValue__Output)[];
}
