/**
 * Packages that are only ever imported with `await import()`: the SDK clients shared/aws/clients.ts loads
 * on demand (its ON_DEMAND_SERVICES), the MessagePack codec of the fluent processor
 * (shared/processors/fluent.ts), the message-broker clients of the kafka, nats and rabbitmq executors
 * (shared/executors/{kafka,nats,rabbitmq}.ts: 7.7 MB of an idle agent's RSS as code), and the browser
 * user-agent parser the SDK's core imports only when it runs in a browser.
 *
 * scripts/bundle-agent.mjs builds them into the compressed on-demand bundle; .dependency-cruiser-agent.mjs
 * fails the lint when the agent's static import graph reaches one of them.
 */
export const ON_DEMAND_PACKAGES = [
  '@aws-sdk/client-cloudwatch-logs',
  '@aws-sdk/client-dynamodb-streams',
  '@aws-sdk/client-eventbridge',
  '@aws-sdk/client-lambda',
  '@aws-sdk/client-s3',
  '@aws-sdk/client-ssm',
  '@msgpack/msgpack',
  '@nats-io/transport-node',
  'amqplib',
  'bowser',
  'kafkajs',
];
