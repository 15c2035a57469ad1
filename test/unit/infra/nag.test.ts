/**
 * cdk-nag's AwsSolutions pack on the stack: no unacknowledged error; every acknowledgement carries its
 * reason (infra/lib/nag.ts). Warnings are allowed (today: APIG3, no WAF web ACL on the stage — a WAF is
 * the operator's choice and costs money; the README says so).
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { describe, expect, it } from 'vitest';
import { addCronplaneStack, createCronplaneApp } from '../../../infra/lib/stack.ts';

interface Violation {
  ruleName: string;
  severity: string;
  violatingConstructs: { constructPath: string }[];
}

/** Synthesizes with the AwsSolutions pack; answers its violations and the acknowledged rules. */
function nag(context: Record<string, unknown> = {}) {
  const outdir = mkdtempSync(join(tmpdir(), 'cronplane-nag-'));
  const app = createCronplaneApp({ outdir, context: { 'aws:cdk:bundling-stacks': [], ...context } });
  const stack = addCronplaneStack(app);
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  try {
    app.synth();
  } catch (error) {
    // warnings make the plugin report "failure" too: the report below tells errors from warnings
    if (!/ValidationFailed|validation-report\.json/.test(`${(error as Error).name} ${error}`)) throw error;
  }
  const report = JSON.parse(readFileSync(join(outdir, 'validation-report.json'), 'utf8')) as {
    pluginReports: { pluginName: string; violations: Violation[] }[];
  };
  const violations = report.pluginReports.flatMap((p) => p.violations);
  const acknowledged: { path: string; id: string; reason: string }[] = [];
  const visit = (c: IConstruct) => {
    for (const entry of c.node.metadata) {
      if (entry.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue;
      // { "Annotation::<rule id>": "<reason>" }
      for (const [id, reason] of Object.entries(entry.data as Record<string, string>)) {
        acknowledged.push({ path: c.node.path, id: id.replace(/^Annotation::/, ''), reason });
      }
    }
    for (const child of c.node.children) visit(child);
  };
  visit(stack);
  return { violations, acknowledged };
}

const errorsOf = (violations: Violation[]) =>
  violations
    .filter((v) => v.severity === 'error')
    .flatMap((v) => v.violatingConstructs.map((c) => `${v.ruleName} at ${c.constructPath}`));

describe('cdk-nag AwsSolutions', () => {
  const { violations, acknowledged } = nag();

  it('reports no unacknowledged error on the default stack', () => {
    expect(errorsOf(violations)).toEqual([]);
    expect(violations.map((v) => v.ruleName)).toEqual(['AwsSolutions-APIG3']);
  });

  it('gives every acknowledgement a reason', () => {
    expect(acknowledged.length).toBeGreaterThan(10);
    for (const a of acknowledged) expect(a.reason.length, `${a.id} at ${a.path}`).toBeGreaterThan(40);
    // never a blanket acknowledgement of the IAM wildcard rule
    expect(acknowledged.filter((a) => a.id === 'AwsSolutions-IAM5')).toEqual([]);
  });

  it('reports no unacknowledged error with agent groups, worker targets, a KMS key and IAM auth off', () => {
    const configured = nag({
      workerTargets: JSON.stringify({
        lambda: ['billing-*', 'report'],
        sqs: ['arn:aws:sqs:eu-west-1:111122223333:orders'],
      }),
      secretsKmsKeys: 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab',
      agentGroups: JSON.stringify([{ name: 'web', tags: { role: 'web', dc: 'eu' } }]),
      iamAuth: 'false',
      iamAuthDisabledAcknowledged: 'true',
    });
    expect(errorsOf(configured.violations)).toEqual([]);
  });
});
