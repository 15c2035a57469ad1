/** `npm start`: the whole system locally; prints one line with the URL when ready; Ctrl-C stops it. */
import { createServer } from 'node:net';
import { type LocalConfig, LocalConfigError, loadLocalConfig } from './config.ts';
import { type LocalStack, startLocalStack } from './stack.ts';

// The pinned AWS SDK runs on Node 20 and 22; its notice about future releases is not for our users.
// (Set for the SDK in this process, not read as configuration.)
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

let config: LocalConfig;
try {
  config = loadLocalConfig();
} catch (error) {
  fail(error instanceof LocalConfigError ? error.message : String(error));
}
// CRONPLANE_IAM_AUTH=1: the API takes only calls signed (SigV4, execute-api) with the key in this
// environment, as the deployed API does with IAM auth; `npx cronplane ui --api <url>` and `--iam` sign them.
const { port, verbose, iamAuth } = config;

// A taken port is found before the emulators start, not after.
await new Promise<void>((resolve) => {
  const probe = createServer();
  probe.once('error', (error: NodeJS.ErrnoException) => fail(portMessage(error)));
  probe.listen(port, '127.0.0.1', () => probe.close(() => resolve()));
});

let stack: LocalStack;
try {
  stack = await startLocalStack({
    port,
    iamAuth,
    writeStackFile: config.stackFile,
    // An emulator that died, a store that stopped answering: said even when not verbose.
    notice: (line) => console.error(`npm start: ${line}`),
    log: (line) => {
      if (verbose) console.error(line);
    },
  });
} catch (error) {
  fail(portMessage(error as NodeJS.ErrnoException));
}
console.log(
  `Cronplane is running at ${stack.url} (API ${stack.url}/v1, UI ${stack.url}/ui, metrics ${stack.url}/metrics) — Ctrl-C to stop`,
);
if (iamAuth) {
  console.log(
    `IAM auth on (key ${Object.keys(iamAuth.keys)[0]}, ${iamAuth.region}): UI with \`npx cronplane ui --api ${stack.url}\`, CLI with --iam`,
  );
}

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
// The whole local system is one process: a stray error in one request, poll or timer is logged, and the
// rest (every other job, the API) goes on, as separate Lambda invocations and agents would on AWS.
process.on('uncaughtException', (error) =>
  console.error('npm start: uncaught error (still running):', error),
);
process.on('unhandledRejection', (error) =>
  console.error('npm start: unhandled rejection (still running):', error),
);

function portMessage(error: NodeJS.ErrnoException): string {
  if (error.code === 'EADDRINUSE') {
    return `port ${port} on 127.0.0.1 is in use (another npm start?): stop it, or choose another port, e.g. PORT=${port === 8080 ? 8081 : 8080} npm start`;
  }
  if (error.code === 'EACCES')
    return `port ${port} needs privileges: choose another, e.g. PORT=8080 npm start`;
  return `could not start: ${error.stack ?? error.message}`;
}

function fail(message: string): never {
  console.error(`npm start: ${message}`);
  process.exit(1);
}
