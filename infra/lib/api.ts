import { Aws, Duration, RemovalPolicy } from 'aws-cdk-lib';
import {
  AccessLogFormat,
  AuthorizationType,
  EndpointType,
  LambdaRestApi,
  LogGroupLogDestination,
  MethodLoggingLevel,
} from 'aws-cdk-lib/aws-apigateway';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import type { RuntimeBindings } from './bindings.ts';
import { HandlerFunction } from './function.ts';

export interface ApiProps {
  readonly bindings: RuntimeBindings;
  /** Require IAM (SigV4) signed requests. Default: true. Turn off only behind another guard. */
  readonly iamAuth?: boolean;
  /** Default: 'prod' (not 'v1', which would read /v1/v1/jobs) */
  readonly stageName?: string;
  /**
   * API Gateway execution logging (CloudWatch) at this level. Default: off, because it needs the
   * account-wide API Gateway CloudWatch role (AWS::ApiGateway::Account), which one stack should not
   * own; access logs are always on.
   */
  readonly executionLogging?: 'ERROR' | 'INFO';
  /** Retention of the access logs. Default: one year (an audit trail). */
  readonly accessLogRetention?: RetentionDays;
}

/** The REST API: API Gateway proxies every route to the `api` function (Dkron's /v1 and extensions). */
export class Api extends Construct {
  readonly handler: NodejsFunction;
  readonly restApi: LambdaRestApi;
  /** one JSON line per request: caller identity (IAM user ARN, access key), method, path, status */
  readonly accessLogs: LogGroup;

  constructor(scope: Construct, id: string, props: ApiProps) {
    super(scope, id);
    this.handler = new HandlerFunction(this, 'Handler', {
      entry: 'functions/api/handler.ts',
      bindings: props.bindings,
      role: 'api',
      // The worker's allow-list, so that a job naming a target outside it is a 400 when it is written.
      environment: props.bindings.workerEnvironment,
      description: 'Cronplane REST API (Dkron /v1 compatible)',
      timeout: Duration.seconds(29),
    }).function;
    this.accessLogs = new LogGroup(this, 'AccessLogs', {
      retention: props.accessLogRetention ?? RetentionDays.ONE_YEAR,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.restApi = new LambdaRestApi(this, 'RestApi', {
      handler: this.handler,
      proxy: true,
      // API Gateway's metrics are per API name: one per stack, so that the 5XX alarm sees only this API.
      restApiName: `${Aws.STACK_NAME}-api`,
      description: 'Cronplane REST API (Dkron /v1 compatible)',
      endpointTypes: [EndpointType.REGIONAL],
      cloudWatchRole: false,
      // Delivered base64-encoded, byte for byte (POST /v1/restore's upload); local/http-server.ts does the same.
      binaryMediaTypes: ['multipart/form-data'],
      deployOptions: {
        stageName: props.stageName ?? 'prod',
        accessLogDestination: new LogGroupLogDestination(this.accessLogs),
        // Who called (the SigV4 identity API Gateway verified), what, and the answer.
        accessLogFormat: AccessLogFormat.custom(
          JSON.stringify({
            requestId: '$context.requestId',
            time: '$context.requestTimeEpoch',
            ip: '$context.identity.sourceIp',
            caller: '$context.identity.caller',
            user: '$context.identity.user',
            userArn: '$context.identity.userArn',
            accessKey: '$context.identity.accessKey',
            accountId: '$context.identity.accountId',
            method: '$context.httpMethod',
            path: '$context.path',
            status: '$context.status',
            length: '$context.responseLength',
            integrationError: '$context.integration.error',
          }),
        ),
        ...(props.executionLogging
          ? {
              loggingLevel:
                props.executionLogging === 'INFO' ? MethodLoggingLevel.INFO : MethodLoggingLevel.ERROR,
              dataTraceEnabled: false,
            }
          : {}),
      },
      defaultMethodOptions: {
        authorizationType: (props.iamAuth ?? true) ? AuthorizationType.IAM : AuthorizationType.NONE,
      },
    });
  }

  get url(): string {
    return this.restApi.url;
  }
}
