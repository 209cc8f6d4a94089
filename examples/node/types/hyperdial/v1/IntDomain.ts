// Original file: ../../protos/hyperdial/v1/study.proto

import type { Scale as _hyperdial_v1_Scale, Scale__Output as _hyperdial_v1_Scale__Output } from '../../hyperdial/v1/Scale';
import type { Long } from '@grpc/proto-loader';

/**
 * A closed interval of integers.
 */
export interface IntDomain {
  /**
   * Lower bound, inclusive.
   */
  'min'?: (number | string | Long);
  /**
   * Upper bound, inclusive. Greater than `min`.
   */
  'max'?: (number | string | Long);
  /**
   * How values are spread between the bounds. `SCALE_LOG` needs `min` >= 1.
   */
  'scale'?: (_hyperdial_v1_Scale);
}

/**
 * A closed interval of integers.
 */
export interface IntDomain__Output {
  /**
   * Lower bound, inclusive.
   */
  'min': (number);
  /**
   * Upper bound, inclusive. Greater than `min`.
   */
  'max': (number);
  /**
   * How values are spread between the bounds. `SCALE_LOG` needs `min` >= 1.
   */
  'scale': (_hyperdial_v1_Scale__Output);
}
