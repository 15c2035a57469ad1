/**
 * Preloaded into a bench agent process (`node --import <this file> bin/cronplane.js agent …`): counts the
 * process's AWS requests by service and API name (the `X-Amz-Target` header of DynamoDB's and SQS's JSON
 * protocols) at the one place every SDK client sends through, `http.request` (the SDK's NodeHttpHandler
 * looks it up on `node:http` when it first sends). On SIGUSR2 it writes the counts so far to
 * `$CRONPLANE_BENCH_COUNTS_FILE` (JSON: {seq, counts: {"DynamoDB.GetItem": n, …}}); the bench signals
 * it at both ends of its window and subtracts. Retries count as requests (they are).
 */

import { writeFileSync } from 'node:fs';
import http from 'node:http';

const file = process.env.CRONPLANE_BENCH_COUNTS_FILE;
if (file) {
  const counts = Object.create(null);
  const original = http.request;
  http.request = function countedRequest(...args) {
    const options = args.find((a) => a && typeof a === 'object' && !(a instanceof URL));
    const headers = options?.headers;
    let target;
    if (headers) {
      for (const k in headers) {
        if (k.length === 12 && k.toLowerCase() === 'x-amz-target') target = String(headers[k]);
      }
    }
    const key = target
      ? target.replace(/^DynamoDB_\d+\./, 'DynamoDB.').replace(/^AmazonSQS\./, 'SQS.')
      : 'other';
    counts[key] = (counts[key] ?? 0) + 1;
    return original.apply(this, args);
  };
  let seq = 0;
  process.on('SIGUSR2', () => {
    seq++;
    writeFileSync(file, JSON.stringify({ seq, counts }));
  });
}
