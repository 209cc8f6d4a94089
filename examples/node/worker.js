#!/usr/bin/env node
// A hyperdial worker in Node.js, on the client module hyperdial.js: creates a study (or joins
// it), runs ask -> train -> tell loops on a toy objective until the study is complete, then
// prints the best trial.
//
// Each trial "trains" for a few steps: after each step the worker reports the loss so far
// (AddTrialMeasurement), and leaves the trial when the study's early-stopping policy stops it.
// While a trial runs, hyperdial.js renews its lease (HeartbeatTrial every third of the lease),
// so a step longer than the lease does not lose the trial.
//
// Outcome constraints: with --max-latency MS a study the worker creates has the constraint
// latency_ms <= MS, and the worker reports each trial's (simulated) inference latency beside
// its loss; a trial that breaks it completes, but is infeasible and never the best. With
// --oom-layers N a model of N layers or more "runs out of memory": the worker tells the trial
// INFEASIBLE (its point cannot give a result) rather than FAILED. Usage:
//
//   npm ci
//   node worker.js [--target HOST:PORT] [--study ID] [--trials N] [--concurrency N] [--json]
//                  [--steps N] [--step-seconds S] [--early-stopping RULE]
//                  [--max-latency MS] [--oom-layers N]
//                  [--lease-timeout SECONDS] [--seed N] [--tls] [--ca FILE]
//                  [--deadline SECONDS] [--connect-timeout SECONDS] [--verbose]
//
// Environment: HYPERDIAL_TARGET (default localhost:50051), HYPERDIAL_STUDY, HYPERDIAL_TRIALS,
// HYPERDIAL_CONCURRENCY, HYPERDIAL_STEPS, HYPERDIAL_STEP_SECONDS, HYPERDIAL_EARLY_STOPPING,
// HYPERDIAL_MAX_LATENCY, HYPERDIAL_OOM_LAYERS, HYPERDIAL_DEADLINE, HYPERDIAL_CONNECT_TIMEOUT,
// HYPERDIAL_TOKEN, HYPERDIAL_PROTOS (the protos/ directory; default ../../protos from this
// file).
//
// The result goes to stdout (with --json: one JSON line and nothing else); progress, retries
// (--verbose) and errors go to stderr.
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const { parseArgs } = require('node:util');

const hd = require('./hyperdial');

const { values: args } = parseArgs({
  options: {
    target: { type: 'string', default: process.env.HYPERDIAL_TARGET || 'localhost:50051' },
    study: { type: 'string', default: process.env.HYPERDIAL_STUDY || '' },
    trials: { type: 'string', default: process.env.HYPERDIAL_TRIALS || '20' },
    // Trials run at once by this process, each by a loop of its own (its own client_id).
    concurrency: { type: 'string', default: process.env.HYPERDIAL_CONCURRENCY || '1' },
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
    // The constraint latency_ms <= this of a study this worker creates; empty: none.
    'max-latency': { type: 'string', default: process.env.HYPERDIAL_MAX_LATENCY || '' },
    // Models of this many layers or more run out of memory: INFEASIBLE. Empty: never.
    'oom-layers': { type: 'string', default: process.env.HYPERDIAL_OOM_LAYERS || '' },
    // The lease of a study this worker creates; empty: the server's default.
    'lease-timeout': { type: 'string', default: '' },
    // The sampler's seed of a study this worker creates; empty: the server draws one.
    seed: { type: 'string', default: '' },
    tls: { type: 'boolean', default: false }, // TLS with the system's roots, or --ca
    ca: { type: 'string', default: '' }, // PEM file of the CA of a private server (implies --tls)
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

const steps = Number.parseInt(args.steps, 10);
const stepMs = Number.parseFloat(args['step-seconds']) * 1000;
const concurrency = Number.parseInt(args.concurrency, 10);
const oomLayers = args['oom-layers'] ? Number.parseInt(args['oom-layers'], 10) : Infinity;
/** The metrics this worker measures besides the loss: the constraints it can report. */
const MEASURED = new Set(['latency_ms']);

/** @param {string} message */
const log = (message) => console.error(message);

/**
 * The toy "training job": a loss with its minimum near lr = 0.01, 3 layers, adam.
 * @param {Record<string, number | string>} p
 */
function train(p) {
  const penalty = p.optimizer === 'adam' ? 0 : 0.05;
  return (Math.log10(Number(p.lr)) + 2) ** 2 + 0.01 * (Number(p.layers) - 3) ** 2 + penalty;
}

/**
 * The toy model's inference latency in ms: 2.5 ms a layer, plus 1 ms for sgd's extra state.
 * @param {Record<string, number | string>} p
 */
function latencyMs(p) {
  return 2.5 * Number(p.layers) + (p.optimizer === 'sgd' ? 1 : 0);
}

/**
 * The loss after `step` of `steps` steps: falls towards train(p), reached at the last step.
 * @param {Record<string, number | string>} p
 * @param {number} step
 */
function lossAt(p, step) {
  return train(p) + 0.5 * (1 / step - 1 / steps);
}

/**
 * Waits `ms`, or less when `signal` aborts.
 * @param {number} ms
 * @param {AbortSignal} signal
 * @returns {Promise<void>}
 */
function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done);
  });
}

