#!/usr/bin/env node
// A hyperdial worker in Node.js: creates a study, runs an ask -> train -> tell loop on a toy
// objective until the study is complete, then prints the best trial.
//
// Each trial "trains" for a few steps: after each step the worker reports the loss so far
// (AddTrialMeasurement), and stops the trial when the study's early-stopping policy says so
// (the trial is STOPPED already: no CompleteTrial). While a step runs, it renews the trial's
// lease with HeartbeatTrial every third of the lease, so a step longer than the lease does not
// lose the trial (a report renews the lease too, so the heartbeats start again after it).
//
// It loads the .proto files of the repository at run time (@grpc/proto-loader), so no code is
// generated. Usage:
//
//   npm install
//   node worker.js [--target HOST:PORT] [--study ID] [--trials N] [--json]
//                  [--steps N] [--step-seconds S] [--early-stopping RULE]
//                  [--lease-timeout SECONDS] [--seed N]
//                  [--deadline SECONDS] [--connect-timeout SECONDS] [--verbose]
//
// Environment: HYPERDIAL_TARGET (default localhost:50051), HYPERDIAL_STUDY, HYPERDIAL_TRIALS,
// HYPERDIAL_STEPS, HYPERDIAL_STEP_SECONDS, HYPERDIAL_EARLY_STOPPING, HYPERDIAL_DEADLINE,
// HYPERDIAL_CONNECT_TIMEOUT, HYPERDIAL_PROTOS (the protos/ directory; default ../../protos
// from this file).
//
// Calls follow "Deadlines, retries and keepalive for other languages" in docs/protocol.md:
// a short deadline per attempt within an overall deadline per call, retries with full jitter
// (and at least the server's google.rpc.RetryInfo delay), keepalive pings on every
// connection, round-robin over the target's addresses.
'use strict';

const crypto = require('node:crypto');
const os = require('node:os');
const path = require('node:path');
const { parseArgs } = require('node:util');

const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const { values: args } = parseArgs({
  options: {
    target: { type: 'string', default: process.env.HYPERDIAL_TARGET || 'localhost:50051' },
    study: { type: 'string', default: process.env.HYPERDIAL_STUDY || '' },
    trials: { type: 'string', default: process.env.HYPERDIAL_TRIALS || '20' },
    json: { type: 'boolean', default: false },
    // Steps of each trial's fake training; a report after each.
    steps: { type: 'string', default: process.env.HYPERDIAL_STEPS || '5' },
    // How long one step "trains" (the event loop stays free: heartbeats go out meanwhile).
    'step-seconds': { type: 'string', default: process.env.HYPERDIAL_STEP_SECONDS || '0' },
    // The policy of a study this worker creates: none, median, successive-halving, hyperband.
    'early-stopping': {
      type: 'string',
      default: process.env.HYPERDIAL_EARLY_STOPPING || 'none',
    },
    // The lease of a study this worker creates; empty: the server's default.
    'lease-timeout': { type: 'string', default: '' },
    // The sampler's seed of a study this worker creates; empty: the server draws one.
    seed: { type: 'string', default: '' },
    // Overall deadline of one call, retries included (the Python client's RetryPolicy: 120 s).
    deadline: { type: 'string', default: process.env.HYPERDIAL_DEADLINE || '120' },
    // How long to wait for a first connection before giving up on a wrong or dead target.
    'connect-timeout': {
      type: 'string',
      default: process.env.HYPERDIAL_CONNECT_TIMEOUT || '10',
    },
    verbose: { type: 'boolean', default: false }, // log every retry on stderr
  },
});

const PROTOS = process.env.HYPERDIAL_PROTOS || path.resolve(__dirname, '..', '..', 'protos');
const definition = protoLoader.loadSync(path.join(PROTOS, 'hyperdial/v1/tuning_service.proto'), {
  includeDirs: [PROTOS], // google/protobuf/*.proto come with proto-loader
  keepCase: true, // field names as in the .proto files: study_id, final_measurement, ...
  longs: Number, // int64 fields (trial numbers, int parameters) as JS numbers
  enums: String, // enum values by name: 'ALGORITHM_QUASI_RANDOM', 'TRIAL_STATE_COMPLETED'
  defaults: true,
  oneofs: true, // a oneof's field name in a virtual property: ParameterValue.kind
});
const { TuningService } = grpc.loadPackageDefinition(definition).hyperdial.v1;

