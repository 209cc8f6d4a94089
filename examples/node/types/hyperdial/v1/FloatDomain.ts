// Original file: ../../protos/hyperdial/v1/study.proto

import type { Scale as _hyperdial_v1_Scale, Scale__Output as _hyperdial_v1_Scale__Output } from '../../hyperdial/v1/Scale';

/**
 * A closed interval of real numbers.
 */
export interface FloatDomain {
  /**
   * Lower bound, inclusive. Finite.
   */
  'min'?: (number | string);
  /**
   * Upper bound, inclusive. Finite and greater than `min`.
   */
  'max'?: (number | string);
  /**
   * How values are spread between the bounds. `SCALE_LOG` needs `min` > 0.
   */
  'scale'?: (_hyperdial_v1_Scale);
}

/**
 * A closed interval of real numbers.
 */
export interface FloatDomain__Output {
  /**
   * Lower bound, inclusive. Finite.
   */
  'min': (number);
  /**
   * Upper bound, inclusive. Finite and greater than `min`.
   */
  'max': (number);
  /**
   * How values are spread between the bounds. `SCALE_LOG` needs `min` > 0.
   */
  'scale': (_hyperdial_v1_Scale__Output);
}
