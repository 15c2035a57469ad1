/**
 * An IAM-enforcing proxy in front of DynamoDB Local (and moto's SQS), for tests that run a part of Cronplane with the
 * credentials of its role: each request is turned into the IAM authorization requests AWS would evaluate
 * (the action per operation, the table or index ARN, and the DynamoDB condition keys `dynamodb:LeadingKeys`,
 * `dynamodb:Attributes`, `dynamodb:ReturnValues`, `dynamodb:Select`), each is evaluated with
 * `@cloud-copilot/iam-simulate` against the role's identity policy, and a request any of them does not
 * allow is answered as DynamoDB answers it (400 `AccessDeniedException`) without reaching the table.
 *
 * The policy comes from the synthesized CDK template (`rolePolicyFromTemplate`): the statements of every
 * policy attached to the role, with CloudFormation's `Ref`, `Fn::GetAtt`, `Fn::Join`, `Fn::Sub`,
 * `Fn::Select` and `Fn::Split` resolved to the local resources' names and ARNs.
 *
 * What it models (the DynamoDB JSON protocol, `X-Amz-Target: DynamoDB_20120810.<Operation>`):
 *   - GetItem, PutItem, UpdateItem, DeleteItem: `dynamodb:<Operation>` on the table; LeadingKeys = the
 *     item's partition key value; Attributes = the key attributes plus the top-level attributes named by
 *     the Item (PutItem), UpdateExpression / AttributeUpdates, ConditionExpression and ProjectionExpression.
 *   - TransactWriteItems / TransactGetItems: each element separately as PutItem, UpdateItem, DeleteItem,
 *     ConditionCheckItem or GetItem (as IAM does); BatchGetItem / BatchWriteItem: one request per table.
 *   - Query / Scan: on the table or `table/<t>/index/<i>`; a Query's LeadingKeys from its key condition.
 *   - anything else (DescribeTable, ListTables, ...): `dynamodb:<Operation>` on the table or `*`.
 * SQS (the JSON protocol, `X-Amz-Target: AmazonSQS.<Operation>`): `sqs:<Operation>` on the queue's ARN
 * (from `QueueUrl`, or `QueueName` for CreateQueue / GetQueueUrl), `*` for ListQueues.
 * Every request carries `aws:SecureTransport: true` (the SDK talks TLS to AWS), so a policy's
 * deny-insecure-transport statement does not fire. Not modelled: other `aws:` global condition keys,
 * resource policies, session policies.
 */
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import { DescribeTableCommand, type DynamoDBClient, type KeySchemaElement } from '@aws-sdk/client-dynamodb';
import { runSimulation } from '@cloud-copilot/iam-simulate';

export interface PolicyDocument {
  readonly Version: string;
  readonly Statement: readonly Record<string, unknown>[];
}

/** One IAM authorization request derived from a DynamoDB call. */
export interface AuthorizationRequest {
  readonly action: string;
  readonly resource: string;
  readonly context: Record<string, string | string[]>;
}

export interface Decision {
  readonly operation: string;
  readonly requests: readonly AuthorizationRequest[];
  readonly allowed: boolean;
  /** The first request not allowed, and the simulator's verdict for it. */
  readonly denied?: { request: AuthorizationRequest; result: string };
}

// --- the policy from the template -----------------------------------------------------------------

export interface LocalNames {
  readonly region: string;
  readonly accountId: string;
  readonly stackName: string;
  /** logical id → local table name / queue URL / bus name / bucket name */
  readonly tables: Readonly<Record<string, string>>;
  readonly queues?: Readonly<Record<string, string>>;
  readonly buses?: Readonly<Record<string, string>>;
  readonly buckets?: Readonly<Record<string, string>>;
}

export const tableArn = (n: Pick<LocalNames, 'region' | 'accountId'>, table: string) =>
  `arn:aws:dynamodb:${n.region}:${n.accountId}:table/${table}`;

const queueName = (url: string) => url.split('/').at(-1) ?? url;

