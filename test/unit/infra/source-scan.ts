/**
 * Which AWS actions each deployable's code can issue, read from the source (TypeScript's parser, no type
 * checking), so that the permission table (infra/lib/permissions.ts) can be checked against the code.
 *
 * The method, in three steps:
 * 1. Closure: the files a deployable reaches, following relative `import` / `export … from` and dynamic
 *    `import('…')` edges from its entry files (`import type` is skipped: it emits nothing).
 * 2. The five stores of `shared/context.ts` (JobsStore, ExecutionsStore, ControlStore, AgentsStore,
 *    Dispatcher) are every deployable's context, so their files are in every closure; they are attributed
 *    per method instead: a method is reached when a file of the closure calls `<receiver>.<method>(` with
 *    the receiver named as the Context names it (`jobs`, `executions`, `control`, `agents`, `dispatch`);
 *    inside a store, `this.<method>(` reaches that method too. Each reached method contributes the
 *    requests it builds: `new XxxCommand(…)` (with its `TableName`, or the store's own table), the items
 *    (`Put` / `Update` / `Delete` / `ConditionCheck`) of its transactions with their own tables, and the
 *    helpers of shared/aws (`allItems` query/scan, `batchGet`, `updateItem`, a ReadBatch's
 *    `batch.get(<table>, keys)`).
 * 3. Every other file of the closure that builds a command contributes all its commands (file level).
 *
 * It over-approximates (a store method named in a file is taken as called; a file's commands are taken
 * as issued; outside the stores, a command whose table is a variable addresses every table the file
 * names as `tables.<name>`), never under-approximates for the patterns above; a request whose table it
 * cannot tell at all is reported as an error rather than guessed.
 */
import { readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { REPO_ROOT } from '../../../infra/lib/function.ts';

export type TableRef = 'jobs' | 'executions' | 'agents' | 'control';

/** One IAM request the code makes: the action and a symbolic resource (see permissions.ts `ResourceRef`). */
export interface Requirement {
  readonly action: string;
  readonly resource: string;
  /** where it comes from: `file#Class.method` or `file` */
  readonly source: string;
}

const STORES: Record<string, { file: string; className: string }> = {
  jobs: { file: 'shared/jobs/jobs-store.ts', className: 'JobsStore' },
  executions: { file: 'shared/executions/executions-store.ts', className: 'ExecutionsStore' },
  control: { file: 'shared/control/control-store.ts', className: 'ControlStore' },
  agents: { file: 'shared/agents/agents-store.ts', className: 'AgentsStore' },
  dispatch: { file: 'shared/dispatch/dispatch.ts', className: 'Dispatcher' },
};
/** Helpers whose requests are attributed to their callers (the table is the caller's argument). */
const HELPER_FILES = new Set([
  'shared/aws/pages.ts',
  'shared/aws/write-each.ts',
  'shared/aws/update-item.ts',
]);

const DYNAMO_ACTIONS: Record<string, string> = {
  GetCommand: 'dynamodb:GetItem',
  GetItemCommand: 'dynamodb:GetItem',
  PutCommand: 'dynamodb:PutItem',
  UpdateCommand: 'dynamodb:UpdateItem',
  DeleteCommand: 'dynamodb:DeleteItem',
  QueryCommand: 'dynamodb:Query',
  ScanCommand: 'dynamodb:Scan',
  BatchGetCommand: 'dynamodb:BatchGetItem',
  BatchWriteCommand: 'dynamodb:BatchWriteItem',
};
const TRANSACT_ITEM_ACTIONS: Record<string, string> = {
  Put: 'dynamodb:PutItem',
  Update: 'dynamodb:UpdateItem',
  Delete: 'dynamodb:DeleteItem',
  ConditionCheck: 'dynamodb:ConditionCheckItem',
};
/** Commands of the other services: action, and the resource they address unless the file says otherwise. */
const OTHER_ACTIONS: Record<string, { action: string; resource: string }> = {
  ReceiveMessageCommand: { action: 'sqs:ReceiveMessage', resource: 'dispatchQueues' },
  DeleteMessageCommand: { action: 'sqs:DeleteMessage', resource: 'dispatchQueues' },
  DeleteMessageBatchCommand: { action: 'sqs:DeleteMessage', resource: 'dispatchQueues' },
  ChangeMessageVisibilityCommand: { action: 'sqs:ChangeMessageVisibility', resource: 'dispatchQueues' },
  SendMessageCommand: { action: 'sqs:SendMessage', resource: 'dispatchQueues' },
  SendMessageBatchCommand: { action: 'sqs:SendMessage', resource: 'dispatchQueues' },
  CreateQueueCommand: { action: 'sqs:CreateQueue', resource: 'tagSetQueues' },
  GetQueueUrlCommand: { action: 'sqs:GetQueueUrl', resource: 'dispatchQueues' },
  GetQueueAttributesCommand: { action: 'sqs:GetQueueAttributes', resource: 'dispatchQueues' },
  SetQueueAttributesCommand: { action: 'sqs:SetQueueAttributes', resource: 'dispatchQueues' },
  PurgeQueueCommand: { action: 'sqs:PurgeQueue', resource: 'dispatchQueues' },
  PutEventsCommand: { action: 'events:PutEvents', resource: 'eventBus' },
  PutObjectCommand: { action: 's3:PutObject', resource: 'outputObjects' },
  PutLogEventsCommand: { action: 'logs:PutLogEvents', resource: 'processorLogs' },
  CreateLogGroupCommand: { action: 'logs:CreateLogGroup', resource: 'processorLogs' },
  CreateLogStreamCommand: { action: 'logs:CreateLogStream', resource: 'processorLogs' },
  GetObjectCommand: { action: 's3:GetObject', resource: 'outputObjects' },
  GetParameterCommand: { action: 'ssm:GetParameter', resource: 'secrets' },
  GetParametersCommand: { action: 'ssm:GetParameters', resource: 'secrets' },
  InvokeCommand: { action: 'lambda:InvokeFunction', resource: 'workerTargets.lambda' },
  GetRecordsCommand: { action: 'dynamodb:GetRecords', resource: 'executions/stream' },
  GetShardIteratorCommand: { action: 'dynamodb:GetShardIterator', resource: 'executions/stream' },
  DescribeStreamCommand: { action: 'dynamodb:DescribeStream', resource: 'executions/stream' },
};
/** Files whose commands address something else than the default resource of the command. */
const FILE_RESOURCES: Record<string, Record<string, string>> = {
  'shared/executors/aws.ts': {
    'sqs:SendMessage': 'workerTargets.sqs',
    'events:PutEvents': 'workerTargets.events',
  },
  'shared/processors/s3.ts': { 's3:PutObject': 'processorObjects' },
  'shared/scheduler/shard-ticks.ts': { 'sqs:SendMessage': 'shardTickQueue' },
};

const sources = new Map<string, ts.SourceFile>();
function parse(file: string): ts.SourceFile {
  let sf = sources.get(file);
  if (!sf) {
    sf = ts.createSourceFile(file, readFileSync(join(REPO_ROOT, file), 'utf8'), ts.ScriptTarget.Latest, true);
    sources.set(file, sf);
  }
  return sf;
}

function walk(node: ts.Node, visit: (n: ts.Node) => void): void {
  visit(node);
  node.forEachChild((child) => walk(child, visit));
}

/** Relative imports (static, re-exports and dynamic) of a file that emit code. */
function importsOf(file: string): string[] {
  const out: string[] = [];
  const add = (spec: string) => {
    if (spec.startsWith('.')) out.push(relative(REPO_ROOT, resolve(REPO_ROOT, dirname(file), spec)));
  };
  walk(parse(file), (n) => {
    if (ts.isImportDeclaration(n) && ts.isStringLiteral(n.moduleSpecifier)) {
      if (!n.importClause?.isTypeOnly) add(n.moduleSpecifier.text);
    } else if (ts.isExportDeclaration(n) && n.moduleSpecifier && ts.isStringLiteral(n.moduleSpecifier)) {
      if (!n.isTypeOnly) add(n.moduleSpecifier.text);
    } else if (
      ts.isCallExpression(n) &&
      n.expression.kind === ts.SyntaxKind.ImportKeyword &&
      n.arguments[0] &&
      ts.isStringLiteral(n.arguments[0])
    ) {
      add(n.arguments[0].text);
    }
  });
  return out;
}

export function closureOf(entries: readonly string[]): string[] {
  const seen = new Set<string>();
  const stack = [...entries];
  while (stack.length > 0) {
    const file = stack.pop() as string;
    if (seen.has(file) || !file.endsWith('.ts')) continue;
    seen.add(file);
    stack.push(...importsOf(file));
  }
  return [...seen].sort();
}

interface ScanErrors {
  errors: string[];
}

/** The symbolic table of an expression like `this.table`, `this.config.tables.jobs`, `config.tables.x`. */
function tableOf(expr: ts.Expression | undefined, ownTable: TableRef | undefined): TableRef | undefined {
  if (!expr) return undefined;
  const text = expr.getText().replace(/\s/g, '');
  if (text === 'this.table' && ownTable) return ownTable;
  const m = /tables\.(jobs|executions|agents|control)$/.exec(text);
  return m ? (m[1] as TableRef) : undefined;
}

function property(obj: ts.Node | undefined, name: string): ts.Expression | undefined {
  if (!obj || !ts.isObjectLiteralExpression(obj)) return undefined;
  for (const p of obj.properties) {
    if (ts.isPropertyAssignment(p) && p.name.getText() === name) return p.initializer;
    if (ts.isShorthandPropertyAssignment(p) && p.name.getText() === name) return p.name;
  }
  return undefined;
}

interface ClassInfo {
  readonly file: string;
  readonly name: string;
  readonly table: TableRef | undefined;
  readonly methods: Map<string, ts.Node>;
}

function classInfo(file: string, className: string): ClassInfo {
  let found: ClassInfo | undefined;
  walk(parse(file), (n) => {
    if (!ts.isClassDeclaration(n) || n.name?.text !== className) return;
    const methods = new Map<string, ts.Node>();
    let table: TableRef | undefined;
    for (const member of n.members) {
      const name = member.name?.getText();
      if (!name) continue;
      if (ts.isGetAccessorDeclaration(member) && name === 'table') {
        walk(member, (x) => {
          if (ts.isReturnStatement(x)) table = tableOf(x.expression, undefined);
        });
      }
      if (ts.isMethodDeclaration(member) || ts.isGetAccessorDeclaration(member)) methods.set(name, member);
    }
    found = { file, name: className, table, methods };
  });
  if (!found) throw new Error(`${file}: class ${className} not found`);
  return found;
}

/** The object literal a `this.m(...)` call returns (its first `return {...}`), for item builders. */
function returnedObject(cls: ClassInfo, call: ts.Expression): ts.Node | undefined {
  if (!ts.isCallExpression(call)) return call;
  const callee = call.expression;
  if (!ts.isPropertyAccessExpression(callee) || callee.expression.kind !== ts.SyntaxKind.ThisKeyword) return;
  const method = cls.methods.get(callee.name.text);
  let obj: ts.Node | undefined;
  if (method)
    walk(method, (x) => {
      if (!obj && ts.isReturnStatement(x) && x.expression) obj = x.expression;
    });
  return obj;
}

/** The requests built inside one node (a method or a whole file). */
function requestsIn(
  node: ts.Node,
  cls: ClassInfo | undefined,
  file: string,
  source: string,
  out: Requirement[],
  errs: ScanErrors,
): void {
  const own = cls?.table;
  const fileResources = FILE_RESOURCES[file] ?? {};
  // A table passed through a variable (`TableName` of a helper's parameter): every table the file
  // names as `tables.<name>` is taken as addressed.
  const namedInFile = [
    ...new Set(
      [...node.getSourceFile().text.matchAll(/tables\.(jobs|executions|agents|control)\b/g)].map(
        (m) => m[1] as TableRef,
      ),
    ),
  ];
  const dynamo = (action: string, tableExpr: ts.Expression | undefined, index: boolean, where: ts.Node) => {
    const table = tableOf(tableExpr, own);
    if (!table && !cls && namedInFile.length > 0) {
      for (const t of namedInFile) out.push({ action, resource: index ? `${t}/index` : t, source });
      return;
    }
    if (!table) {
      errs.errors.push(
        `${source}: ${action} on a table the scan cannot tell (${where.getText().slice(0, 80)})`,
      );
      return;
    }
    out.push({ action, resource: index ? `${table}/index` : table, source });
  };
  walk(node, (n) => {
    // A transaction item (`{ Put: {...} }`, `{ ConditionCheck: this.check() }`), wherever it is built:
    // the item builders of a transaction are methods of the same store, reached through `this.m(`.
    if (ts.isPropertyAssignment(n) && TRANSACT_ITEM_ACTIONS[n.name.getText()]) {
      const obj = cls ? returnedObject(cls, n.initializer) : n.initializer;
      dynamo(TRANSACT_ITEM_ACTIONS[n.name.getText()] as string, property(obj, 'TableName'), false, n);
    }
    if (
      ts.isNewExpression(n) &&
      ts.isIdentifier(n.expression) &&
      n.expression.text.endsWith('Command') &&
      n.expression.text !== 'Command' // commander's
    ) {
      const name = n.expression.text;
      const arg = n.arguments?.[0];
      if (name === 'TransactWriteCommand') {
        // no IAM action of its own: each item is authorized as its Put/Update/Delete/ConditionCheck
      } else if (DYNAMO_ACTIONS[name]) {
        const obj = cls && arg ? returnedObject(cls, arg) : arg;
        let tableExpr = property(obj, 'TableName');
        if (!tableExpr && (name === 'BatchWriteCommand' || name === 'BatchGetCommand')) {
          const items = property(obj, 'RequestItems');
          // `RequestItems: { [this.table]: ... }`, or a variable built so in the same method
          walk(items && ts.isObjectLiteralExpression(items) ? items : node, (x) => {
            if (!tableExpr && ts.isComputedPropertyName(x)) tableExpr = x.expression;
          });
        }
        dynamo(DYNAMO_ACTIONS[name] as string, tableExpr, property(obj, 'IndexName') !== undefined, n);
      } else if (OTHER_ACTIONS[name]) {
        const { action, resource } = OTHER_ACTIONS[name] as { action: string; resource: string };
        out.push({ action, resource: fileResources[action] ?? resource, source });
      } else {
        errs.errors.push(
          `${source}: ${name} is not in the scan's command table (test/unit/infra/source-scan.ts)`,
        );
      }
    } else if (ts.isCallExpression(n) && ts.isIdentifier(n.expression)) {
      const helper = n.expression.text;
      if (helper === 'allItems') {
        const input = n.arguments[1];
        const kind = property(input, 'kind')?.getText().replace(/['"]/g, '');
        const action = kind === 'scan' ? 'dynamodb:Scan' : 'dynamodb:Query';
        dynamo(action, property(input, 'TableName'), property(input, 'IndexName') !== undefined, n);
      } else if (helper === 'batchGet') {
        dynamo('dynamodb:BatchGetItem', n.arguments[1], false, n);
      } else if (helper === 'updateItem') {
        // shared/aws/update-item.ts: `updateItem(clients, { TableName, … })` or `(clients, this.item(…))`
        const input = n.arguments[1];
        const obj = cls && input ? returnedObject(cls, input) : input;
        dynamo('dynamodb:UpdateItem', property(obj, 'TableName'), false, n);
      }
    } else if (
      // A read asked of a ReadBatch (shared/aws/read-batch.ts): `batch.get(<table>, keys)`.
      ts.isCallExpression(n) &&
      ts.isPropertyAccessExpression(n.expression) &&
      n.expression.name.text === 'get' &&
      n.expression.expression.getText() === 'batch' &&
      n.arguments.length === 2
    ) {
      dynamo('dynamodb:BatchGetItem', n.arguments[0], false, n);
    }
  });
}

/** The methods of a store reached from `names`, following `this.m(` calls. */
function methodClosure(cls: ClassInfo, names: Iterable<string>): Set<string> {
  const seen = new Set<string>();
  const stack = [...names];
  while (stack.length > 0) {
    const name = stack.pop() as string;
    if (seen.has(name) || !cls.methods.has(name)) continue;
    seen.add(name);
    walk(cls.methods.get(name) as ts.Node, (x) => {
      if (
        ts.isPropertyAccessExpression(x) &&
        x.expression.kind === ts.SyntaxKind.ThisKeyword &&
        cls.methods.has(x.name.text)
      ) {
        stack.push(x.name.text);
      }
    });
  }
  return seen;
}

export interface ScanResult {
  readonly files: string[];
  /** `Class.method` reached per store */
  readonly storeMethods: string[];
  readonly requirements: Requirement[];
  readonly errors: string[];
}

/** The requests a deployable (its entry files) can issue. */
export function scanDeployable(entries: readonly string[]): ScanResult {
  const files = closureOf(entries);
  const errs: ScanErrors = { errors: [] };
  const requirements: Requirement[] = [];
  const storeFiles = new Set(Object.values(STORES).map((s) => s.file));
  const calls = new Map<string, Set<string>>();
  const receiver = /\b(jobs|executions|control|agents|dispatch)\s*\.\s*([A-Za-z]\w*)\s*\(/g;
  for (const file of files) {
    const text = parse(file).text;
    for (const m of text.matchAll(receiver)) {
      const set = calls.get(m[1] as string) ?? new Set<string>();
      set.add(m[2] as string);
      calls.set(m[1] as string, set);
    }
  }
  const storeMethods: string[] = [];
  for (const [key, store] of Object.entries(STORES)) {
    if (!files.includes(store.file)) continue;
    const cls = classInfo(store.file, store.className);
    for (const method of [...methodClosure(cls, calls.get(key) ?? [])].sort()) {
      storeMethods.push(`${store.className}.${method}`);
      const source = `${store.file}#${store.className}.${method}`;
      requestsIn(cls.methods.get(method) as ts.Node, cls, store.file, source, requirements, errs);
    }
  }
  for (const file of files) {
    if (storeFiles.has(file) || HELPER_FILES.has(file)) continue;
    requestsIn(parse(file), undefined, file, file, requirements, errs);
  }
  return { files, storeMethods, requirements, errors: errs.errors };
}

/** The store files must hold commands only inside their store classes, or the scan would miss them. */
export function commandsOutsideStoreClasses(): string[] {
  const out: string[] = [];
  for (const store of Object.values(STORES)) {
    const sf = parse(store.file);
    walk(sf, (n) => {
      if (ts.isNewExpression(n) && n.expression.getText().endsWith('Command')) {
        let p: ts.Node | undefined = n.parent;
        while (p && !(ts.isClassDeclaration(p) && p.name?.text === store.className)) p = p.parent;
        if (!p) out.push(`${store.file}: ${n.getText().slice(0, 60)}`);
      }
    });
  }
  return out;
}
