// hyperdial.js: a small client of the hyperdial service (hyperdial.v1.TuningService) for
// Node.js, on @grpc/grpc-js. It loads the repository's .proto files at run time
// (@grpc/proto-loader, no generated code to run); the TypeScript types in types/ are
// generated from the same files (gen-types.js) and type the JSDoc below.
//
//   const hd = require('./hyperdial');
//   const client = await hd.connect('localhost:50051', { connectTimeoutMs: 10_000 });
//   const { study } = await client.createStudy('mlp', spec);   // or joins it if it exists
//   for (;;) {
//     const trials = await client.suggest(study.name, { clientId: 'host-1' });
//     if (trials.length === 0) break;                            // the study is complete
//     for (const trial of trials) {
//       await client.runTrial(trial, async (run) => {            // heartbeats meanwhile
//         for (let epoch = 1; epoch <= 10; epoch += 1) {
//           const { should_stop } = await run.report(epoch, { loss: train(run.params) });
//           if (should_stop) return null;                        // STOPPED by the policy
//         }
//         if (outOfMemory) throw new hd.TrialInfeasible('OOM');  // INFEASIBLE
//         return { loss: evaluate(run.params), latency_ms: 12 }; // CompleteTrial, with the
//       });                                                      // constraints' values
//     }
//   }
//   client.close();
//
// Calls follow "Deadlines, retries and keepalive for other languages" in docs/protocol.md and
// the Python client's RetryPolicy (client/hyperdial/_retry.py): a short deadline per attempt
// within an overall deadline per call; UNAVAILABLE and DEADLINE_EXCEEDED retried whatever the
// reason, and the reasons REQUEST_IN_PROGRESS, TOO_MANY_REQUESTS, STORE_OUT_OF_MEMORY and
// CLAIM_EXPIRED whatever the code; full jitter, plus the server's google.rpc.RetryInfo delay;
// every mutating call carries a request_id, the same on each of its attempts, so a retry is
// never acted on twice. Errors are HyperdialError, with the google.rpc.Status details of
// grpc-status-details-bin decoded (ErrorInfo, BadRequest, RetryInfo).
'use strict';

const crypto = require('node:crypto');
const path = require('node:path');

const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const protobuf = require('protobufjs');

/** @typedef {import('./types/hyperdial/v1/Study').Study__Output} Study */
/** @typedef {import('./types/hyperdial/v1/StudySpec').StudySpec} StudySpec */
/** @typedef {import('./types/hyperdial/v1/Trial').Trial__Output} Trial */
/**
 * @typedef {import('./types/hyperdial/v1/EarlyStoppingDecision').EarlyStoppingDecision__Output}
 *   Decision
 */
/** @typedef {import('./types/hyperdial/v1/ParameterValue').ParameterValue__Output} ParamValue */
/** @typedef {import('./types/hyperdial/v1/TuningService').TuningServiceClient} ServiceStub */
/** @typedef {import('./types/tuning_service').ProtoGrpcType} ProtoGrpcType */
/** @typedef {import('./types/google/rpc/Status').Status__Output} RpcStatus */
/** @typedef {import('./types/google/rpc/ErrorInfo').ErrorInfo__Output} ErrorInfo */
/** @typedef {import('./types/google/rpc/BadRequest').BadRequest__Output} BadRequest */
/** @typedef {import('./types/google/rpc/RetryInfo').RetryInfo__Output} RetryInfo */

/** The loader options; gen-types.js generates types/ with the same ones. */
const LOADER_OPTIONS = {
  keepCase: true, // field names as in the .proto files: study_id, final_measurement, ...
  longs: Number, // int64 fields (trial numbers, int parameters) as JS numbers
  enums: String, // enum values by name: 'ALGORITHM_QUASI_RANDOM', 'TRIAL_STATE_COMPLETED'
  defaults: true,
  oneofs: true, // a oneof's field name in a virtual property: ParameterValue.kind
};

/** The repository's protos/ directory; HYPERDIAL_PROTOS or `connect`'s `protosDir` overrides. */
const DEFAULT_PROTOS = path.resolve(__dirname, '..', '..', 'protos');
/** The vendored google/rpc/status.proto and error_details.proto (Apache-2.0, see there). */
const RPC_PROTOS = path.join(__dirname, 'protos');

const SERVICE = 'hyperdial.v1.TuningService';

/**
 * Deadline of one attempt, per method (docs/protocol.md): an attempt stuck on a replica that
 * stopped answering ends after a few seconds and is retried; round-robin sends the retry to
 * the next replica.
 * @type {Readonly<Record<string, number>>}
 */
