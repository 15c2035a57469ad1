/**
 * The price table of the `cost` bench figure, and the pure arithmetic that turns counted usage into
 * dollars. ONE region, ONE date: change both together.
 *
 * Region: us-east-1 (US East, N. Virginia). Taken on 2026-12-05 as published on the AWS pricing pages
 * (aws.amazon.com/{dynamodb,sqs,lambda,eventbridge,api-gateway,cloudwatch}/pricing), checked against
 * copies of those pages the same day; on-demand list prices, no free tier, first volume tier. DynamoDB
 * on-demand is the price after the November 2024 reduction ($0.625 / $0.125 per million units).
 *
 * Units, as AWS bills them:
 * - DynamoDB on-demand: a write request unit (WRU) per 1 KB written (2 in a transaction), a read request
 *   unit (RRU) per 4 KB read strongly (0.5 eventually consistent, 2 in a transaction). The bench reads
 *   them from `ConsumedCapacity`, which is in exactly these units.
 * - DynamoDB provisioned capacity (the stack's `-c billing=provisioned`): per capacity unit-hour. A write
 *   capacity unit is one WRU a second, a read capacity unit one RRU a second, so a counted WRU costs
 *   (WCU-hour price / 3,600) / utilization: auto scaling keeps consumption near its target (70 %), and the
 *   unused 30 % is paid too. `provisionedPrices` turns the table into that.
 * - DynamoDB Streams: a read request unit per GetRecords call; FREE when the reader is a Lambda event
 *   source mapping (the events function), so only other readers pay.
 * - SQS standard: a request per API call, each 64 KB chunk of its payload a request (a batch of 10
 *   small messages is 1 request). Lambda's SQS event source mapping's polls are billed as SQS requests.
 * - Lambda: a request per invocation; duration rounded up to the next 1 ms × configured memory in GB
 *   (GB-seconds), at the arm64 rate (infra/lib/function.ts: Architecture.ARM_64).
 * - EventBridge: custom events per 64 KB chunk (PutEvents entries); scheduled rules invoking targets
 *   (the tick's clock) are free.
 * - API Gateway REST API: per request.
 * - CloudWatch: Logs ingestion per GB (the functions' log lines and EMF metric lines), custom metrics per
 *   metric-month (each metric name × dimension set published at least once an hour), standard alarms per
 *   alarm-month.
 */

export const PRICE_TABLE = {
  region: 'us-east-1',
  date: '2026-12-05',
  source: 'AWS public on-demand price lists as published on 2026-12-05 (first tier, no free tier)',
  /** $ per million DynamoDB on-demand write request units. */
  dynamodbWriteRequestUnit: 0.625,
  /** $ per million DynamoDB on-demand read request units. */
  dynamodbReadRequestUnit: 0.125,
  /** $ per provisioned write capacity unit-hour (standard table class). */
  dynamodbWriteCapacityUnitHour: 0.00065,
  /** $ per provisioned read capacity unit-hour (standard table class). */
  dynamodbReadCapacityUnitHour: 0.00013,
  /** $ per million DynamoDB Streams read request units (GetRecords); $0 when read by a Lambda trigger. */
  dynamodbStreamsReadRequestUnit: 0.2,
  /** $ per million SQS standard-queue requests (64 KB chunks). */
  sqsRequest: 0.4,
  /** $ per million Lambda requests (invocations). */
  lambdaRequest: 0.2,
  /** $ per GB-second of Lambda duration, arm64 (x86_64: 0.0000166667). */
  lambdaGbSecondArm64: 0.0000133334,
  /** $ per million EventBridge custom events (64 KB chunks). */
  eventbridgeCustomEvent: 1.0,
  /** $ per million API Gateway REST API requests (first 333 million a month). */
  apiGatewayRestRequest: 3.5,
  /** $ per GB of CloudWatch Logs ingested (standard log class). */
  cloudwatchLogsIngestedGb: 0.5,
  /** $ per custom metric per month (first 10,000 metrics). */
  cloudwatchCustomMetricMonth: 0.3,
  /** $ per standard-resolution alarm metric per month. */
  cloudwatchAlarmMonth: 0.1,
} as const;

export type PriceTable = {
  readonly [K in keyof typeof PRICE_TABLE]: (typeof PRICE_TABLE)[K] extends number
    ? number
    : (typeof PRICE_TABLE)[K];
};

/** Lambda memory in MB per function, as configured in infra/lib (function.ts default 512; worker.ts 512). */
export const LAMBDA_MEMORY_MB = { tick: 512, api: 512, events: 512, worker: 512 } as const;
export type FunctionName = keyof typeof LAMBDA_MEMORY_MB;

export const SECONDS_PER_MONTH = 30 * 24 * 3600;

/** Billed GB-seconds of one invocation: duration rounded up to the next whole ms, times memory in GB. */
export function billedGbSeconds(durationMs: number, memoryMb: number): number {
  return (Math.max(1, Math.ceil(durationMs)) / 1000) * (memoryMb / 1024);
}