/** Resolves the intrinsic functions a role policy uses to local names and ARNs. */
export function resolveIntrinsics(value: unknown, names: LocalNames): unknown {
  const ref = (id: string): string => {
    switch (id) {
      case 'AWS::Partition':
        return 'aws';
      case 'AWS::Region':
        return names.region;
      case 'AWS::AccountId':
        return names.accountId;
      case 'AWS::StackName':
        return names.stackName;
      case 'AWS::URLSuffix':
        return 'amazonaws.com';
    }
    return names.tables[id] ?? names.queues?.[id] ?? names.buses?.[id] ?? names.buckets?.[id] ?? id;
  };
  const getAtt = (id: string, attribute: string): string => {
    const table = names.tables[id];
    if (table !== undefined) {
      return attribute === 'StreamArn' ? `${tableArn(names, table)}/stream/local` : tableArn(names, table);
    }
    const queue = names.queues?.[id];
    if (queue !== undefined) {
      return attribute === 'QueueName'
        ? queueName(queue)
        : `arn:aws:sqs:${names.region}:${names.accountId}:${queueName(queue)}`;
    }
    const bus = names.buses?.[id];
    if (bus !== undefined) return `arn:aws:events:${names.region}:${names.accountId}:event-bus/${bus}`;
    const bucket = names.buckets?.[id];
    if (bucket !== undefined) return `arn:aws:s3:::${bucket}`;
    return `arn:aws:unresolved:${names.region}:${names.accountId}:${id}/${attribute}`;
  };
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(walk);
    if (typeof v !== 'object' || v === null) return v;
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o);
    if (keys.length === 1) {
      const [k] = keys as [string];
      const arg = o[k];
      if (k === 'Ref') return ref(arg as string);
      if (k === 'Fn::GetAtt') {
        const [id, attribute] = Array.isArray(arg) ? (arg as string[]) : String(arg).split('.');
        return getAtt(id!, attribute!);
      }
      if (k === 'Fn::Join') {
        const [sep, parts] = arg as [string, unknown[]];
        return (walk(parts) as unknown[]).map(String).join(sep);
      }
      if (k === 'Fn::Select') {
        const [index, list] = arg as [number | string, unknown];
        return (walk(list) as unknown[])[Number(index)];
      }
      if (k === 'Fn::Split') {
        const [sep, text] = arg as [string, unknown];
        return String(walk(text)).split(sep);
      }
      if (k === 'Fn::Sub') {
        const [text, vars] = (Array.isArray(arg) ? arg : [arg, {}]) as [string, Record<string, unknown>];
        return text.replace(/\$\{([^}]+)\}/g, (_m, name: string) => {
          if (Object.hasOwn(vars, name)) return String(walk(vars[name]));
          const dot = name.indexOf('.');
          return dot > 0 && !name.startsWith('AWS::')
            ? getAtt(name.slice(0, dot), name.slice(dot + 1))
            : ref(name);
        });
      }
    }
    return Object.fromEntries(keys.map((key) => [key, walk(o[key])]));
  };
  return walk(value);
}

interface CfnResource {
  Type: string;
  Properties?: Record<string, unknown>;
}

/**
 * The identity policy of role `roleLogicalId` in `template`: the statements of every AWS::IAM::Policy /
 * ManagedPolicy attached to it and of its inline policies, resolved to local names (one document).
 */
