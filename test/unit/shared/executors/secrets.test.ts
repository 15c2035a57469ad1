import { describe, expect, it } from 'vitest';
import type { AwsClients } from '../../../../shared/aws/clients.ts';
import type { ExecutorResult } from '../../../../shared/executors/executor.ts';
import {
  createSsmResolver,
  DEFAULT_SECRETS_PATH,
  findSecretReferences,
  maskLive,
  parseSecretsPath,
  REDACTED,
  redact,
  referencedParameter,
  referencesSecrets,
  rememberSecret,
  resolveSecrets,
  SecretResolutionError,
  secretReferenceProblem,
  withSecretScope,
} from '../../../../shared/executors/secrets.ts';

const ok = (output: string, reason: string | null = null): ExecutorResult => ({
  status: 'succeeded',
  exitCode: 0,
  output,
  outputTruncated: false,
  reason,
});

/** An SSM client stand-in: GetParameter from a map, counting calls. */
function fakeClients(params: Record<string, string>) {
  const calls: string[] = [];
  const ssm = {
    send: async (command: { input: { Name: string; WithDecryption?: boolean } }) => {
      calls.push(command.input.Name);
      expect(command.input.WithDecryption).toBe(true);
      const value = params[command.input.Name];
      if (value === undefined)
        throw Object.assign(new Error('Parameter not found.'), { name: 'ParameterNotFound' });
      return { Parameter: { Name: command.input.Name, Value: value } };
    },
  };
  return { clients: { ssm } as unknown as AwsClients, calls };
}

describe('findSecretReferences / resolveSecrets', () => {
  it('finds {{ssm:...}} references once each', () => {
    expect(findSecretReferences('a {{ssm:/x}} b {{ ssm:/y/z:3 }} {{ssm:/x}} {{other}}')).toEqual([
      '/x',
      '/y/z:3',
    ]);
    expect(findSecretReferences('none')).toEqual([]);
  });

  it('replaces every reference by the looked-up value', async () => {
    const lookup = async (name: string) => `<${name}>`;
    expect(await resolveSecrets('Bearer {{ssm:/t}} and {{ssm:/t}} {{ssm:/u}}', lookup)).toBe(
      'Bearer </t> and </t> </u>',
    );
    expect(await resolveSecrets('plain', lookup)).toBe('plain');
  });
});

describe('redact', () => {
  it('removes every occurrence, longest secret first, and escaped forms', () => {
    expect(redact('token=abc123 again abc123', ['abc123'])).toBe(`token=${REDACTED} again ${REDACTED}`);
    expect(redact('pass word', ['pass', 'pass word'])).toBe(REDACTED);
    expect(redact('{"h":"a\\"b"}', ['a"b'])).toBe(`{"h":"${REDACTED}"}`);
    expect(redact('q=a%20b%2Fc', ['a b/c'])).toBe(`q=${REDACTED}`);
    expect(redact('a.c abc', ['a.c'])).toBe(`${REDACTED} abc`);
    expect(redact('unchanged', [])).toBe('unchanged');
    expect(redact('unchanged', [''])).toBe('unchanged');
  });
});

describe('withSecretScope', () => {
  it('redacts what was resolved during the run from output and reason', async () => {
    const r = await withSecretScope(async () => {
      rememberSecret('s3cr3t');
      return ok('got s3cr3t', 'because s3cr3t');
    });
    expect(r.output).toBe(`got ${REDACTED}`);
    expect(r.reason).toBe(`because ${REDACTED}`);
  });

  it('keeps concurrent runs apart and passes inner secrets to the outer scope', async () => {
    const [a, b] = await Promise.all([
      withSecretScope(async () => {
        rememberSecret('alpha');
        await new Promise((r) => setTimeout(r, 10));
        return ok('alpha beta');
      }),
      withSecretScope(async () => {
        rememberSecret('beta');
        return ok('alpha beta');
      }),
    ]);
    expect(a.output).toBe(`${REDACTED} beta`);
    expect(b.output).toBe(`alpha ${REDACTED}`);
    const outer = await withSecretScope(async () => {
      await withSecretScope(async () => {
        rememberSecret('inner');
        return ok('');
      });
      return ok('inner leaked?');
    });
    expect(outer.output).toBe(`${REDACTED} leaked?`);
  });

  it('turns an exception into a failed run', async () => {
    const r = await withSecretScope(async () => {
      throw new SecretResolutionError('/x', 'SSM parameter /x not found');
    });
    expect(r).toMatchObject({ status: 'failed', reason: 'SSM parameter /x not found', output: '' });
  });

  it('opens no scope for a config without references, and one for a config with one at any depth', async () => {
    // Outside a scope a resolved value is remembered nowhere: what the run prints stays as it is.
    const plain = { command: 'echo s3cr3t', env: { A: 'b' }, list: ['x', { y: 'z' }] };
    const unscoped = await withSecretScope(
      async () => {
        rememberSecret('s3cr3t');
        return ok('got s3cr3t');
      },
      { resolvesFrom: plain },
    );
    expect(unscoped.output).toBe('got s3cr3t');
    const nested = { ...plain, list: ['x', { y: 'pre-{{ ssm:/cronplane/db }}' }] };
    const scoped = await withSecretScope(
      async () => {
        rememberSecret('s3cr3t');
        return ok('got s3cr3t');
      },
      { resolvesFrom: nested },
    );
    expect(scoped.output).toBe(`got ${REDACTED}`);
    const failed = await withSecretScope(
      async () => {
        throw new Error('bad config');
      },
      { resolvesFrom: plain },
    );
    expect(failed).toMatchObject({ status: 'failed', reason: 'bad config' });
  });
});

