import { fileURLToPath } from 'node:url';
import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Architecture, Runtime } from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import type { RuntimeBindings } from './bindings.ts';
import type { RoleName } from './permissions.ts';

/** The repository root (infra/lib/../..): the bundler's project root and the base of handler entries. */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface HandlerFunctionProps {
  /** handler module relative to the repository root, e.g. `functions/api/handler.ts` (exports `handler`) */
  readonly entry: string;
  /** tables and queues: environment variables and IAM grants */
  readonly bindings: RuntimeBindings;
  /** whose entry of the permission table (infra/lib/permissions.ts) the function's role gets */
  readonly role: RoleName;
  readonly description?: string;
  /** Default: 30 s */
  readonly timeout?: Duration;
  /** Default: 512 MB */
  readonly memorySize?: number;
  /** extra environment variables */
  readonly environment?: Record<string, string>;
  /** Default: one month */
  readonly logRetention?: RetentionDays;
}

/**
 * One Lambda entry point of functions/: Node.js 22 on arm64, bundled by esbuild (locally installed, no
 * Docker) as an ES module, with the CRONPLANE_* environment and its own role's grants.
 */
export class HandlerFunction extends Construct {
  readonly function: NodejsFunction;

  constructor(scope: Construct, id: string, props: HandlerFunctionProps) {
    super(scope, id);
    const logGroup = new LogGroup(this, 'Logs', {
      retention: props.logRetention ?? RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    // Its own role with its own log group only (not the managed AWSLambdaBasicExecutionRole, which may
    // write to every log group of the account); the permission table adds the rest.
    const role = new Role(this, 'ServiceRole', {
      assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
      description: `Cronplane ${props.role} function`,
    });
    role.addToPrincipalPolicy(
      new PolicyStatement({
        sid: 'OwnLogs',
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [logGroup.logGroupArn],
      }),
    );
    this.function = new NodejsFunction(this, 'Function', {
      role,
      entry: fileURLToPath(new URL(props.entry, `file://${REPO_ROOT}`)),
      handler: 'handler',
      projectRoot: REPO_ROOT,
      depsLockFilePath: fileURLToPath(new URL('package-lock.json', `file://${REPO_ROOT}`)),
      runtime: Runtime.NODEJS_22_X,
      architecture: Architecture.ARM_64,
      memorySize: props.memorySize ?? 512,
      timeout: props.timeout ?? Duration.seconds(30),
      description: props.description,
      logGroup,
      environment: {
        NODE_OPTIONS: '--enable-source-maps',
        // The `stack` dimension of the metrics (shared/metrics/metrics.ts; the dashboard asks for it).
        CRONPLANE_STACK: Stack.of(this).stackName,
        ...props.bindings.environment,
        ...props.environment,
      },
      bundling: {
        format: OutputFormat.ESM,
        target: 'node22',
        mainFields: ['module', 'main'],
        // Bundled CommonJS dependencies call require(); ES modules have none.
        banner:
          "import { createRequire as __cronplaneCreateRequire } from 'node:module'; const require = __cronplaneCreateRequire(import.meta.url);",
        // The pinned AWS SDK goes into the bundle instead of whatever version the Lambda runtime ships.
        externalModules: [],
        minify: true,
        sourceMap: true,
        sourcesContent: false,
      },
    });
    props.bindings.grant(this.function, this, props.role);
  }
}