export function rolePolicyFromTemplate(
  template: Record<string, unknown>,
  roleLogicalId: string,
  names: LocalNames,
): PolicyDocument {
  const resources = (template.Resources ?? {}) as Record<string, CfnResource>;
  const role = resources[roleLogicalId];
  if (role?.Type !== 'AWS::IAM::Role') throw new Error(`${roleLogicalId} is not an AWS::IAM::Role`);
  const documents: unknown[] = [];
  for (const inline of (role.Properties?.Policies ?? []) as Array<{ PolicyDocument: unknown }>) {
    documents.push(inline.PolicyDocument);
  }
  const managed = new Set(
    ((role.Properties?.ManagedPolicyArns ?? []) as unknown[])
      .map((a) => (a as { Ref?: string }).Ref)
      .filter((r): r is string => r !== undefined),
  );
  for (const [id, r] of Object.entries(resources)) {
    const attached = ((r.Properties?.Roles ?? []) as unknown[]).some(
      (x) => (x as { Ref?: string }).Ref === roleLogicalId,
    );
    if (
      (r.Type === 'AWS::IAM::Policy' || r.Type === 'AWS::IAM::ManagedPolicy') &&
      (attached || managed.has(id))
    ) {
      documents.push(r.Properties?.PolicyDocument);
    }
  }
  const statements = documents.flatMap((d) => {
    const s = (resolveIntrinsics(d, names) as { Statement?: unknown }).Statement ?? [];
    return (Array.isArray(s) ? s : [s]) as Record<string, unknown>[];
  });
  return { Version: '2012-10-17', Statement: statements };
}

/** The logical id of the one AWS::IAM::Role that EC2 may assume (the agents' role). */
export function agentRoleLogicalId(template: Record<string, unknown>): string {
  const resources = (template.Resources ?? {}) as Record<string, CfnResource>;
  const ids = Object.entries(resources)
    .filter(([, r]) => r.Type === 'AWS::IAM::Role')
    .filter(([, r]) =>
      JSON.stringify(r.Properties?.AssumeRolePolicyDocument ?? {}).includes('ec2.amazonaws.com'),
    )
    .map(([id]) => id);
  if (ids.length !== 1)
    throw new Error(`expected one role EC2 may assume, found ${ids.join(', ') || 'none'}`);
  return ids[0]!;
}

// --- requests → authorization requests -------------------------------------------------------------

type AttributeValue = Record<string, unknown>;
type Item = Record<string, AttributeValue>;

export interface TableKeys {
  /** Partition key attribute of the table and of each index (by name). */
  readonly partitionKey: string;
  readonly keyAttributes: readonly string[];
  readonly indexPartitionKeys: Readonly<Record<string, string>>;
}

const KEYWORDS = new Set(['SET', 'REMOVE', 'ADD', 'DELETE', 'AND', 'OR', 'NOT', 'BETWEEN', 'IN']);

/**
 * The top-level attribute names an expression refers to: `#name` placeholders resolved through `names`,
 * bare names; not values (`:v`), functions (`name(`), keywords, nor nested path elements (`a.b` → `a`).
 */
