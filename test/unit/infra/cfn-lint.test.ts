/**
 * cfn-lint (PyPI, pinned in scripts/ensure-deps.sh, in the project's .venv) on the synthesized templates:
 * the default stack and one with every security option set. No error; the only warnings allowed are
 * W3005 (a DependsOn on a function's role that a GetAtt already implies: CDK writes it).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../../infra/lib/function.ts';
import { synthTemplate } from './synthesized.ts';

const run = promisify(execFile);
const ALLOWED_WARNINGS = new Set(['W3005']);

interface Match {
  Level: 'Error' | 'Warning' | 'Informational';
  Rule: { Id: string };
  Message: string;
  Filename: string;
}

describe('cfn-lint', () => {
  it('finds no error in the synthesized templates, and no warning but W3005', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cronplane-cfn-lint-'));
    const files = {
      default: synthTemplate(),
      configured: synthTemplate({
        workerTargets: JSON.stringify({
          lambda: ['billing-*'],
          sqs: ['arn:aws:sqs:eu-west-1:111122223333:orders'],
          events: ['arn:aws:events:eu-west-1:111122223333:event-bus/ops'],
        }),
        secretsKmsKeys: 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab',
        agentPrincipals: 'arn:aws:iam::111122223333:role/onprem-host',
        agentTrustAnchors:
          'arn:aws:rolesanywhere:eu-west-1:111122223333:trust-anchor/0a1b2c3d-0000-1111-2222-333344445555',
        agentGroups: JSON.stringify([{ name: 'web', tags: { role: 'web', dc: 'eu' } }]),
        apiExecutionLogging: 'ERROR',
      }),
    };
    const paths = Object.entries(files).map(([name, template]) => {
      const path = join(dir, `${name}.template.json`);
      writeFileSync(path, JSON.stringify(template, null, 1));
      return path;
    });
    // exit code: 0 clean, 2 errors, 4 warnings, 8 informational (or-ed); the JSON tells which
    const out = await run(join(REPO_ROOT, '.venv/bin/cfn-lint'), ['--format', 'json', '--', ...paths], {
      timeout: 120_000,
    }).catch((error: { stdout?: string; code?: number }) => {
      if (typeof error.code === 'number' && error.code < 16 && error.stdout) return { stdout: error.stdout };
      throw error;
    });
    const matches = JSON.parse(out.stdout || '[]') as Match[];
    const describe = (m: Match) => `${m.Level} ${m.Rule.Id} ${m.Filename}: ${m.Message}`;
    expect(matches.filter((m) => m.Level === 'Error').map(describe)).toEqual([]);
    expect(
      matches.filter((m) => m.Level === 'Warning' && !ALLOWED_WARNINGS.has(m.Rule.Id)).map(describe),
    ).toEqual([]);
  }, 180_000);
});
