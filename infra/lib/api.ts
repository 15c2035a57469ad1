import { Aws, Duration } from 'aws-cdk-lib';
import { AuthorizationType, EndpointType, LambdaRestApi } from 'aws-cdk-lib/aws-apigateway';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import { Construct } from 'constructs';
import type { RuntimeBindings } from './bindings.ts';
import { HandlerFunction } from './function.ts';

export interface ApiProps {
  readonly bindings: RuntimeBindings;
  /** Require IAM (SigV4) signed requests. Default: true. Turn off only behind another guard. */
  readonly iamAuth?: boolean;
  /** Default: 'prod' (not 'v1', which would read /v1/v1/jobs) */
  readonly stageName?: string;
}

/** The REST API: API Gateway proxies every route to the `api` function (Dkron's /v1 and extensions). */
export class Api extends Construct {
  readonly handler: NodejsFunction;
  readonly restApi: LambdaRestApi;

  constructor(scope: Construct, id: string, props: ApiProps) {
    super(scope, id);
    this.handler = new HandlerFunction(this, 'Handler', {
      entry: 'functions/api/handler.ts',
      bindings: props.bindings,
      description: 'Cronplane REST API (Dkron /v1 compatible)',
      timeout: Duration.seconds(29),
    }).function;
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
      deployOptions: { stageName: props.stageName ?? 'prod' },
      defaultMethodOptions: {
        authorizationType: (props.iamAuth ?? true) ? AuthorizationType.IAM : AuthorizationType.NONE,
      },
    });
  }

  get url(): string {
    return this.restApi.url;
  }
}