const ATTEMPT_TIMEOUT_MS = Object.freeze({
  SuggestTrials: 20_000, // may start sampler processes and fit a model on a loaded replica
  ListStudies: 15_000, // pages up to 4 MiB
  ListTrials: 15_000,
  ListOptimalTrials: 15_000,
  DeleteStudy: 30_000, // removes all the study's trials in one step
});
/** Every other method: answered in milliseconds. */
const DEFAULT_ATTEMPT_TIMEOUT_MS = 5_000;
/** Overall deadline of one call, retries included (the Python client's RetryPolicy). */
const DEFAULT_DEADLINE_MS = 120_000;
/** The bound of the first backoff, and of every backoff. */
const INITIAL_BACKOFF_MS = 200;
const MAX_BACKOFF_MS = 10_000;

/**
 * Retried whatever the reason. gRPC never retries DEADLINE_EXCEEDED (the call may have taken
 * effect); it is safe here because every mutating call carries a request_id, kept across its
 * retries, which the service answers without acting twice.
 */
const RETRYABLE_CODES = new Set([grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED]);
/**
 * Retried whatever the code (client/hyperdial/_retry.py, RETRYABLE_REASONS): a call with this
 * request_id still in progress, a replica shedding list calls (RESOURCE_EXHAUSTED with a
 * RetryInfo), a full store (RESOURCE_EXHAUSTED: works once an operator frees memory), and what
 * servers before ASK_CONTENDED sent. Every other RESOURCE_EXHAUSTED (TOO_MANY_STUDIES, a
 * request over 4 MiB) and FAILED_PRECONDITION fails at once: a retry would answer the same.
 */
const RETRYABLE_REASONS = new Set([
  'REQUEST_IN_PROGRESS',
  'TOO_MANY_REQUESTS',
  'STORE_OUT_OF_MEMORY',
  'CLAIM_EXPIRED',
]);

/** gRPC's own quick retries of UNAVAILABLE (a refused or reset connection), same bytes. */
const GRPC_RETRY = {
  maxAttempts: 4,
  initialBackoff: '0.05s',
  maxBackoff: '0.5s',
  backoffMultiplier: 2,
  retryableStatusCodes: ['UNAVAILABLE'],
};

/**
 * The channel's settings (docs/protocol.md): round-robin over the target's addresses, a
 * timeout per method, keepalive pings on every connection, quick reconnects. The
 * healthCheckConfig of docs/protocol.md is left out: @grpc/grpc-js 1.14 has no client-side
 * health checking. Keepalive still takes a frozen replica out of rotation, and a replica that
 * lost its store answers STORE_UNAVAILABLE, which is retried.
 * @returns {Record<string, string | number>}
 */
function channelOptions() {
  const serviceConfig = {
    loadBalancingConfig: [{ round_robin: {} }],
    methodConfig: [
      ...Object.entries(ATTEMPT_TIMEOUT_MS).map(([method, ms]) => ({
        name: [{ service: SERVICE, method }],
        timeout: `${ms / 1000}s`,
        retryPolicy: GRPC_RETRY,
      })),
      {
        name: [{ service: SERVICE }],
        timeout: `${DEFAULT_ATTEMPT_TIMEOUT_MS / 1000}s`,
        retryPolicy: GRPC_RETRY,
      },
    ],
  };
  return {
    'grpc.service_config': JSON.stringify(serviceConfig),
    'grpc.service_config_disable_resolution': 1, // this config, not one from DNS TXT records
    'grpc.enable_retries': 1,
    // Ping every connection every 10 s, idle or not; close it when a ping is not answered
    // within 5 s: that takes a frozen replica (paused VM, stopped process) out of rotation.
    'grpc.keepalive_time_ms': 10_000,
    'grpc.keepalive_timeout_ms': 5_000,
    'grpc.keepalive_permit_without_calls': 1,
    // Reconnect quickly after a replica restarts (gRPC's defaults: 1 s, up to 120 s).
    'grpc.initial_reconnect_backoff_ms': 200,
    'grpc.max_reconnect_backoff_ms': 5_000,
    // The service's message size limit.
    'grpc.max_receive_message_length': 4 * 1024 * 1024,
    'grpc.max_send_message_length': 4 * 1024 * 1024,
  };
}

// -- error details ----------------------------------------------------------------------------

/** @type {protobuf.Root | null} */
let rpcRoot = null;

