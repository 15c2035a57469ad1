/**
 * The shell executor's `executor_config` (Dkron's keys), parsed here rather than in agent/executors/shell.ts
 * so that the API checks a job when it is written with the very rules the agent's ShellExecutor applies when
 * it runs it (shared/ cannot import agent/).
 *
 *   - `command`: split into words (quotes and backslashes as a POSIX shell, nothing expanded), or run by
 *     `/bin/sh -c` when `shell` is `"true"`
 *   - `env`: `"K1=v1,K2=v2"`; values may hold `{{ssm:...}}` references, resolved by the executor at run time
 *   - `cwd`, `timeout` (seconds or a Go duration; none by default), `payload` (base64, fed to stdin)
 *   - `su`: the user to run as (an agent running as root switches to it; any other agent refuses the run)
 *   - `mem_limit`: accepted, not enforced (README: limit the agent's unit, e.g. systemd MemoryMax=)
 */
import { ExecutorConfigError, errorMessage, parseTimeout } from './common.ts';

/** Splits like a POSIX shell would for simple words and quotes, without expanding anything. */
export function splitCommand(command: string): string[] {
  const words: string[] = [];
  let current = '';
  let quote: '"' | "'" | null = null;
  let inWord = false;
  for (let i = 0; i < command.length; i++) {
    const c = command[i]!;
    if (quote) {
      if (c === quote) quote = null;
      else if (c === '\\' && quote === '"' && i + 1 < command.length) current += command[++i];
      else current += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      inWord = true;
    } else if (c === '\\' && i + 1 < command.length) {
      current += command[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(current);
      current = '';
      inWord = false;
    } else {
      current += c;
      inWord = true;
    }
  }
  if (quote) throw new Error(`unterminated ${quote} quote in command`);
  if (inWord) words.push(current);
  return words;
}

/** `"K1=v1,K2=v2"` → `{K1: 'v1', K2: 'v2'}`; an entry without a name before `=` is ignored. */
export function parseEnvList(env: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of (env ?? '').split(',')) {
    const i = pair.indexOf('=');
    if (i > 0) out[pair.slice(0, i).trim()] = pair.slice(i + 1);
  }
  return out;
}

export interface ShellSpec {
  /** The program and its arguments (`/bin/sh -c <command>` with `shell: "true"`). */
  argv: string[];
  /** Added to the environment; `{{ssm:...}}` references still unresolved. */
  env: Record<string, string>;
  cwd: string;
  /** 0 = no timeout. */
  timeoutMs: number;
  /** Base64 text for stdin, '' for none. */
  payload: string;
  /** The user to run as, '' for the agent's own. */
  su: string;
}

/** A user name as useradd takes it (or a numeric uid). */
const USER_NAME = /^(?:[a-z_][a-z0-9_.-]*\$?|\d+)$/i;

/** Validates a shell job's `executor_config`. Throws ExecutorConfigError. */
export function parseShellConfig(cfg: Readonly<Record<string, string>>): ShellSpec {
  const command = cfg.command ?? '';
  if (command.trim() === '') throw new ExecutorConfigError('command', 'is required for the shell executor');
  let argv: string[];
  if (cfg.shell === 'true') {
    argv = ['/bin/sh', '-c', command];
  } else {
    try {
      argv = splitCommand(command);
    } catch (error) {
      throw new ExecutorConfigError('command', errorMessage(error));
    }
  }
  return {
    argv,
    env: parseEnvList(cfg.env),
    cwd: cfg.cwd ?? '',
    timeoutMs: parseTimeout(cfg.timeout, 0),
    payload: cfg.payload ?? '',
    su: parseSu(cfg.su),
  };
}

function parseSu(su: string | undefined): string {
  const name = (su ?? '').trim();
  if (name !== '' && (!USER_NAME.test(name) || name.length > 64)) {
    throw new ExecutorConfigError('su', 'must be a user name or a numeric uid');
  }
  return name;
}
