#!/usr/bin/env node
// A hyperdial worker in Node.js: creates a study, runs an ask -> train -> tell loop on a toy
// objective until the study is complete, then prints the best trial.
//
// It loads the .proto files of the repository at run time (@grpc/proto-loader), so no code is
// generated. Usage:
//
//   npm install
//   node worker.js [--target HOST:PORT] [--study ID] [--trials N] [--json]
//
// Environment: HYPERDIAL_TARGET (default localhost:50051), HYPERDIAL_STUDY, HYPERDIAL_TRIALS,
// HYPERDIAL_PROTOS (the protos/ directory; default ../../protos from this file).
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

const client = new TuningService(args.target, grpc.credentials.createInsecure());
const clientId = `node-${os.hostname()}-${process.pid}`;

// One call, retried with the same request_id while the service is UNAVAILABLE: a mutating call
// with a request_id is idempotent, so a retry never asks or tells twice.
function call(method, request, attempts = 5) {
  return new Promise((resolve, reject) => {
    const attempt = (left, delayMs) => {
      const deadline = new Date(Date.now() + 30_000);
      client[method](request, { deadline }, (err, response) => {
        if (!err) return resolve(response);
        if (err.code === grpc.status.UNAVAILABLE && left > 1) {
          return setTimeout(() => attempt(left - 1, delayMs * 2), delayMs);
        }
        reject(err);
      });
    };
    attempt(attempts, 200);
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
  try {
    await call('CreateStudy', { study_id: studyId, spec, request_id: crypto.randomUUID() });
    console.log(`created ${parent} on ${args.target}`);
  } catch (err) {
    if (err.code !== grpc.status.ALREADY_EXISTS) throw err;
    console.log(`joining ${parent} on ${args.target}`); // another worker created it
  }

  let told = 0;
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
      const loss = train(trial.parameters);
      await call('CompleteTrial', {
        name: trial.name,
        final_measurement: { values: { loss } },
        request_id: crypto.randomUUID(),
      });
      told += 1;
    }
  }

  const { trials: optimal } = await call('ListOptimalTrials', { parent });
  const best = optimal[0];
  const params = Object.fromEntries(
    Object.entries(best.parameters).map(([name, v]) => [name, value(v)]),
  );
  const loss = best.final_measurement.values.loss;
  if (args.json) {
    console.log(JSON.stringify({ study: parent, told, best: { name: best.name, loss, params } }));
  } else {
    console.log(`told ${told} trials; best ${best.name}: loss ${loss.toFixed(6)}`);
    console.log(`  params ${JSON.stringify(params)}`);
  }
}

main()
  .catch((err) => {
    console.error(`hyperdial worker: ${err.code !== undefined ? `${grpc.status[err.code]}: ` : ''}${err.details || err.message}`);
    process.exitCode = 1;
  })
  .finally(() => client.close());