/** The google.rpc messages, loaded once from the vendored protos. */
function rpcTypes() {
  if (rpcRoot === null) {
    const root = new protobuf.Root();
    // google/protobuf/any.proto and duration.proto are built into protobufjs.
    root.resolvePath = (_origin, target) => path.join(RPC_PROTOS, target);
    root.loadSync(['google/rpc/status.proto', 'google/rpc/error_details.proto'], {
      keepCase: true,
    });
    rpcRoot = root;
  }
  return rpcRoot;
}

/**
 * What a failed call's google.rpc.Status says (the grpc-status-details-bin trailer).
 * @typedef {object} StatusDetails
 * @property {number} code The status code (grpc.status), of the error itself.
 * @property {string} codeName Its name: 'INVALID_ARGUMENT', 'UNAVAILABLE', ...
 * @property {string} message The status message.
 * @property {string} reason ErrorInfo.reason, a stable token to branch on; '' when absent.
 * @property {string} domain ErrorInfo.domain ('hyperdial.dev'); '' when absent.
 * @property {Record<string, string>} metadata ErrorInfo.metadata; {} when absent.
 * @property {{field: string, description: string}[]} fieldViolations BadRequest's fields.
 * @property {number | null} retryDelay RetryInfo.retry_delay in seconds: how long the server
 *   asks the caller to wait at least before a retry; null when it sent none.
 */

/**
 * Decodes the google.rpc.Status details of a gRPC error. Details that are absent or
 * unreadable leave their fields empty: the error keeps its code and message.
 * @param {Partial<grpc.ServiceError>} err An error of a @grpc/grpc-js call.
 * @returns {StatusDetails}
 */
function statusDetails(err) {
  const code = typeof err.code === 'number' ? err.code : grpc.status.UNKNOWN;
  /** @type {StatusDetails} */
  const out = {
    code,
    codeName: grpc.status[code] ?? String(code),
    message: err.details ?? err.message ?? '',
    reason: '',
    domain: '',
    metadata: {},
    fieldViolations: [],
    retryDelay: null,
  };
  const blob = err.metadata?.get('grpc-status-details-bin')?.[0];
  if (!Buffer.isBuffer(blob)) return out;
  try {
    const root = rpcTypes();
    const status = /** @type {RpcStatus} */ (
      /** @type {unknown} */ (root.lookupType('google.rpc.Status').toObject(
        root.lookupType('google.rpc.Status').decode(blob),
        { defaults: true },
      ))
    );
    if (status.message) out.message = status.message;
    let seenInfo = false;
    for (const any of status.details) {
      const name = any.type_url.slice(any.type_url.lastIndexOf('/') + 1);
      const type = root.lookupTypeOrEnum(name);
      if (!(type instanceof protobuf.Type)) continue;
      const value = type.toObject(type.decode(any.value), { defaults: true, longs: Number });
      if (name === 'google.rpc.ErrorInfo' && !seenInfo) {
        const info = /** @type {ErrorInfo} */ (value);
        seenInfo = true;
        out.reason = info.reason;
        out.domain = info.domain;
        out.metadata = { ...info.metadata };
      } else if (name === 'google.rpc.BadRequest') {
        for (const v of /** @type {BadRequest} */ (value).field_violations) {
          out.fieldViolations.push({ field: v.field, description: v.description });
        }
      } else if (name === 'google.rpc.RetryInfo' && out.retryDelay === null) {
        const delay = /** @type {RetryInfo} */ (value).retry_delay;
        const seconds = delay ? Number(delay.seconds) + delay.nanos / 1e9 : 0;
        out.retryDelay = Number.isFinite(seconds) && seconds > 0 ? seconds : 0;
      }
    }
  } catch {
    // Malformed details: the error is still reported, with its code and message.
  }
  return out;
}

/**
 * A failed call: the gRPC status with its decoded details (see StatusDetails).
 */
/**
 * Thrown by a `runTrial` function whose trial's parameters cannot give a result (out of
 * memory, training diverged, an invalid configuration): `runTrial` tells the trial
 * INFEASIBLE with the message as its reason. Samplers learn to avoid the region and the
 * point is never handed out again. Any other error tells the trial FAILED (the
 * infrastructure failed; the point is worth another try).
 */
class TrialInfeasible extends Error {
  /** @param {string} [reason] Why, for people. */
  constructor(reason = '') {
    super(reason);
    this.name = 'TrialInfeasible';
  }
}

