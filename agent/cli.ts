/**
 * `cronplane` — the agent and a client of the /v1 API.
 *   cronplane agent --tag role=web --name web-1 --concurrency 4
 *   cronplane jobs ls | get NAME | apply -f FILE | rm NAME | run NAME | toggle NAME
 *   cronplane executions JOB | logs JOB [--follow] [--id ID] | members | leader | pause | unpause
 *   cronplane ui --api https://abc.execute-api.eu-west-1.amazonaws.com/prod [--port 8001]
 */
// First, for its side effect: V8's optimizing compilers stay off through start-up and idling (v8-tier.ts).
import './v8-tier.ts';
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { createContext } from '../shared/context.ts';
import { Agent } from './agent.ts';
import { agentEnv, defaultApiUrl, localStackFile, resolveAgentConfig } from './config.ts';
import { printLogs } from './logs.ts';
import { signedHeaders, wantsSigning } from './sigv4.ts';
import { liftOptimizingTierCap } from './v8-tier.ts';

const program = new Command('cronplane').description('Cronplane: serverless, Dkron-compatible job scheduler');
program
  .option('--api <url>', 'API base URL', defaultApiUrl())
  .option('--iam', 'sign requests with AWS credentials (SigV4); automatic for API Gateway URLs');

async function call(method: string, path: string, body?: unknown): Promise<unknown> {
  const opts = program.opts<{ api: string; iam?: boolean }>();
  const url = new URL(`${opts.api.replace(/\/$/, '')}${path}`);
  const text = body === undefined ? undefined : JSON.stringify(body);
  let headers: Record<string, string> = { 'content-type': 'application/json' };
  if (wantsSigning(url, opts.iam === true)) headers = await signedHeaders(url, method, headers, text);
  const res = await fetch(url, { method, headers, body: text });
  const answer = await res.text();
  const data = answer ? JSON.parse(answer) : null;
  if (!res.ok) {
    const message = (data as { error?: string } | null)?.error ?? res.statusText;
    console.error(`error ${res.status}: ${message}`);
    process.exit(1);
  }
  return data;
}

const print = (data: unknown) => console.log(JSON.stringify(data, null, 2));

program
  .command('agent')
  .description('run an agent that executes jobs on this host')
  .option(
    '--tag <key=value>',
    'agent tag (repeatable)',
    (v: string, acc: string[]) => [...acc, v],
    [] as string[],
  )
  .option('--name <id>', 'agent id (default: hostname)')
  .option('--concurrency <n>', 'parallel executions (default 4)')
  .option('--config <file>', 'JSON file: {"name", "tags", "concurrency", "env", "jobEnv"}')
  .action(async (flags) => {
    const env = agentEnv();
    const stackFile = localStackFile(env);
    const cfg = resolveAgentConfig(flags, env, stackFile);
    const ctx = createContext(cfg.env);
    const log = (e: Record<string, unknown>) =>
      console.log(JSON.stringify({ time: new Date().toISOString(), ...e }));
    const agent = new Agent(ctx, {
      agentId: cfg.agentId,
      tags: cfg.tags,
      concurrency: cfg.concurrency,
      jobEnvPassThrough: cfg.jobEnvPassThrough,
      spawner: cfg.spawner,
      ...Object.fromEntries(Object.entries(cfg.timing).filter(([, v]) => v !== undefined)),
      onLeave: () => process.exit(0),
      onFirstWork: () => {
        if (liftOptimizingTierCap()) log({ msg: 'first launch: V8 optimizing compiler on' });
      },
      log,
    });
    await agent.start();
    if (cfg.joinedLocalStack) console.log(JSON.stringify({ msg: 'joined the local stack', file: stackFile }));
    let stopping = false;
    const stop = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      console.log(JSON.stringify({ msg: `received ${signal}, finishing running jobs` }));
      await agent.stop(cfg.graceMs);
      process.exit(0);
    };
    process.on('SIGTERM', () => void stop('SIGTERM'));
    process.on('SIGINT', () => void stop('SIGINT'));
  });

const jobs = program.command('jobs').description('manage jobs');
jobs.command('ls').action(async () => {
  const list = (await call('GET', '/v1/jobs')) as Array<{
    name: string;
    schedule: string;
    next: string | null;
    status: string;
    disabled: boolean;
  }>;
  for (const j of list)
    console.log(
      [j.name, j.schedule, j.next ?? '-', j.status || '-', j.disabled ? 'disabled' : ''].join('\t'),
    );
});
jobs
  .command('get <name>')
  .action(async (name: string) => print(await call('GET', `/v1/jobs/${encodeURIComponent(name)}`)));
jobs
  .command('apply')
  .requiredOption('-f, --file <file>', 'job JSON (one job or an array)')
  .action(async (o: { file: string }) => {
    const parsed = JSON.parse(readFileSync(o.file === '-' ? 0 : o.file, 'utf8')) as unknown;
    for (const job of Array.isArray(parsed) ? parsed : [parsed]) print(await call('POST', '/v1/jobs', job));
  });
jobs
  .command('rm <name>')
  .action(async (name: string) => print(await call('DELETE', `/v1/jobs/${encodeURIComponent(name)}`)));
jobs
  .command('run <name>')
  .action(async (name: string) => print(await call('POST', `/v1/jobs/${encodeURIComponent(name)}/run`)));
jobs
  .command('toggle <name>')
  .action(async (name: string) => print(await call('POST', `/v1/jobs/${encodeURIComponent(name)}/toggle`)));
program
  .command('executions <job>')
  .action(async (job: string) => print(await call('GET', `/v1/jobs/${encodeURIComponent(job)}/executions`)));
program
  .command('logs <job>')
  .description(
    "a job's output (the newest execution, or --id); --follow prints it as it comes, while it runs",
  )
  .option('-f, --follow', 'keep printing until the run ends; exit status 1 unless it succeeded')
  .option('--id <execution>', 'one execution of the job')
  .action(async (job: string, o: { follow?: boolean; id?: string }) => {
    const code = await printLogs((path) => call('GET', path), job, {
      follow: o.follow === true,
      ...(o.id ? { id: o.id } : {}),
      write: (text) => process.stdout.write(text),
    });
    process.exitCode = code;
  });
program.command('members').action(async () => print(await call('GET', '/v1/members')));
program.command('leader').action(async () => print(await call('GET', '/v1/leader')));
program.command('pause').action(async () => print(await call('POST', '/v1/pause')));
program
  .command('ui')
  .description('serve the web UI on 127.0.0.1, signing its API calls with your AWS credentials (SigV4)')
  .option('--port <n>', 'local port (0: any free one)', '8001')
  .option('--verbose', 'log each forwarded request')
  .action(async (o: { port: string; verbose?: boolean }) => {
    const { startUiProxy } = await import('./ui-proxy.ts');
    const proxy = await startUiProxy({
      api: program.opts<{ api: string }>().api,
      port: Number(o.port),
      log: o.verbose ? (line) => console.error(line) : undefined,
    }).catch((error: NodeJS.ErrnoException) => {
      console.error(
        error.code === 'EADDRINUSE'
          ? `port ${o.port} on 127.0.0.1 is taken: choose another with --port (0: any free one)`
          : `cronplane ui: ${error.message}`,
      );
      process.exit(1);
    });
    console.log(`Cronplane UI: ${proxy.url}/ui/ (API calls signed with your AWS credentials; Ctrl-C stops)`);
    const stop = () => void proxy.close().then(() => process.exit(0));
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
program.command('unpause').action(async () => print(await call('POST', '/v1/unpause')));

await program.parseAsync(process.argv);
