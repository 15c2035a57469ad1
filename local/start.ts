/** `npm start`: the whole system locally; prints one line with the URL when ready; Ctrl-C stops it. */
import { startLocalStack } from './stack.ts';

// The pinned AWS SDK runs on Node 20 and 22; its notice about future releases is not for our users.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const verbose = process.env.CRONPLANE_VERBOSE === '1';
const port = process.env.PORT ? Number(process.env.PORT) : 8080;

const stack = await startLocalStack({
  port,
  writeStackFile: true,
  log: (line) => {
    if (verbose) console.error(line);
  },
});
console.log(
  `Cronplane is running at ${stack.url} (API ${stack.url}/v1, UI ${stack.url}/ui) — Ctrl-C to stop`,
);

let stopping = false;
const shutdown = async () => {
  if (stopping) return;
  stopping = true;
  console.error('stopping…');
  await stack.stop();
  console.error('stopped');
  process.exit(0);
};
process.on('SIGINT', () => void shutdown());
process.on('SIGTERM', () => void shutdown());