class HyperdialError extends Error {
  /**
   * @param {string} method The RPC.
   * @param {Partial<grpc.ServiceError>} err The error of its last attempt.
   * @param {string} requestId The call's request_id ('' for a call without one).
   * @param {number} attempts How many attempts were made.
   */
  constructor(method, err, requestId, attempts) {
    const details = statusDetails(err);
    const why = details.reason ? `${details.codeName}/${details.reason}` : details.codeName;
    super(`${method}: ${why}: ${details.message}`);
    this.name = 'HyperdialError';
    this.method = method;
    this.code = details.code;
    this.codeName = details.codeName;
    this.details = details.message;
    this.reason = details.reason;
    this.domain = details.domain;
    this.metadata = details.metadata;
    this.fieldViolations = details.fieldViolations;
    this.retryDelay = details.retryDelay;
    this.requestId = requestId;
    this.attempts = attempts;
  }

  /** @returns {StatusDetails} The decoded status, as a plain object. */
  toJSON() {
    return {
      code: this.code,
      codeName: this.codeName,
      message: this.details,
      reason: this.reason,
      domain: this.domain,
      metadata: this.metadata,
      fieldViolations: this.fieldViolations,
      retryDelay: this.retryDelay,
    };
  }
}

// -- the client -------------------------------------------------------------------------------

/**
 * One retry, as passed to `onRetry`.
 * @typedef {object} RetryEvent
 * @property {string} method
 * @property {string} requestId The call's request_id, the same on every attempt ('' if none).
 * @property {number} attempt The number of the attempt about to start (2 for the first retry).
 * @property {number} waitMs The wait before it.
 * @property {string} codeName The failed attempt's code.
 * @property {string} reason Its reason ('' if none).
 * @property {string} message Its message.
 */

/**
 * Options of `connect`.
 * @typedef {object} ConnectOptions
 * @property {boolean | {rootCerts?: Buffer, privateKey?: Buffer, certChain?: Buffer}} [tls]
 *   TLS: true for the system's roots; or PEM buffers (a CA for a private server, a client
 *   key and certificate for mutual TLS). Default: plaintext.
 * @property {string} [token] A bearer token (`authorization: Bearer <token>` on every call).
 * @property {number} [deadlineMs] Overall deadline of one call, retries included (120 s).
 * @property {number} [connectTimeoutMs] Wait this long for a first connection; fails with
 *   UNAVAILABLE when none comes. Default: do not wait (calls retry within their deadline).
 * @property {string} [protosDir] The protos/ directory (HYPERDIAL_PROTOS, else the repository's).
 * @property {(event: RetryEvent) => void} [onRetry] Told of every retry (logging).
 * @property {Record<string, string | number>} [channelOptions] More channel options.
 */

/**
 * Per-call options.
 * @typedef {object} CallOptions
 * @property {number} [deadlineMs] Overall deadline of this call, instead of the client's.
 * @property {string} [requestId] The request_id of a mutating call (default: a new UUID4,
 *   kept across the call's attempts); pass one to repeat a call across processes.
 */

/**
 * What `runTrial` passes to the training function.
 * @typedef {object} TrialRun
 * @property {Trial} trial The trial.
 * @property {Record<string, number | string>} params Its parameters as plain values.
 * @property {AbortSignal} signal Aborted when the trial is lost (its lease expired, or it
 *   ended elsewhere): stop training, the result would not be told.
 * @property {(step: number, values: Record<string, number>) => Promise<Decision>} report
 *   Reports an intermediate measurement (with the time since the trial started) and answers
 *   the policy's decision; when `should_stop` is true the trial is STOPPED: return.
 */

/**
 * How `runTrial` ended.
 * @typedef {object} TrialOutcome
 * @property {'completed' | 'stopped' | 'failed' | 'infeasible' | 'lost'} state completed: told
 *   with the values returned (`trial.infeasible` says whether they break a constraint of the
 *   study); stopped: by the policy at a report (or the function returned null); failed: the
 *   function threw, the trial was told FAILED; infeasible: the function threw
 *   TrialInfeasible, the trial was told INFEASIBLE; lost: the trial ended elsewhere
 *   (TRIAL_NOT_RUNNING), nothing was told.
 * @property {Trial} trial The trial as last seen.
 * @property {unknown} [error] What the function threw (failed), or the error that lost it.
 */