/**
 * The policy of --early-stopping, as a StudySpec.early_stopping (null: none).
 * @param {string} name
 * @returns {import('./types/hyperdial/v1/EarlyStoppingPolicy').EarlyStoppingPolicy | null}
 */
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

/**
 * One trial's fake training: a report after each step; stops when the policy says so. Its
 * result is the loss and the value of each constraint of the study (`reported`).
 * @param {import('./hyperdial').TrialRun} run
 * @param {string[]} reported The study's constraints: the metrics to report beside the loss.
 * @returns {Promise<Record<string, number> | null>}
 */
async function training(run, reported) {
  if (Number(run.params.layers) >= oomLayers) {
    // The point itself cannot give a result: INFEASIBLE, never tried again (not FAILED).
    throw new hd.TrialInfeasible(`out of memory: ${run.params.layers} layers`);
  }
  for (let step = 1; step <= steps; step += 1) {
    if (stepMs > 0) await sleep(stepMs, run.signal); // one step of "training"
    if (run.signal.aborted) return null; // lost: the lease expired or it ended elsewhere
    const decision = await run.report(step, { loss: lossAt(run.params, step) });
    if (decision.should_stop) {
      if (args.verbose) log(`${run.trial.name} stopped: ${decision.message}`);
      return null; // STOPPED already: no CompleteTrial
    }
  }
  /** @type {Record<string, number>} */
  const result = { loss: train(run.params) };
  if (reported.includes('latency_ms')) result.latency_ms = latencyMs(run.params);
  return result;
}