describe('referencesSecrets', () => {
  it('finds a reference in any string of a config, whatever its depth or spacing', () => {
    expect(referencesSecrets({ env: { A: '{{ssm:/cronplane/a}}' } })).toBe(true);
    expect(referencesSecrets({ headers: ['x', ['y', 'Bearer {{\n ssm:/cronplane/t }}']] })).toBe(true);
    expect(referencesSecrets('{{ssm:/cronplane/a}}')).toBe(true);
    expect(referencesSecrets({ env: { A: '{{ssm}}', B: '{ssm:/x}', C: 1, D: null, E: true } })).toBe(false);
    expect(referencesSecrets(undefined)).toBe(false);
  });
});

describe('createSsmResolver', () => {
  it('resolves env values and caches parameters for 60 s', async () => {
    let now = 1_000_000;
    const { clients, calls } = fakeClients({ '/db/pass': 'hunter2', '/user': 'bob' });
    const resolve = createSsmResolver(clients, { now: () => now, secretsPath: '/' });
    const env = { USER: '{{ssm:/user}}', DSN: 'pg://{{ssm:/user}}:{{ssm:/db/pass}}@h', PLAIN: 'x' };
    expect(await resolve(env)).toEqual({ USER: 'bob', DSN: 'pg://bob:hunter2@h', PLAIN: 'x' });
    expect(calls.sort()).toEqual(['/db/pass', '/user']);
    expect(await resolve.resolveSecrets('{{ssm:/db/pass}}')).toBe('hunter2');
    now += 59_000;
    await resolve(env);
    expect(calls).toHaveLength(2);
    now += 2_000;
    await resolve(env);
    expect(calls).toHaveLength(4);
  });

  it('names the env key and the parameter, never a value, when a parameter is missing', async () => {
    const { clients } = fakeClients({ '/known': 'topsecret' });
    const resolve = createSsmResolver(clients, { secretsPath: '/' });
    const error = await resolve({ A: '{{ssm:/known}}', B: '{{ssm:/missing}}' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SecretResolutionError);
    expect((error as SecretResolutionError).parameter).toBe('/missing');
    expect((error as Error).message).toBe('env B: SSM parameter /missing not found');
    expect((error as Error).message).not.toContain('topsecret');
  });

  it('does not cache failures', async () => {
    const params: Record<string, string> = {};
    const { clients, calls } = fakeClients(params);
    const resolve = createSsmResolver(clients, { secretsPath: '/' });
    await expect(resolve.resolveSecrets('{{ssm:/later}}')).rejects.toThrow(/not found/);
    params['/later'] = 'now';
    expect(await resolve.resolveSecrets('{{ssm:/later}}')).toBe('now');
    expect(calls).toEqual(['/later', '/later']);
  });
});

describe('reference matching has no state between calls', () => {
  it('finds references after hasSecretReferences was called on another text', async () => {
    const { hasSecretReferences } = await import('../../../../shared/executors/secrets.ts');
    expect(hasSecretReferences('xxxxxxxxxxxxxxxxxxxxxxxxxxxx {{ssm:/long/name/here}}')).toBe(true);
    expect(findSecretReferences('{{ssm:/a}}')).toEqual(['/a']);
    expect(hasSecretReferences('{{ssm:/a}}')).toBe(true);
    expect(hasSecretReferences('{{ssm:/a}}')).toBe(true);
    expect(await resolveSecrets('{{ssm:/a}}', async () => 'v')).toBe('v');
  });
});

describe('the secrets path', () => {
  it('defaults to /cronplane/ and always ends with a slash', () => {
    expect(parseSecretsPath('')).toBe(DEFAULT_SECRETS_PATH);
    expect(parseSecretsPath('/cronplane')).toBe('/cronplane/');
    expect(parseSecretsPath('/team-a/prod/')).toBe('/team-a/prod/');
    expect(parseSecretsPath('/')).toBe('/');
  });

  it('refuses a configured path that is not a plain absolute SSM path', () => {
    for (const bad of ['cronplane/', '/cronplane/../x/', '/a//b/', '/a/./b', '/a b/', '/a/*/']) {
      expect(parseSecretsPath(bad), bad).toHaveProperty('problem');
    }
  });

  it('reads the parameter name out of names, selectors and ARNs', () => {
    expect(referencedParameter('/cronplane/db/pass')).toBe('/cronplane/db/pass');
    expect(referencedParameter('/cronplane/db/pass:3')).toBe('/cronplane/db/pass');
    expect(referencedParameter('/cronplane/db/pass:prod_label')).toBe('/cronplane/db/pass');
    expect(referencedParameter('arn:aws:ssm:eu-west-1:123456789012:parameter/cronplane/x:2')).toBe(
      '/cronplane/x',
    );
    expect(referencedParameter('arn:aws:ssm:eu-west-1:123456789012:parameter/other/x')).toBe('/other/x');
    expect(referencedParameter('arn:aws:s3:::bucket/cronplane/x')).toBeNull();
    expect(referencedParameter('cronplane/x')).toBeNull();
    expect(referencedParameter('/cronplane/x:../y')).toBeNull();
  });

  it('admits only parameters strictly under the path, whatever path tricks the name plays', () => {
    const path = '/cronplane/';
    for (const good of [
      '/cronplane/x',
      '/cronplane/a/b.c-d_e',
      '/cronplane/x:7',
      'arn:aws:ssm:us-east-1:123456789012:parameter/cronplane/x',
    ]) {
      expect(secretReferenceProblem(good, path), good).toBeNull();
    }
    const outside = [
      '/other/x',
      '/cronplanex/x', // a sibling sharing the prefix's letters
      '/cronplane', // the path itself is no parameter
      '/cronplane/', // nor is the empty name under it
      'arn:aws:ssm:us-east-1:123456789012:parameter/other/x',
      'x',
    ];
    for (const ref of outside) expect(secretReferenceProblem(ref, path), ref).toMatch(/outside|not a plain/);
    const tricks = [
      '/cronplane/../x',
      '/cronplane/./x',
      '/cronplane//x',
      '/cronplane/x/..',
      '/cronplane/%2e%2e/x',
      '/cronplane/x:a/b',
      'arn:aws:ssm:us-east-1:123456789012:parameter/cronplane/../other',
    ];
    for (const ref of tricks) expect(secretReferenceProblem(ref, path), ref).toMatch(/not a plain/);
  });

  it('the resolver refuses a parameter outside the path without calling SSM', async () => {
    const { clients, calls } = fakeClients({ '/other/x': 'leak', '/cronplane/x': 'ok' });
    const resolve = createSsmResolver(clients);
    expect(await resolve.resolveSecrets('{{ssm:/cronplane/x}}')).toBe('ok');
    const error = await resolve({ K: '{{ssm:/other/x}}' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SecretResolutionError);
    expect((error as Error).message).toBe(
      'env K: {{ssm:/other/x}} is outside the secrets path /cronplane/ (CRONPLANE_SECRETS_PATH)',
    );
    await expect(resolve.resolveSecrets('{{ssm:/cronplane/../other/x}}')).rejects.toThrow(/not a plain/);
    expect(calls).toEqual(['/cronplane/x']);
  });

  it('the resolver honours a configured path', async () => {
    const { clients, calls } = fakeClients({ '/team/x': 'ok', '/cronplane/x': 'no' });
    const resolve = createSsmResolver(clients, { secretsPath: '/team/' });
    expect(await resolve.resolveSecrets('{{ssm:/team/x}}')).toBe('ok');
    await expect(resolve.resolveSecrets('{{ssm:/cronplane/x}}')).rejects.toThrow(/outside the secrets path/);
    expect(calls).toEqual(['/team/x']);
  });
});

describe('maskLive (a running job output window)', () => {
  it('masks each secret with as many *s as it has bytes, so the stream offsets still hold', () => {
    const text = 'token=s3cr3t-ä and s3cr3t-ä again';
    const masked = maskLive(text, ['s3cr3t-ä']);
    expect(masked).toBe('token=********* and ********* again');
    expect(Buffer.byteLength(masked)).toBe(Buffer.byteLength(text));
  });

  it("masks a secret's fragment cut by the window's start or still being printed at its end", () => {
    expect(maskLive('cr3t rest', ['s3cr3t'])).toBe('**** rest');
    expect(maskLive('value: s3cr', ['s3cr3t'])).toBe('value: ****');
    // Two characters could be any text: left alone.
    expect(maskLive('3t ok s3', ['s3cr3t'])).toBe('3t ok s3');
  });
});