/** A connection to a hyperdial service; see `connect`. */
class Client {
  /**
   * @param {string} target
   * @param {ConnectOptions} options
   */
  constructor(target, options) {
    const protos = options.protosDir || process.env.HYPERDIAL_PROTOS || DEFAULT_PROTOS;
    const file = path.join(protos, 'hyperdial/v1/tuning_service.proto');
    const definition = protoLoader.loadSync(file, {
      ...LOADER_OPTIONS,
      includeDirs: [protos], // google/protobuf/*.proto come with proto-loader
    });
    const loaded = /** @type {ProtoGrpcType} */ (
      /** @type {unknown} */ (grpc.loadPackageDefinition(definition))
    );
    /** @type {grpc.ChannelCredentials} */
    let credentials = grpc.credentials.createInsecure();
    const tls = options.tls;
    if (tls) {
      const pem = tls === true ? {} : tls;
      credentials = grpc.credentials.createSsl(
        pem.rootCerts ?? null,
        pem.privateKey ?? null,
        pem.certChain ?? null,
      );
    }
    this.target = target;
    /** @type {ServiceStub} */
    this.stub = new loaded.hyperdial.v1.TuningService(target, credentials, {
      ...channelOptions(),
      ...options.channelOptions,
    });
    this.token = options.token ?? '';
    this.deadlineMs = options.deadlineMs ?? DEFAULT_DEADLINE_MS;
    this.onRetry = options.onRetry ?? null;
    /** Counts of what went out: reports, heartbeats (answered), retries. */
    this.stats = { reports: 0, heartbeats: 0, retries: 0 };
    /** @type {Map<string, number>} lease of each study seen, in ms, by study name */
    this.leases = new Map();
  }

  /**
   * Waits for a connection to the target.
   * @param {number} timeoutMs
   * @returns {Promise<void>} Rejects with a HyperdialError UNAVAILABLE after `timeoutMs`.
   */
  waitForReady(timeoutMs) {
    return new Promise((resolve, reject) => {
      this.stub.waitForReady(new Date(Date.now() + timeoutMs), (err) => {
        if (!err) return resolve();
        const details = `no connection to ${this.target} within ${timeoutMs / 1000} s`;
        reject(new HyperdialError('connect', { code: grpc.status.UNAVAILABLE, details }, '', 1));
      });
    });
  }

  /** Closes the channel. */
  close() {
    this.stub.close();
  }

  /**
   * One call, retried within the overall deadline with the same request (so the same
   * request_id): each attempt's deadline is the method's, cut to what is left of the overall
   * one; the wait before retry n is uniform in [0, min(10 s, 0.2 s * 2^(n-1))] ("full
   * jitter"), plus the server's RetryInfo delay when it sent one. The last attempt's error is
   * thrown as a HyperdialError; after an attempt cut short by the overall deadline, an earlier
   * UNAVAILABLE (it says more: "connection refused") is thrown instead.
   * @template T
   * @param {string} method The RPC's name, e.g. 'SuggestTrials'.
   * @param {{request_id?: string, [field: string]: unknown}} request The method's request
   *   message (its type in types/hyperdial/v1/).
   * @param {CallOptions} [options]
   * @returns {Promise<T>}
   */
  call(method, request, options = {}) {
    const end = Date.now() + (options.deadlineMs ?? this.deadlineMs);
    const attemptMs = ATTEMPT_TIMEOUT_MS[method] ?? DEFAULT_ATTEMPT_TIMEOUT_MS;
    const requestId = request.request_id ?? '';
    const metadata = new grpc.Metadata();
    if (this.token) metadata.set('authorization', `Bearer ${this.token}`);
    const rpc = /** @type {Function} */ (/** @type {any} */ (this.stub)[method]).bind(this.stub);
    return new Promise((resolve, reject) => {
      /** @type {Partial<grpc.ServiceError> | null} */
      let unavailable = null;
      /** @param {number} n */
      const attempt = (n) => {
        const cut = Date.now() + attemptMs > end;
        const deadline = new Date(Math.min(Date.now() + attemptMs, end));
        /** @type {(err: grpc.ServiceError | null, response: T) => void} */
        const done = (err, response) => {
          if (!err) return resolve(response);
          if (err.code === grpc.status.UNAVAILABLE) unavailable = err;
          const { reason, retryDelay, codeName, message } = statusDetails(err);
          const give = () => {
            const outrun = err.code === grpc.status.DEADLINE_EXCEEDED && cut;
            const last = outrun && unavailable ? unavailable : err;
            reject(new HyperdialError(method, last, requestId, n));
          };
          if (!RETRYABLE_CODES.has(err.code) && !RETRYABLE_REASONS.has(reason)) return give();
          const bound = Math.min(MAX_BACKOFF_MS, INITIAL_BACKOFF_MS * 2 ** (n - 1));
          const waitMs = (retryDelay ?? 0) * 1000 + Math.random() * bound;
          if (Date.now() + waitMs >= end) return give(); // the overall deadline would pass
          this.stats.retries += 1;
          this.onRetry?.({ method, requestId, attempt: n + 1, waitMs, codeName, reason, message });
          setTimeout(() => attempt(n + 1), waitMs);
        };
        rpc(request, metadata, { deadline }, done);
      };
      attempt(1);
    });
  }