async function main() {
  const studyId = args.study || `node-demo-${crypto.randomBytes(4).toString('hex')}`;
  /** @type {import('./types/hyperdial/v1/StudySpec').StudySpec} */
  const spec = {
    parameters: [
      { name: 'lr', float_domain: { min: 1e-5, max: 1, scale: 'SCALE_LOG' } },
      { name: 'layers', int_domain: { min: 1, max: 8, scale: 'SCALE_LINEAR' } },
      { name: 'optimizer', categorical_domain: { values: ['adam', 'sgd'] } },
    ],
    objectives: [{ name: 'loss', goal: 'GOAL_MINIMIZE' }],
    algorithm: 'ALGORITHM_QUASI_RANDOM',
    max_trials: Number.parseInt(args.trials, 10),
  };
  const earlyStopping = policy(args['early-stopping']);
  if (earlyStopping) spec.early_stopping = earlyStopping;
  const leaseSeconds = Number.parseFloat(args['lease-timeout']);
  if (leaseSeconds > 0) spec.lease_timeout = hd.duration(leaseSeconds);
  if (args.seed) spec.seed = Number.parseInt(args.seed, 10);
  const maxLatency = Number.parseFloat(args['max-latency']);
  if (maxLatency > 0) spec.constraints = [{ name: 'latency_ms', upper_bound: maxLatency }];

  const client = await hd.connect(args.target, {
    tls: args.ca ? { rootCerts: fs.readFileSync(args.ca) } : args.tls,
    token: process.env.HYPERDIAL_TOKEN || undefined,
    deadlineMs: Number.parseFloat(args.deadline) * 1000,
    connectTimeoutMs: Number.parseFloat(args['connect-timeout']) * 1000,
    onRetry: args.verbose
      ? (e) => {
          const why = e.reason ? `${e.codeName}/${e.reason}` : e.codeName;
          const id = e.requestId ? ` request_id ${e.requestId}` : '';
          const wait = (e.waitMs / 1000).toFixed(2);
          log(`retrying ${e.method}${id} (attempt ${e.attempt}) in ${wait} s after ${why}`);
        }
      : undefined,
  });
  try {
    const { study, created } = await client.createStudy(studyId, spec);
    log(`${created ? 'created' : 'joining'} ${study.name} on ${args.target}`);
    // A study joined may have constraints of its own: every result must report each one.
    const reported = (study.spec?.constraints ?? []).map((c) => c.name);
    const unknown = reported.filter((name) => !MEASURED.has(name));
    if (unknown.length) {
      throw new Error(`${study.name} has constraints this worker cannot measure: ${unknown}`);
    }
    // told: completed trials; violations: those of them that break a constraint.
    const counts = { told: 0, stopped: 0, failed: 0, infeasible: 0, lost: 0, violations: 0 };

    // One ask -> train -> tell loop; `slot` makes its client_id, so that a restarted worker
    // resumes the trials it held (docs/protocol.md, "Resuming a worker").
    /** @param {number} slot */
    const loop = async (slot) => {
      const clientId = `node-${os.hostname()}-${process.pid}-${slot}`;
      for (;;) {
        const trials = await client.suggest(study.name, { clientId });
        if (trials.length === 0) return; // STUDY_COMPLETE: nothing left to hand out now
        for (const trial of trials) {
          const outcome = await client.runTrial(trial, (run) => training(run, reported));
          if (outcome.state === 'completed') {
            counts.told += 1;
            if (outcome.trial.infeasible) counts.violations += 1;
          } else {
            counts[outcome.state] += 1;
          }
          if (args.verbose && (outcome.state !== 'completed' || outcome.trial.infeasible)) {
            const why = outcome.trial.infeasibility_reason;
            log(`${trial.name}: ${outcome.state}${why ? ` (infeasible: ${why})` : ''}`);
          }
        }
      }
    };
    await Promise.all(Array.from({ length: concurrency }, (_, slot) => loop(slot)));

    const [best] = await client.listOptimalTrials(study.name);
    const summary = {
      study: study.name,
      created,
      ...counts,
      ...client.stats,
      best: best
        ? {
            name: best.name,
            loss: best.final_measurement?.values.loss ?? null,
            // The constraints' values of the best trial (all within their bounds).
            ...Object.fromEntries(
              reported.map((name) => [name, best.final_measurement?.values[name] ?? null]),
            ),
            params: hd.plainParameters(best),
          }
        : null,
    };
    if (args.json) {
      process.stdout.write(`${JSON.stringify(summary)}\n`);
    } else {
      const lost = counts.lost ? `, lost ${counts.lost}` : '';
      const failed = counts.failed ? `, failed ${counts.failed}` : '';
      const infeasible = counts.infeasible ? `, infeasible ${counts.infeasible}` : '';
      const broke = counts.violations ? ` (${counts.violations} breaking a constraint)` : '';
      const calls = `${client.stats.reports} reports, ${client.stats.heartbeats} heartbeats`;
      const told = `told ${counts.told} trials${broke}, stopped ${counts.stopped} early`;
      console.log(`${told}${lost}${failed}${infeasible} (${calls})`);
      if (summary.best) {
        console.log(`best ${summary.best.name}: loss ${summary.best.loss}`);
        console.log(`  params ${JSON.stringify(summary.best.params)}`);
      }
    }
  } finally {
    client.close();
  }
}

main().catch((err) => {
  const why = err instanceof hd.HyperdialError ? `${err.codeName}: ${err.details}` : err.message;
  log(`hyperdial worker: ${why}`);
  process.exitCode = 1;
});
