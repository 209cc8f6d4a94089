// Original file: ../../protos/hyperdial/v1/study.proto

import type { FloatDomain as _hyperdial_v1_FloatDomain, FloatDomain__Output as _hyperdial_v1_FloatDomain__Output } from '../../hyperdial/v1/FloatDomain';
import type { IntDomain as _hyperdial_v1_IntDomain, IntDomain__Output as _hyperdial_v1_IntDomain__Output } from '../../hyperdial/v1/IntDomain';
import type { CategoricalDomain as _hyperdial_v1_CategoricalDomain, CategoricalDomain__Output as _hyperdial_v1_CategoricalDomain__Output } from '../../hyperdial/v1/CategoricalDomain';
import type { DiscreteDomain as _hyperdial_v1_DiscreteDomain, DiscreteDomain__Output as _hyperdial_v1_DiscreteDomain__Output } from '../../hyperdial/v1/DiscreteDomain';
import type { ParentCondition as _hyperdial_v1_ParentCondition, ParentCondition__Output as _hyperdial_v1_ParentCondition__Output } from '../../hyperdial/v1/ParentCondition';

/**
 * One parameter of the search space.
 */
export interface ParameterSpec {
  /**
   * Name of the parameter: 1 to 128 printable characters, unique in the study.
   */
  'name'?: (string);
  /**
   * A real number in a closed interval.
   */
  'float_domain'?: (_hyperdial_v1_FloatDomain | null);
  /**
   * An integer in a closed interval.
   */
  'int_domain'?: (_hyperdial_v1_IntDomain | null);
  /**
   * One of a list of strings.
   */
  'categorical_domain'?: (_hyperdial_v1_CategoricalDomain | null);
  /**
   * One of a sorted list of numbers.
   */
  'discrete_domain'?: (_hyperdial_v1_DiscreteDomain | null);
  /**
   * Makes this parameter conditional: it is active only when its parent takes one of
   * the listed values. Absent for a top-level parameter. Conditions may nest.
   */
  'condition'?: (_hyperdial_v1_ParentCondition | null);
  /**
   * The domain of the parameter. Exactly one must be set.
   */
  'domain'?: "float_domain"|"int_domain"|"categorical_domain"|"discrete_domain";
}

/**
 * One parameter of the search space.
 */
export interface ParameterSpec__Output {
  /**
   * Name of the parameter: 1 to 128 printable characters, unique in the study.
   */
  'name': (string);
  /**
   * A real number in a closed interval.
   */
  'float_domain'?: (_hyperdial_v1_FloatDomain__Output | null);
  /**
   * An integer in a closed interval.
   */
  'int_domain'?: (_hyperdial_v1_IntDomain__Output | null);
  /**
   * One of a list of strings.
   */
  'categorical_domain'?: (_hyperdial_v1_CategoricalDomain__Output | null);
  /**
   * One of a sorted list of numbers.
   */
  'discrete_domain'?: (_hyperdial_v1_DiscreteDomain__Output | null);
  /**
   * Makes this parameter conditional: it is active only when its parent takes one of
   * the listed values. Absent for a top-level parameter. Conditions may nest.
   */
  'condition': (_hyperdial_v1_ParentCondition__Output | null);
  /**
   * The domain of the parameter. Exactly one must be set.
   */
  'domain'?: "float_domain"|"int_domain"|"categorical_domain"|"discrete_domain";
}