  /**
   * Creates the study, or joins it when it exists (ALREADY_EXISTS: GetStudy).
   * @param {string} studyId The `{study}` of `studies/{study}`.
   * @param {StudySpec} spec
   * @param {CallOptions} [options]
   * @returns {Promise<{study: Study, created: boolean}>} `created` false: it existed (its spec
   *   is the one stored, which may differ from `spec`).
   */
  async createStudy(studyId, spec, options = {}) {
    const requestId = options.requestId ?? crypto.randomUUID();
    const request = { study_id: studyId, spec, request_id: requestId };
    try {
      /** @type {{study: Study}} */
      const { study } = await this.call('CreateStudy', request, options);
      this.remember(study);
      return { study, created: true };
    } catch (err) {
      if (!(err instanceof HyperdialError) || err.code !== grpc.status.ALREADY_EXISTS) throw err;
    }
    return { study: await this.getStudy(studyId, options), created: false };
  }

  /**
   * @param {string} study A study id or name (`studies/{study}`).
   * @param {CallOptions} [options]
   * @returns {Promise<Study>}
   */
  async getStudy(study, options = {}) {
    /** @type {{study: Study}} */
    const answer = await this.call('GetStudy', { name: studyName(study) }, options);
    this.remember(answer.study);
    return answer.study;
  }

  /**
   * Ask: hands out up to `count` RUNNING trials (those `clientId` holds already first).
   * @param {string} study A study id or name.
   * @param {{count?: number, clientId?: string} & CallOptions} [options]
   * @returns {Promise<Trial[]>} Empty when the study is complete (OUT_OF_RANGE STUDY_COMPLETE).
   */
  async suggest(study, options = {}) {
    const request = {
      parent: studyName(study),
      count: options.count ?? 1,
      client_id: options.clientId ?? '',
      request_id: options.requestId ?? crypto.randomUUID(),
    };
    try {
      /** @type {{trials: Trial[]}} */
      const { trials } = await this.call('SuggestTrials', request, options);
      return trials;
    } catch (err) {
      if (err instanceof HyperdialError && err.reason === 'STUDY_COMPLETE') return [];
      throw err;
    }
  }

  /**
   * Report: records an intermediate measurement of a RUNNING trial (which renews its lease)
   * and answers the study's early-stopping decision.
   * @param {Trial | string} trial The trial or its name.
   * @param {number} step
   * @param {Record<string, number>} values Objective values by name.
   * @param {{elapsedMs?: number} & CallOptions} [options] `elapsedMs`: training time so far.
   * @returns {Promise<{decision: Decision, trial: Trial}>} `decision.should_stop` true: the
   *   trial is STOPPED already (no complete). FAILED_PRECONDITION TRIAL_NOT_RUNNING throws.
   */
  async report(trial, step, values, options = {}) {
    /** @type {import('./types/hyperdial/v1/Measurement').Measurement} */
    const measurement = { step, values };
    if (options.elapsedMs !== undefined) {
      measurement.elapsed_duration = duration(options.elapsedMs / 1000);
    }
    const request = {
      name: trialName(trial),
      measurement,
      request_id: options.requestId ?? crypto.randomUUID(),
    };
    /** @type {{decision: Decision, trial: Trial}} */
    const answer = await this.call('AddTrialMeasurement', request, options);
    this.stats.reports += 1;
    return answer;
  }

  /**
   * Tell: completes a RUNNING trial with its final objective values and, when the study has
   * outcome constraints, each constraint's value beside them (INVALID_ARGUMENT
   * MISSING_CONSTRAINT_VALUE without one). The answer's `infeasible` says whether the values
   * break a constraint (`infeasibility_reason`: which).
   * @param {Trial | string} trial
   * @param {Record<string, number>} values
   * @param {{metadata?: Record<string, string>} & CallOptions} [options]
   * @returns {Promise<Trial>}
   */
  async complete(trial, values, options = {}) {
    return this.tell(trial, { final_measurement: { values } }, options);
  }

  /**
   * Tell a failure: the trial becomes FAILED with `reason`.
   * @param {Trial | string} trial
   * @param {string} reason
   * @param {{metadata?: Record<string, string>} & CallOptions} [options]
   * @returns {Promise<Trial>}
   */
  async fail(trial, reason, options = {}) {
    return this.tell(trial, { failure: { reason } }, options);
  }