export function expressionAttributes(
  expression: string | undefined,
  names: Record<string, string> = {},
): string[] {
  if (!expression) return [];
  const out = new Set<string>();
  const token = /[#:]?[A-Za-z_][A-Za-z0-9_]*/g;
  for (let m = token.exec(expression); m !== null; m = token.exec(expression)) {
    const t = m[0];
    const before = expression.slice(0, m.index).trimEnd();
    const after = expression.slice(m.index + t.length).trimStart();
    if (t.startsWith(':')) continue;
    if (before.endsWith('.')) continue; // a nested path element
    if (after.startsWith('(')) continue; // a function
    if (!t.startsWith('#') && KEYWORDS.has(t.toUpperCase())) continue;
    out.add(t.startsWith('#') ? (names[t] ?? t) : t);
  }
  return [...out];
}

/** The value of an attribute as IAM compares it (strings and numbers as their text). */
function scalar(v: AttributeValue | undefined): string | undefined {
  if (!v) return undefined;
  const s = v.S ?? v.N ?? v.B;
  return s === undefined ? undefined : String(s);
}

export function authorizationRequests(
  operation: string,
  body: Record<string, unknown>,
  keysOf: (table: string) => TableKeys,
  n: Pick<LocalNames, 'region' | 'accountId'>,
): AuthorizationRequest[] {
  const names = (body.ExpressionAttributeNames ?? {}) as Record<string, string>;
  const withAttributes = (ctx: Record<string, string | string[]>, table: string, attrs: string[]) => {
    if (attrs.length > 0)
      ctx['dynamodb:Attributes'] = [...new Set([...keysOf(table).keyAttributes, ...attrs])];
    return ctx;
  };
  const item = (
    action: string,
    table: string,
    key: Item,
    b: Record<string, unknown>,
  ): AuthorizationRequest => {
    const nm = (b.ExpressionAttributeNames ?? {}) as Record<string, string>;
    const ctx: Record<string, string | string[]> = {};
    const leading = scalar(key[keysOf(table).partitionKey]);
    if (leading !== undefined) ctx['dynamodb:LeadingKeys'] = [leading];
    const attrs = [
      ...(action === 'dynamodb:PutItem' ? Object.keys(key) : []),
      ...expressionAttributes(b.UpdateExpression as string | undefined, nm),
      ...Object.keys((b.AttributeUpdates ?? {}) as object),
      ...expressionAttributes(b.ConditionExpression as string | undefined, nm),
      ...expressionAttributes(b.ProjectionExpression as string | undefined, nm),
      ...((b.AttributesToGet ?? []) as string[]),
    ];
    withAttributes(ctx, table, attrs);
    if (typeof b.ReturnValues === 'string') ctx['dynamodb:ReturnValues'] = b.ReturnValues;
    return { action, resource: tableArn(n, table), context: ctx };
  };
  switch (operation) {
    case 'GetItem':
    case 'DeleteItem':
    case 'UpdateItem':
      return [item(`dynamodb:${operation}`, body.TableName as string, body.Key as Item, body)];
    case 'PutItem':
      return [item('dynamodb:PutItem', body.TableName as string, body.Item as Item, body)];
    case 'TransactWriteItems':
      return (body.TransactItems as Array<Record<string, Record<string, unknown>>>).map((t) => {
        const [kind, spec] = Object.entries(t)[0]!;
        const action = {
          Put: 'dynamodb:PutItem',
          Update: 'dynamodb:UpdateItem',
          Delete: 'dynamodb:DeleteItem',
          ConditionCheck: 'dynamodb:ConditionCheckItem',
        }[kind];
        if (!action) throw new Error(`unknown transaction element ${kind}`);
        return item(action, spec.TableName as string, (spec.Key ?? spec.Item) as Item, spec);
      });
    case 'TransactGetItems':
      return (body.TransactItems as Array<{ Get: Record<string, unknown> }>).map((t) =>
        item('dynamodb:GetItem', t.Get.TableName as string, t.Get.Key as Item, t.Get),
      );
    case 'BatchGetItem':
      return Object.entries(
        body.RequestItems as Record<string, { Keys: Item[] } & Record<string, unknown>>,
      ).map(([table, spec]) => {
        const ctx: Record<string, string | string[]> = {
          'dynamodb:LeadingKeys': spec.Keys.map((k) => scalar(k[keysOf(table).partitionKey]) ?? ''),
        };
        withAttributes(ctx, table, [
          ...expressionAttributes(
            spec.ProjectionExpression as string | undefined,
            (spec.ExpressionAttributeNames ?? {}) as Record<string, string>,
          ),
          ...((spec.AttributesToGet ?? []) as string[]),
        ]);
        return { action: 'dynamodb:BatchGetItem', resource: tableArn(n, table), context: ctx };
      });
    case 'BatchWriteItem':
      return Object.entries(
        body.RequestItems as Record<string, Array<Record<string, { Item?: Item; Key?: Item }>>>,
      ).map(([table, writes]) => {
        const items = writes.map((w) => w.PutRequest?.Item ?? w.DeleteRequest?.Key ?? {});
        const ctx: Record<string, string | string[]> = {
          'dynamodb:LeadingKeys': items.map((i) => scalar(i[keysOf(table).partitionKey]) ?? ''),
        };
        withAttributes(
          ctx,
          table,
          items.flatMap((i) => Object.keys(i)),
        );
        return { action: 'dynamodb:BatchWriteItem', resource: tableArn(n, table), context: ctx };
      });
    case 'Query':
    case 'Scan': {
      const table = body.TableName as string;
      const index = body.IndexName as string | undefined;
      const resource = index ? `${tableArn(n, table)}/index/${index}` : tableArn(n, table);
      const ctx: Record<string, string | string[]> = {};
      if (operation === 'Query') {
        const keys = keysOf(table);
        const pk = index ? keys.indexPartitionKeys[index] : keys.partitionKey;
        const values = (body.ExpressionAttributeValues ?? {}) as Item;
        const condition = (body.KeyConditionExpression as string | undefined) ?? '';
        const m = /([#A-Za-z_][A-Za-z0-9_]*)\s*=\s*(:[A-Za-z0-9_]+)/g;
        for (let x = m.exec(condition); x !== null; x = m.exec(condition)) {
          const attr = x[1]!.startsWith('#') ? names[x[1]!] : x[1];
          const v = scalar(values[x[2]!]);
          if (attr === pk && v !== undefined) ctx['dynamodb:LeadingKeys'] = [v];
        }
      }
      withAttributes(
        ctx,
        table,
        expressionAttributes(body.ProjectionExpression as string | undefined, names),
      );
      if (typeof body.Select === 'string') ctx['dynamodb:Select'] = body.Select;
      return [{ action: `dynamodb:${operation}`, resource, context: ctx }];
    }
    default: {
      const table = body.TableName as string | undefined;
      return [{ action: `dynamodb:${operation}`, resource: table ? tableArn(n, table) : '*', context: {} }];
    }
  }
}

/** The authorization requests of one SQS call (a `…Batch` operation is its single action in IAM). */
export function sqsAuthorizationRequests(
  operation: string,
  body: Record<string, unknown>,
  n: Pick<LocalNames, 'region' | 'accountId'>,
): AuthorizationRequest[] {
  const name =
    typeof body.QueueUrl === 'string'
      ? queueName(body.QueueUrl)
      : typeof body.QueueName === 'string'
        ? body.QueueName
        : '';
  const resource = name ? `arn:aws:sqs:${n.region}:${n.accountId}:${name}` : '*';
  return [{ action: `sqs:${operation.replace(/Batch$/, '')}`, resource, context: {} }];
}

// --- evaluation ------------------------------------------------------------------------------------

/** 'Allowed', 'ImplicitlyDenied', 'ExplicitlyDenied', or `error: …` when the simulator refused the input. */
export async function evaluate(
  policy: PolicyDocument,
  principal: string,
  accountId: string,
  request: AuthorizationRequest,
): Promise<string> {
  const result = await runSimulation(
    {
      identityPolicies: [{ name: 'role', policy: policy as never }],
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      request: {
        action: request.action,
        principal,
        resource: { accountId, resource: request.resource },
        contextVariables: { 'aws:SecureTransport': 'true', ...request.context },
      },
    },
    {},
  );
  if (result.resultType === 'error') return `error: ${JSON.stringify(result.errors)}`;
  return result.overallResult;
}

// --- the proxy ------------------------------------------------------------------------------------

export interface IamProxyOptions {
  /** DynamoDB Local's endpoint (or moto's, for SQS). */
  readonly target: string;
  readonly policy: PolicyDocument;
  /** The role's ARN (the request's principal). */
  readonly principal: string;
  readonly region: string;
  readonly accountId: string;
  /** A client of the target, to read the tables' key schemas. */
  readonly dynamodb: DynamoDBClient;
}

export interface IamProxy {
  readonly url: string;
  /** Every request's decision, in arrival order. */
  readonly decisions: Decision[];
  close(): Promise<void>;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function keysFrom(schema: readonly KeySchemaElement[] | undefined): string[] {
  return (schema ?? []).map((k) => k.AttributeName!);
}

export async function startIamProxy(options: IamProxyOptions): Promise<IamProxy> {
  const decisions: Decision[] = [];
  const schemas = new Map<string, TableKeys>();
  const loadKeys = async (table: string) => {
    if (schemas.has(table)) return;
    const t = (await options.dynamodb.send(new DescribeTableCommand({ TableName: table }))).Table!;
    const indexes = [...(t.GlobalSecondaryIndexes ?? []), ...(t.LocalSecondaryIndexes ?? [])];
    schemas.set(table, {
      partitionKey: keysFrom(t.KeySchema)[0]!,
      keyAttributes: [
        ...new Set([...keysFrom(t.KeySchema), ...indexes.flatMap((i) => keysFrom(i.KeySchema))]),
      ],
      indexPartitionKeys: Object.fromEntries(indexes.map((i) => [i.IndexName!, keysFrom(i.KeySchema)[0]!])),
    });
  };
  const tablesIn = (body: Record<string, unknown>): string[] => {
    const out = new Set<string>();
    if (typeof body.TableName === 'string') out.add(body.TableName);
    for (const t of Object.keys((body.RequestItems ?? {}) as object)) out.add(t);
    for (const x of (body.TransactItems ?? []) as Array<Record<string, { TableName?: string }>>) {
      const spec = Object.values(x)[0];
      if (spec?.TableName) out.add(spec.TableName);
    }
    return [...out];
  };
  const target = new URL(options.target);

  const server: Server = createServer(async (req, res) => {
    const raw = await readBody(req);
    const amzTarget = String(req.headers['x-amz-target'] ?? '');
    const sqs = amzTarget.startsWith('AmazonSQS.');
    const operation = amzTarget.replace(/^DynamoDB_\d+\.|^AmazonSQS\./, '');
    let decision: Decision;
    try {
      const body = (raw.length > 0 ? JSON.parse(raw.toString('utf8')) : {}) as Record<string, unknown>;
      let requests: AuthorizationRequest[];
      if (sqs) {
        requests = sqsAuthorizationRequests(operation, body, options);
      } else {
        const tables = operation === 'DescribeTable' || operation === 'ListTables' ? [] : tablesIn(body);
        await Promise.all(tables.map(loadKeys));
        requests = authorizationRequests(operation, body, (t) => schemas.get(t)!, options);
      }
      decision = { operation, requests, allowed: true };
      for (const request of requests) {
        const result = await evaluate(options.policy, options.principal, options.accountId, request);
        if (result !== 'Allowed') {
          decision = { operation, requests, allowed: false, denied: { request, result } };
          break;
        }
      }
    } catch (error) {
      decision = {
        operation,
        requests: [],
        allowed: false,
        denied: {
          request: { action: `${sqs ? 'sqs' : 'dynamodb'}:${operation}`, resource: '?', context: {} },
          result: String(error),
        },
      };
    }
    decisions.push(decision);
    if (!decision.allowed) {
      const d = decision.denied!;
      const headers = {
        'Content-Type': 'application/x-amz-json-1.0',
        // SQS's JSON protocol carries its query-protocol error code in this header.
        ...(sqs ? { 'x-amzn-query-error': 'AccessDenied;Sender' } : {}),
      };
      res.writeHead(400, headers).end(
        JSON.stringify({
          __type: sqs ? 'com.amazonaws.sqs#AccessDenied' : 'com.amazon.coral.service#AccessDeniedException',
          Message: `User: ${options.principal} is not authorized to perform: ${d.request.action} on resource: ${d.request.resource} (${d.result})`,
        }),
      );
      return;
    }
    const headers = { ...req.headers, host: target.host, 'content-length': String(raw.length) };
    const upstream = httpRequest(
      { hostname: target.hostname, port: target.port, path: req.url, method: req.method, headers },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('error', (error) => {
      res.writeHead(502).end(String(error));
    });
    upstream.end(raw);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    decisions,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
