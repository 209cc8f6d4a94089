#!/usr/bin/env node
// Generates the TypeScript types of the messages and the service (types/, committed) from the
// repository's protos/ and the vendored google/rpc protos, with @grpc/proto-loader's
// proto-loader-gen-types and the same loader options hyperdial.js uses (so the types describe
// exactly the objects it sends and receives). Run it after changing a .proto file:
//
//   npm run gen-types            # into types/
//   node gen-types.js OUT_DIR    # elsewhere (tests/client/test_node_client.py compares the two)
'use strict';

const { execFileSync } = require('node:child_process');
const path = require('node:path');

const outDir = process.argv[2] || 'types';
const generator = require.resolve('@grpc/proto-loader/build/bin/proto-loader-gen-types.js');
execFileSync(
  process.execPath,
  [
    generator,
    // The loader options of hyperdial.js (LOADER_OPTIONS there).
    '--keepCase',
    '--longs=Number',
    '--enums=String',
    '--defaults',
    '--oneofs',
    '--includeComments',
    '--grpcLib=@grpc/grpc-js',
    // Relative paths: they are written in each file's "Original file" header.
    '-I',
    '../../protos',
    '-I',
    'protos',
    '-O',
    outDir,
    'hyperdial/v1/tuning_service.proto',
    'google/rpc/status.proto',
    'google/rpc/error_details.proto',
  ],
  { cwd: __dirname, stdio: 'inherit' },
);
console.error(`types generated in ${path.resolve(__dirname, outDir)}`);