const SERVICE = 'hyperdial.v1.TuningService';
// Deadline of one attempt, per method (docs/protocol.md): an attempt stuck on a replica that
// stopped answering ends after a few seconds and is retried, round-robin sends the retry to
// the next replica.
const ATTEMPT_TIMEOUT_MS = {
  SuggestTrials: 20_000, // may start sampler processes and fit a model on a loaded replica
  ListStudies: 15_000, // pages up to 4 MiB
  ListTrials: 15_000,
  ListOptimalTrials: 15_000,
  DeleteStudy: 30_000, // removes all the study's trials in one step
};
const DEFAULT_ATTEMPT_TIMEOUT_MS = 5_000; // every other method: answered in milliseconds
// gRPC's own quick retries of UNAVAILABLE (a refused or reset connection); the loop in call()
// retries the rest, and longer outages.
const GRPC_RETRY = {
  maxAttempts: 4,
  initialBackoff: '0.05s',
  maxBackoff: '0.5s',
  backoffMultiplier: 2,
  retryableStatusCodes: ['UNAVAILABLE'],
};
const serviceConfig = {
  // Round-robin over every address of the target (dns:///name:port, ipv4:A:P,B:Q). The
  // healthCheckConfig of docs/protocol.md is left out: @grpc/grpc-js 1.14 has no client-side
  // health checking. Keepalive still takes a frozen replica out of rotation, and a replica
  // that lost its store answers STORE_UNAVAILABLE, which is retried (on the next replica).
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
const channelOptions = {
  'grpc.service_config': JSON.stringify(serviceConfig),
  'grpc.service_config_disable_resolution': 1, // this config, not one from DNS TXT records
  'grpc.enable_retries': 1,
  // Keepalive: ping every connection every 10 s, idle or not; close it when a ping is not
  // answered within 5 s. That is what takes a frozen replica (a paused VM, a stopped process,
  // a silent partition) out of rotation: its TCP connections stay open otherwise.
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

const client = new TuningService(args.target, grpc.credentials.createInsecure(), channelOptions);
const clientId = `node-${os.hostname()}-${process.pid}`;
const overallMs = Number.parseFloat(args.deadline) * 1000;
const connectMs = Number.parseFloat(args['connect-timeout']) * 1000;
const steps = Number.parseInt(args.steps, 10);
const stepMs = Number.parseFloat(args['step-seconds']) * 1000;

// -- error details ---------------------------------------------------------------------------
// The service puts a google.rpc.Status in the grpc-status-details-bin trailer: an ErrorInfo
// (the stable reason) and, when load is shed, a RetryInfo (how long to wait at least). The
// four fields read here need no generated code: a few lines of protobuf wire format.

// The fields of one protobuf message: [fieldNumber, value] pairs; a value is a number
// (varint) or a Buffer (length-delimited). Throws on malformed bytes.
function fields(buf) {
  const out = [];
  let pos = 0;
  const varint = () => {
    let value = 0;
    for (let shift = 0; ; shift += 7) {
      if (pos >= buf.length || shift > 63) throw new Error('bad varint');
      const byte = buf[pos++];
      value += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) return value;
    }
  };
  while (pos < buf.length) {
    const key = varint();
    const [number, wire] = [Math.floor(key / 8), key % 8];
    if (wire === 0) out.push([number, varint()]);
    else if (wire === 2) {
      const len = varint();
      if (pos + len > buf.length) throw new Error('truncated');
      out.push([number, buf.subarray(pos, pos + len)]);
      pos += len;
    } else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else throw new Error(`wire type ${wire}`);
  }
  return out;
}

// { reason, retryDelayMs } of a failed call; '' and null when absent or unreadable.
function errorDetails(err) {
  const details = { reason: '', retryDelayMs: null };
  const blob = err.metadata?.get?.('grpc-status-details-bin')?.[0];
  if (!Buffer.isBuffer(blob)) return details;
  try {
    for (const [number, any] of fields(blob)) {
      if (number !== 3 || !Buffer.isBuffer(any)) continue; // Status.details: repeated Any
      const parts = Object.fromEntries(fields(any)); // Any: 1 type_url, 2 value
      const type = String(parts[1] ?? '').split('/').pop();
      const value = Buffer.isBuffer(parts[2]) ? parts[2] : Buffer.alloc(0);
      if (type === 'google.rpc.ErrorInfo' && !details.reason) {
        details.reason = String(Object.fromEntries(fields(value))[1] ?? ''); // 1 reason
      } else if (type === 'google.rpc.RetryInfo' && details.retryDelayMs === null) {
        const delay = Object.fromEntries(fields(value))[1]; // 1 retry_delay: Duration
        const d = Buffer.isBuffer(delay) ? Object.fromEntries(fields(delay)) : {};
        const ms = (Number(d[1] ?? 0) + Number(d[2] ?? 0) / 1e9) * 1000; // seconds, nanos
        details.retryDelayMs = Number.isFinite(ms) && ms > 0 ? ms : 0;
      }
    }
  } catch {
    // Malformed details: the error is still reported, with what was read.
  }
  return details;
}

// -- calls -----------------------------------------------------------------------------------

// Retried whatever the reason: gRPC never retries DEADLINE_EXCEEDED (the call may have taken
// effect); it is safe here because every mutating call carries a request_id, kept across its
// retries, which the service answers without acting twice.
const RETRYABLE_CODES = new Set([grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED]);
// Retried whatever the code: a call with this request_id still in progress, a replica shedding
// list calls (RESOURCE_EXHAUSTED, with a RetryInfo), a full store (RESOURCE_EXHAUSTED: works
// once an operator frees memory), and what servers before ASK_CONTENDED sent.
const RETRYABLE_REASONS = new Set([
  'REQUEST_IN_PROGRESS',
  'TOO_MANY_REQUESTS',
  'STORE_OUT_OF_MEMORY',
  'CLAIM_EXPIRED',
]);
const INITIAL_BACKOFF_MS = 200;
const MAX_BACKOFF_MS = 10_000;

// One call, retried with the same request (so the same request_id) within the overall
// deadline: each attempt has its own short deadline, cut to what is left of the overall one;
// the wait before retry n is uniform in [0, min(10 s, 0.2 s * 2^(n-1))] ("full jitter"), plus
// the server's RetryInfo delay when it sent one. Anything else (DATA_LOSS, INVALID_ARGUMENT,
// FAILED_PRECONDITION STORE_REJECTED, ...) fails at once: a retry would answer the same.
function call(method, request) {
  const end = Date.now() + overallMs;
  const attemptMs = ATTEMPT_TIMEOUT_MS[method] ?? DEFAULT_ATTEMPT_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const attempt = (n) => {
      const deadline = new Date(Math.min(Date.now() + attemptMs, end));
      client[method](request, { deadline }, (err, response) => {
        if (!err) return resolve(response);
        const { reason, retryDelayMs } = errorDetails(err);
        if (!RETRYABLE_CODES.has(err.code) && !RETRYABLE_REASONS.has(reason)) return reject(err);
        const bound = Math.min(MAX_BACKOFF_MS, INITIAL_BACKOFF_MS * 2 ** (n - 1));
        const wait = (retryDelayMs ?? 0) + Math.random() * bound;
        if (Date.now() + wait >= end) return reject(err); // the overall deadline would pass
        if (args.verbose) {
          const why = `${grpc.status[err.code]}${reason ? `/${reason}` : ''}`;
          console.error(`retrying ${method} in ${(wait / 1000).toFixed(2)} s after ${why}`);
        }
        setTimeout(() => attempt(n + 1), wait);
      });
    };
    attempt(1);
  });
}