/** SQS requests one call is billed as: one per started 64 KB of payload, at least one. */
export function sqsBilledRequests(payloadBytes: number): number {
  return Math.max(1, Math.ceil(payloadBytes / 65_536));
}

/** Usage over some period (or per execution): what the price table prices. */
export interface Usage {
  readonly dynamodbWriteUnits?: number;
  readonly dynamodbReadUnits?: number;
  /** GetRecords calls by readers other than a Lambda trigger (the events function's are free). */
  readonly dynamodbStreamsPaidReads?: number;
  /** SQS requests in 64 KB chunks (sqsBilledRequests per call). */
  readonly sqsRequests?: number;
  readonly lambdaInvocations?: number;
  /** Billed GB-seconds (billedGbSeconds per invocation, summed). */
  readonly lambdaGbSeconds?: number;
  readonly eventbridgeEvents?: number;
  readonly apiGatewayRequests?: number;
  readonly logsIngestedBytes?: number;
  /** Custom metric-months (metrics published through the whole month). */
  readonly customMetricMonths?: number;
  readonly alarmMonths?: number;
}

export type CostLine =
  | 'dynamodb_writes'
  | 'dynamodb_reads'
  | 'dynamodb_streams'
  | 'sqs'
  | 'lambda_requests'
  | 'lambda_duration'
  | 'eventbridge'
  | 'api_gateway'
  | 'cloudwatch_logs'
  | 'cloudwatch_metrics'
  | 'cloudwatch_alarms';

/** Dollars per line and in total for `usage`, with prices per million units where AWS quotes them so. */
export function dollars(
  usage: Usage,
  prices: PriceTable = PRICE_TABLE,
): { total: number; byLine: Record<CostLine, number> } {
  const perMillion = (n: number | undefined, price: number) => ((n ?? 0) / 1_000_000) * price;
  const byLine: Record<CostLine, number> = {
    dynamodb_writes: perMillion(usage.dynamodbWriteUnits, prices.dynamodbWriteRequestUnit),
    dynamodb_reads: perMillion(usage.dynamodbReadUnits, prices.dynamodbReadRequestUnit),
    dynamodb_streams: perMillion(usage.dynamodbStreamsPaidReads, prices.dynamodbStreamsReadRequestUnit),
    sqs: perMillion(usage.sqsRequests, prices.sqsRequest),
    lambda_requests: perMillion(usage.lambdaInvocations, prices.lambdaRequest),
    lambda_duration: (usage.lambdaGbSeconds ?? 0) * prices.lambdaGbSecondArm64,
    eventbridge: perMillion(usage.eventbridgeEvents, prices.eventbridgeCustomEvent),
    api_gateway: perMillion(usage.apiGatewayRequests, prices.apiGatewayRestRequest),
    cloudwatch_logs: ((usage.logsIngestedBytes ?? 0) / 1024 ** 3) * prices.cloudwatchLogsIngestedGb,
    cloudwatch_metrics: (usage.customMetricMonths ?? 0) * prices.cloudwatchCustomMetricMonth,
    cloudwatch_alarms: (usage.alarmMonths ?? 0) * prices.cloudwatchAlarmMonth,
  };
  const total = Object.values(byLine).reduce((s, v) => s + v, 0);
  return { total, byLine };
}

/**
 * The price table with DynamoDB on provisioned capacity used at `utilization` (0–1] on average: a request
 * unit then costs the capacity unit-hour price / 3,600 / utilization (see the header). Right for a steady
 * load; an idle month still pays the minimum capacity of every table and index, which on-demand does not.
 */
export function provisionedPrices(utilization: number, prices: PriceTable = PRICE_TABLE): PriceTable {
  if (!(utilization > 0 && utilization <= 1))
    throw new Error(`utilization must be in (0, 1], got ${utilization}`);
  const perMillionUnits = (unitHour: number) => ((unitHour / 3600) * 1_000_000) / utilization;
  return {
    ...prices,
    dynamodbWriteRequestUnit: perMillionUnits(prices.dynamodbWriteCapacityUnitHour),
    dynamodbReadRequestUnit: perMillionUnits(prices.dynamodbReadCapacityUnitHour),
  };
}

/** Usage times a factor (per execution → per million executions, per minute → per month). */
export function scaleUsage(usage: Usage, factor: number): Usage {
  return Object.fromEntries(Object.entries(usage).map(([k, v]) => [k, (v as number) * factor])) as Usage;
}

/** Adds usages line by line. */
export function addUsage(...usages: readonly Usage[]): Usage {
  const out: Record<string, number> = {};
  for (const u of usages) for (const [k, v] of Object.entries(u)) out[k] = (out[k] ?? 0) + (v as number);
  return out as Usage;
}

/** Rounds dollars for a JSON line: 4 significant digits (small per-line figures stay readable). */
export function roundDollars(v: number): number {
  return v === 0 ? 0 : Number(v.toPrecision(4));
}
