// Original file: ../../protos/hyperdial/v1/tuning_service.proto

import type { Trial as _hyperdial_v1_Trial, Trial__Output as _hyperdial_v1_Trial__Output } from '../../hyperdial/v1/Trial';
import type { Long } from '@grpc/proto-loader';

/**
 * Response of `ListTrials`.
 */
export interface ListTrialsResponse {
  /**
   * The trials of this page, in order of their number (of their `revision` when the request
   * gave `changed_after_revision`).
   */
  'trials'?: (_hyperdial_v1_Trial)[];
  /**
   * Token of the next page; empty when this is the last page.
   */
  'next_page_token'?: (string);
  /**
   * The study's revision (see `Study.revision`) when this page was read. A reader that read
   * every page keeps the `revision` of the first one, and passes it as
   * `changed_after_revision` at its next read, so that nothing changed during the read is lost.
   */
  'revision'?: (number | string | Long);
}

/**
 * Response of `ListTrials`.
 */
export interface ListTrialsResponse__Output {
  /**
   * The trials of this page, in order of their number (of their `revision` when the request
   * gave `changed_after_revision`).
   */
  'trials': (_hyperdial_v1_Trial__Output)[];
  /**
   * Token of the next page; empty when this is the last page.
   */
  'next_page_token': (string);
  /**
   * The study's revision (see `Study.revision`) when this page was read. A reader that read
   * every page keeps the `revision` of the first one, and passes it as
   * `changed_after_revision` at its next read, so that nothing changed during the read is lost.
   */
  'revision': (number);
}