// Waits for a first connection to the target; a wrong or dead target fails after
// --connect-timeout instead of each call retrying for its whole deadline.
function connect() {
  return new Promise((resolve, reject) => {
    client.waitForReady(new Date(Date.now() + connectMs), (err) => {
      if (!err) return resolve();
      const details = `no connection to ${args.target} within ${connectMs / 1000} s`;
      reject({ code: grpc.status.UNAVAILABLE, details });
    });
  });
}

// The value of a ParameterValue, whichever its type.
function value(v) {
  return v[v.kind];
}

// The toy "training job": a loss with its minimum near lr = 0.01, 3 layers, adam.
function train(p) {
  const lr = value(p.lr);
  const layers = value(p.layers);
  const penalty = value(p.optimizer) === 'adam' ? 0 : 0.05;
  return (Math.log10(lr) + 2) ** 2 + 0.01 * (layers - 3) ** 2 + penalty;
}

// The loss after `step` of `steps` steps: falls towards train(p), reached at the last step.
function lossAt(p, step) {
  return train(p) + 0.5 * (1 / step - 1 / steps);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// The policy of --early-stopping, as a StudySpec.early_stopping (null: none).
function policy(name) {
  switch (name) {
    case 'none':
      return null;
    case 'median':
      return { median: { warmup_steps: 1 } };
    case 'successive-halving':
      return { successive_halving: { min_resource: 1, reduction_factor: 3, max_resource: steps } };
    case 'hyperband':
      return { hyperband: { min_resource: 1, reduction_factor: 3, max_resource: steps } };
    default:
      throw new Error(`--early-stopping: ${name}? none, median, successive-halving or hyperband`);
  }
}

// A Duration message of `seconds`.
function duration(seconds) {
  const whole = Math.floor(seconds);
  return { seconds: whole, nanos: Math.round((seconds - whole) * 1e9) };
}

// Renews a trial's lease every third of `leaseMs` until stop(); reset() after a report (which
// renewed the lease) starts the count again. One attempt per heartbeat: the next one is the
// retry. A trial that is no longer running (stopped, expired) is renewed no more.
function heartbeats(name, leaseMs, stats) {
  let timer = null;
  let stopped = false;
  const beat = () => {
    const deadline = new Date(Date.now() + Math.min(5_000, leaseMs));
    client.HeartbeatTrial({ name }, { deadline }, (err) => {
      if (!err) {
        stats.heartbeats += 1;
        return;
      }
      if (err.code === grpc.status.FAILED_PRECONDITION || err.code === grpc.status.NOT_FOUND) {
        stopped = true; // ended elsewhere: the next report says so too
        clearInterval(timer);
      } else if (args.verbose) {
        console.error(`heartbeat of ${name}: ${grpc.status[err.code]} (will retry)`);
      }
    });
  };
  const reset = () => {
    clearInterval(timer);
    if (!stopped) timer = setInterval(beat, leaseMs / 3);
  };
  reset();
  return {
    reset,
    stop: () => {
      stopped = true;
      clearInterval(timer);
    },
  };
}

// One trial: train step by step, report after each step, stop when told. Returns 'completed',
// 'stopped' or 'lost' (the trial ended elsewhere, e.g. its lease expired: do not tell it).
async function runTrial(trial, leaseMs, stats) {
  const keeper = heartbeats(trial.name, leaseMs, stats);
  const start = Date.now();
  try {
    for (let step = 1; step <= steps; step += 1) {
      if (stepMs > 0) await sleep(stepMs); // one step of "training"
      let answer;
      try {
        answer = await call('AddTrialMeasurement', {
          name: trial.name,
          measurement: {
            step,
            values: { loss: lossAt(trial.parameters, step) },
            elapsed_duration: duration((Date.now() - start) / 1000),
          },
          request_id: crypto.randomUUID(), // a retry answers the same decision, a stop too
        });
      } catch (err) {
        // Ended elsewhere (its lease expired, or it was stopped): give it up, ask for another.
        const notRunning = errorDetails(err).reason === 'TRIAL_NOT_RUNNING';
        if (err.code === grpc.status.FAILED_PRECONDITION && notRunning) return 'lost';
        throw err;
      }
      stats.reports += 1;
      keeper.reset(); // the report renewed the lease
      if (answer.decision.should_stop) {
        if (args.verbose) console.error(`${trial.name} stopped: ${answer.decision.message}`);
        return 'stopped'; // STOPPED already: no CompleteTrial
      }
    }
    keeper.stop();
    await call('CompleteTrial', {
      name: trial.name,
      final_measurement: { values: { loss: train(trial.parameters) } },
      request_id: crypto.randomUUID(),
    });
    return 'completed';
  } finally {
    keeper.stop();
  }
}

async function main() {
  const studyId = args.study || `node-demo-${crypto.randomBytes(4).toString('hex')}`;
  const parent = `studies/${studyId}`;
  const maxTrials = Number.parseInt(args.trials, 10);
  const spec = {
    parameters: [
      { name: 'lr', float_domain: { min: 1e-5, max: 1, scale: 'SCALE_LOG' } },
      { name: 'layers', int_domain: { min: 1, max: 8, scale: 'SCALE_LINEAR' } },
      { name: 'optimizer', categorical_domain: { values: ['adam', 'sgd'] } },
    ],
    objectives: [{ name: 'loss', goal: 'GOAL_MINIMIZE' }],
    algorithm: 'ALGORITHM_QUASI_RANDOM',
    max_trials: maxTrials,
  };
  const earlyStopping = policy(args['early-stopping']);
  if (earlyStopping) spec.early_stopping = earlyStopping;
  const leaseSeconds = Number.parseFloat(args['lease-timeout']);
  if (leaseSeconds > 0) spec.lease_timeout = duration(leaseSeconds);
  if (args.seed) spec.seed = Number.parseInt(args.seed, 10);
  await connect();
  let study;
  try {
    ({ study } = await call('CreateStudy', {
      study_id: studyId,
      spec,
      request_id: crypto.randomUUID(),
    }));
    console.log(`created ${parent} on ${args.target}`);
  } catch (err) {
    if (err.code !== grpc.status.ALREADY_EXISTS) throw err;
    ({ study } = await call('GetStudy', { name: parent }));
    console.log(`joining ${parent} on ${args.target}`); // another worker created it
  }
  // The study's lease as the server resolved it (its default when the spec had none).
  const lease = study.spec.lease_timeout;
  const leaseMs = lease ? (Number(lease.seconds) + lease.nanos / 1e9) * 1000 : 30_000;

  const stats = { reports: 0, heartbeats: 0 };
  let told = 0;
  let stopped = 0;
  let lost = 0;
  for (;;) {
    let trials;
    try {
      const asked = await call('SuggestTrials', {
        parent,
        count: 1,
        client_id: clientId,
        request_id: crypto.randomUUID(),
      });
      trials = asked.trials;
    } catch (err) {
      if (err.code === grpc.status.OUT_OF_RANGE) break; // STUDY_COMPLETE: nothing left to run
      throw err;
    }
    for (const trial of trials) {
      const outcome = await runTrial(trial, leaseMs, stats);
      if (outcome === 'completed') told += 1;
      else if (outcome === 'stopped') stopped += 1;
      else lost += 1;
    }
  }

  const { trials: optimal } = await call('ListOptimalTrials', { parent });
  const best = optimal[0];
  const summary = { study: parent, told, stopped, lost, ...stats, best: null };
  if (best) {
    const params = Object.fromEntries(
      Object.entries(best.parameters).map(([name, v]) => [name, value(v)]),
    );
    summary.best = { name: best.name, loss: best.final_measurement.values.loss, params };
  }
  if (args.json) {
    console.log(JSON.stringify(summary));
  } else {
    const lostNote = lost ? `, lost ${lost}` : '';
    const calls = `${stats.reports} reports, ${stats.heartbeats} heartbeats`;
    console.log(`told ${told} trials, stopped ${stopped} early${lostNote} (${calls})`);
    if (best) {
      console.log(`best ${best.name}: loss ${summary.best.loss.toFixed(6)}`);
      console.log(`  params ${JSON.stringify(summary.best.params)}`);
    }
  }
}

main()
  .catch((err) => {
    console.error(`hyperdial worker: ${err.code !== undefined ? `${grpc.status[err.code]}: ` : ''}${err.details || err.message}`);
    process.exitCode = 1;
  })
  .finally(() => client.close());
