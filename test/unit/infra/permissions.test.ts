/**
 * The permission table (infra/lib/permissions.ts) against the code: every request a deployable's code can
 * issue (test/unit/infra/source-scan.ts explains how it is read) is granted to its role, or refused on
 * purpose with a written reason; and every grant is one the code needs, or says why it is there.
 * A new `new XxxCommand(` (or a store method newly called by a deployable) without a grant fails here.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../../infra/lib/function.ts';
import { AGENT_EXECUTION_ATTRIBUTES, PERMISSIONS, type RoleName } from '../../../infra/lib/permissions.ts';
import { satisfiedTagSets, tagSetQueueName } from '../../../infra/lib/roles.ts';
import type { AwsClients } from '../../../shared/aws/clients.ts';
import type { Config } from '../../../shared/config.ts';
import { Dispatcher } from '../../../shared/dispatch/dispatch.ts';
import { commandsOutsideStoreClasses, type Requirement, scanDeployable } from './source-scan.ts';

const ROLES = Object.keys(PERMISSIONS) as RoleName[];
const scans = Object.fromEntries(ROLES.map((role) => [role, scanDeployable(PERMISSIONS[role].entries)]));

const key = (action: string, resource: string) => `${action} on ${resource}`;

function granted(role: RoleName): Set<string> {
  return new Set(
    PERMISSIONS[role].grants.flatMap((g) => g.actions.flatMap((a) => g.resources.map((r) => key(a, r)))),
  );
}

describe('the permission table against the code', () => {
  it('the scan reads every command it meets, and the stores build commands only inside their classes', () => {
    for (const role of ROLES) expect(scans[role]!.errors, role).toEqual([]);
    expect(commandsOutsideStoreClasses()).toEqual([]);
  });

  it('reaches the code paths each deployable is known to take (the scan is not blind)', () => {
    const methods = (role: RoleName) => scans[role]!.storeMethods;
    expect(methods('agent')).toEqual(
      expect.arrayContaining([
        'ExecutionsStore.claim',
        'ExecutionsStore.heartbeat',
        'ExecutionsStore.finish',
        'ControlStore.acquireLock',
        'Dispatcher.receive',
      ]),
    );
    expect(methods('tick')).toEqual(expect.arrayContaining(['ControlStore.acquireLease', 'Dispatcher.send']));
    expect(methods('api')).toEqual(
      expect.arrayContaining(['JobsStore.putDefinition', 'ControlStore.setPaused']),
    );
    expect(methods('events')).toEqual(
      expect.arrayContaining(['JobsStore.settleCounts', 'ExecutionsStore.markReacted']),
    );
    expect(scans.worker!.files).toContain('shared/executors/aws.ts');
    // Writes sent through a helper (shared/aws/update-item.ts) are their callers' requests.
    const updates = scans
      .agent!.requirements.filter((r) => r.action === 'dynamodb:UpdateItem' && r.resource === 'executions')
      .map((r) => r.source.split('#')[1]);
    expect(updates).toEqual(
      expect.arrayContaining(['ExecutionsStore.conditionalUpdate', 'ExecutionsStore.heartbeat']),
    );
  });

  for (const role of ROLES) {
    it(`${role}: every request its code can issue is granted, or refused with a reason`, () => {
      const grants = granted(role);
      const refused = new Map(PERMISSIONS[role].notGranted.map((n) => [key(n.action, n.resource), n.why]));
      const missing: Requirement[] = [];
      for (const req of scans[role]!.requirements) {
        const k = key(req.action, req.resource);
        if (!grants.has(k) && !refused.has(k)) missing.push(req);
      }
      expect(missing.map((m) => `${key(m.action, m.resource)} (${m.source})`)).toEqual([]);
      for (const [k, why] of refused) {
        expect(grants.has(k), `${k} is both granted and refused`).toBe(false);
        expect(why.length, `${k}: the reason`).toBeGreaterThan(20);
      }
    });

    it(`${role}: every grant is one its code needs, or says why`, () => {
      const needed = new Set(scans[role]!.requirements.map((r) => key(r.action, r.resource)));
      const extra: string[] = [];
      for (const grant of PERMISSIONS[role].grants) {
        if (grant.why) continue;
        for (const action of grant.actions) {
          for (const resource of grant.resources) {
            if (!needed.has(key(action, resource))) extra.push(`${grant.sid}: ${key(action, resource)}`);
          }
        }
      }
      expect(extra).toEqual([]);
    });
  }

  it("lists every Executions attribute an agent's writes name, and none the agent must not change", () => {
    const source = readFileSync(join(REPO_ROOT, 'shared/executions/executions-store.ts'), 'utf8');
    const methodText = (name: string) => {
      const start = source.search(new RegExp(`\\n  (private )?(async )?${name}\\(`));
      expect(start, name).toBeGreaterThan(0);
      const next = source.slice(start + 1).search(/\n {2}(\/\*\*|(private |async )*[a-zA-Z]+\()/);
      return source.slice(start, next < 0 ? undefined : start + 1 + next);
    };
    const agentWrites = [
      'claimItem',
      'heartbeat',
      'markStarted',
      'finish',
      'end',
      'markLost',
      'requestCancel',
      'conditionalUpdate',
    ];
    const names = new Set<string>();
    const KEYWORDS = new Set([
      'SET',
      'REMOVE',
      'AND',
      'OR',
      'NOT',
      'attribute_exists',
      'attribute_not_exists',
    ]);
    for (const method of agentWrites) {
      const text = methodText(method);
      // update and condition expressions: the string or template literals that hold `SET`/`= :`
      for (const m of text.matchAll(/(['`])((?:(?!\1).)*(?:SET |REMOVE | = :)(?:(?!\1).)*)\1/g)) {
        const expression = (m[2] as string).replace(/\$\{[^}]*\}/g, (inner) =>
          (inner.match(/'([^']*)'/)?.[1] ?? '').toString(),
        );
        for (const token of expression.match(/(?<![:#\w])[A-Za-z_]\w*/g) ?? []) {
          if (!KEYWORDS.has(token)) names.add(token);
        }
      }
      // placeholders' names: `'#s': 'status'`
      for (const m of text.matchAll(/'#\w+': '(\w+)'/g)) names.add(m[1] as string);
    }
    expect(names.size).toBeGreaterThan(10);
    const allowed = new Set<string>(AGENT_EXECUTION_ATTRIBUTES);
    expect([...names].filter((n) => !allowed.has(n))).toEqual([]);
    for (const never of ['jobVersion', 'queueUrl', 'trigger', 'attempt', 'countedAt', 'reactedAt']) {
      expect(allowed.has(never), never).toBe(false);
    }
  });

  it("names an agent group's queues as the dispatcher names the tag-set queues it creates", async () => {
    const created: string[] = [];
    // Only the queue name is under test: the dispatcher's own code computes it, the clients record it.
    const clients = {
      doc: { send: async () => ({}) },
      sqs: {
        send: async (command: { input: { QueueName?: string } }) => {
          // CreateQueue (the queue-created hint that follows is a SendMessage: not a queue).
          if (command.input.QueueName) created.push(command.input.QueueName);
          return { QueueUrl: `https://sqs.local/${command.input.QueueName}` };
        },
      },
    } as unknown as AwsClients;
    const config = { tables: { control: 'Control' }, queuePrefix: 'Stack-', defaultQueueUrl: 'd' } as Config;
    const dispatcher = new Dispatcher(clients, config);
    const tags = { role: 'web', dc: 'eu', tier: 'gold' };
    const subsets = satisfiedTagSets(tags);
    expect(subsets).toHaveLength(7);
    for (const selector of subsets) await dispatcher.queueFor(selector);
    expect(created).toEqual(subsets.map((s) => tagSetQueueName('Stack-', s)));
    expect(() => satisfiedTagSets({ a: '1', b: '2', c: '3', d: '4', e: '5', f: '6', g: '7' })).toThrow(
      /at most 6 tags/,
    );
  });
});