  /**
   * Tell an infeasible point: the trial becomes INFEASIBLE with `reason` (its parameters
   * cannot give a result). Use `fail` when the infrastructure failed instead.
   * @param {Trial | string} trial
   * @param {string} reason
   * @param {{metadata?: Record<string, string>} & CallOptions} [options]
   * @returns {Promise<Trial>}
   */
  async infeasible(trial, reason, options = {}) {
    return this.tell(trial, { infeasibility: { reason } }, options);
  }

  /**
   * @param {Trial | string} trial
   * @param {object} outcome
   * @param {{metadata?: Record<string, string>} & CallOptions} options
   * @returns {Promise<Trial>}
   */
  async tell(trial, outcome, options) {
    const request = {
      name: trialName(trial),
      ...outcome,
      metadata: options.metadata ?? {},
      request_id: options.requestId ?? crypto.randomUUID(),
    };
    /** @type {{trial: Trial}} */
    const answer = await this.call('CompleteTrial', request, options);
    return answer.trial;
  }

  /**
   * Renews the lease of a RUNNING trial. FAILED_PRECONDITION TRIAL_NOT_RUNNING throws (its
   * metadata has lease_expired "true" when the lease expired).
   * @param {Trial | string} trial
   * @param {CallOptions} [options]
   * @returns {Promise<Trial>} The trial with its new lease_expire_time.
   */
  async heartbeat(trial, options = {}) {
    /** @type {{trial: Trial}} */
    const answer = await this.call('HeartbeatTrial', { name: trialName(trial) }, options);
    this.stats.heartbeats += 1;
    return answer.trial;
  }

  /**
   * The best completed trial; several objectives: the Pareto front. Only feasible trials:
   * one whose values break an outcome constraint is never optimal.
   * @param {string} study A study id or name.
   * @param {CallOptions} [options]
   * @returns {Promise<Trial[]>}
   */
  async listOptimalTrials(study, options = {}) {
    /** @type {{trials: Trial[]}} */
    const answer = await this.call('ListOptimalTrials', { parent: studyName(study) }, options);
    return answer.trials;
  }

  /**
   * The lease of a trial's study in ms, as the server resolved it (its default when the spec
   * had none): from the study when this client saw it, else from GetStudy.
   * @param {Trial | string} trial
   * @returns {Promise<number>}
   */
  async leaseMs(trial) {
    const study = trialName(trial).replace(/\/trials\/[^/]+$/, '');
    const known = this.leases.get(study);
    if (known !== undefined) return known;
    await this.getStudy(study);
    return /** @type {number} */ (this.leases.get(study));
  }

  /**
   * Runs `fn` on a trial while a timer renews its lease, then tells the result.
   *
   * The timer sends HeartbeatTrial every third of the study's lease; a report renews the
   * lease too, so the timer starts again after each one. A heartbeat has one attempt within
   * its interval (the next heartbeat is its retry). When a heartbeat or a report answers
   * TRIAL_NOT_RUNNING (the lease expired, or the trial ended elsewhere), `run.signal` is
   * aborted and nothing is told. The timer stops when `fn` ends, whatever the outcome. It
   * needs the event loop: training that blocks it (synchronous native code) belongs in a
   * worker thread or a child process.
   *
   * @param {Trial} trial A RUNNING trial from `suggest`.
   * @param {(run: TrialRun) => Promise<Record<string, number> | null>} fn Trains; returns the
   *   final values, the objectives' and the constraints' (CompleteTrial), or null to leave a
   *   trial the policy stopped; throws TrialInfeasible for a point that cannot give a result.
   * @returns {Promise<TrialOutcome>} Errors of the tell itself (after the retries) throw.
   */
  async runTrial(trial, fn) {
    const leaseMs = await this.leaseMs(trial);
    const intervalMs = leaseMs / 3;
    const controller = new AbortController();
    const start = Date.now();
    let stopped = false;
    /** @type {unknown} */
    let lostBy = null;
    /** @type {NodeJS.Timeout | undefined} */
    let timer;
    /** @param {unknown} err */
    const lose = (err) => {
      if (lostBy === null) lostBy = err;
      clearInterval(timer);
      controller.abort(err);
    };
    const beat = () => {
      this.heartbeat(trial, { deadlineMs: intervalMs }).catch((err) => {
        const gone = err instanceof HyperdialError && err.reason === 'TRIAL_NOT_FOUND';
        if (gone || isNotRunning(err)) lose(err);
        // Anything else (the server unreachable for this interval): the next beat retries.
      });
    };
    const restart = () => {
      clearInterval(timer);
      if (!controller.signal.aborted) timer = setInterval(beat, intervalMs);
    };
    restart();
    /** @type {TrialRun} */
    const run = {
      trial,
      params: plainParameters(trial),
      signal: controller.signal,
      report: async (step, values) => {
        try {
          const answer = await this.report(trial, step, values, { elapsedMs: Date.now() - start });
          restart(); // the report renewed the lease
          if (answer.decision.should_stop) {
            stopped = true;
            clearInterval(timer);
          }
          return answer.decision;
        } catch (err) {
          if (isNotRunning(err)) lose(err);
          throw err;
        }
      },
    };
    /** @type {Record<string, number> | null} */
    let values;
    try {
      values = await fn(run);
    } catch (err) {
      clearInterval(timer);
      if (lostBy !== null || isNotRunning(err)) {
        return { state: 'lost', trial, error: lostBy ?? err };
      }
      if (err instanceof TrialInfeasible) {
        try {
          const told = await this.infeasible(trial, err.message.slice(0, 4096));
          return { state: 'infeasible', trial: told, error: err };
        } catch (tellErr) {
          if (isNotRunning(tellErr)) return { state: 'lost', trial, error: tellErr };
          throw tellErr;
        }
      }
      const message = err instanceof Error ? err.message : String(err);
      const failed = await this.fail(trial, message.slice(0, 4096) || 'training failed');
      return { state: 'failed', trial: failed, error: err };
    } finally {
      clearInterval(timer);
    }
    if (lostBy !== null) return { state: 'lost', trial, error: lostBy };
    if (stopped || values === null) return { state: 'stopped', trial };
    try {
      return { state: 'completed', trial: await this.complete(trial, values) };
    } catch (err) {
      if (isNotRunning(err)) return { state: 'lost', trial, error: err };
      throw err;
    }
  }

  /**
   * Records the lease of a study (ms).
   * @param {Study} study
   */
  remember(study) {
    const lease = study.spec?.lease_timeout;
    if (lease) this.leases.set(study.name, (Number(lease.seconds) + lease.nanos / 1e9) * 1000);
  }
}

/**
 * Opens a client of the service at `target` (`host:port`, `dns:///name:port`,
 * `ipv4:A:P,B:Q`).
 * @param {string} target
 * @param {ConnectOptions} [options]
 * @returns {Promise<Client>} With `connectTimeoutMs`: once connected (else UNAVAILABLE).
 */
async function connect(target, options = {}) {
  const client = new Client(target, options);
  if (options.connectTimeoutMs !== undefined) {
    try {
      await client.waitForReady(options.connectTimeoutMs);
    } catch (err) {
      client.close();
      throw err;
    }
  }
  return client;
}

// -- helpers ----------------------------------------------------------------------------------

/** @param {unknown} err */
function isNotRunning(err) {
  return err instanceof HyperdialError && err.reason === 'TRIAL_NOT_RUNNING';
}

/** @param {string} study An id or a name. */
function studyName(study) {
  return study.startsWith('studies/') ? study : `studies/${study}`;
}

/** @param {Trial | string} trial */
function trialName(trial) {
  return typeof trial === 'string' ? trial : trial.name;
}

/**
 * The value of a ParameterValue, whichever its type.
 * @param {ParamValue} v
 * @returns {number | string}
 */
function parameterValue(v) {
  if (v.kind === 'string_value') return v.string_value ?? '';
  if (v.kind === 'int_value') return Number(v.int_value);
  return Number(v.double_value);
}

/**
 * A trial's parameters as plain values, by name.
 * @param {Trial} trial
 * @returns {Record<string, number | string>}
 */
function plainParameters(trial) {
  return Object.fromEntries(
    Object.entries(trial.parameters).map(([name, v]) => [name, parameterValue(v)]),
  );
}

/**
 * A google.protobuf.Duration of `seconds`.
 * @param {number} seconds
 */
function duration(seconds) {
  const whole = Math.floor(seconds);
  return { seconds: whole, nanos: Math.round((seconds - whole) * 1e9) };
}

module.exports = {
  connect,
  Client,
  HyperdialError,
  TrialInfeasible,
  statusDetails,
  plainParameters,
  duration,
  status: grpc.status,
  RETRYABLE_CODES,
  RETRYABLE_REASONS,
  ATTEMPT_TIMEOUT_MS,
  DEFAULT_ATTEMPT_TIMEOUT_MS,
};
