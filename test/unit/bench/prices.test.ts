import { describe, expect, it } from 'vitest';
import {
  addUsage,
  billedGbSeconds,
  dollars,
  PRICE_TABLE,
  provisionedPrices,
  scaleUsage,
  sqsBilledRequests,
} from '../../bench/prices.ts';

describe('cost bench pricing arithmetic', () => {
  it('names one region and one date next to the prices', () => {
    expect(PRICE_TABLE.region).toBe('us-east-1');
    expect(PRICE_TABLE.date).toMatch(/^\d{4}-\d{2}-\d{2}$/);
  });

  it('prices a million of each unit at the table price', () => {
    const m = 1_000_000;
    const { byLine, total } = dollars({
      dynamodbWriteUnits: m,
      dynamodbReadUnits: m,
      dynamodbStreamsPaidReads: m,
      sqsRequests: m,
      lambdaInvocations: m,
      eventbridgeEvents: m,
      apiGatewayRequests: m,
    });
    expect(byLine.dynamodb_writes).toBeCloseTo(0.625, 10);
    expect(byLine.dynamodb_reads).toBeCloseTo(0.125, 10);
    expect(byLine.dynamodb_streams).toBeCloseTo(0.2, 10);
    expect(byLine.sqs).toBeCloseTo(0.4, 10);
    expect(byLine.lambda_requests).toBeCloseTo(0.2, 10);
    expect(byLine.eventbridge).toBeCloseTo(1, 10);
    expect(byLine.api_gateway).toBeCloseTo(3.5, 10);
    expect(total).toBeCloseTo(0.625 + 0.125 + 0.2 + 0.4 + 0.2 + 1 + 3.5, 10);
  });

  it('bills Lambda duration rounded up to the ms, times memory in GB, at the arm64 rate', () => {
    expect(billedGbSeconds(10.2, 512)).toBeCloseTo(0.0055, 12); // 11 ms × 0.5 GB
    expect(billedGbSeconds(0.1, 1024)).toBeCloseTo(0.001, 12); // at least 1 ms
    expect(billedGbSeconds(1000, 1024)).toBe(1);
    // a million 100 ms invocations at 512 MB: 50,000 GB-s
    const gbs = billedGbSeconds(100, 512) * 1_000_000;
    expect(gbs).toBeCloseTo(50_000, 6);
    expect(dollars({ lambdaGbSeconds: gbs }).byLine.lambda_duration).toBeCloseTo(50_000 * 0.0000133334, 10);
  });

  it('bills SQS per started 64 KB chunk, at least one request', () => {
    expect(sqsBilledRequests(0)).toBe(1);
    expect(sqsBilledRequests(65_536)).toBe(1);
    expect(sqsBilledRequests(65_537)).toBe(2);
    expect(sqsBilledRequests(256 * 1024)).toBe(4);
  });

  it('prices CloudWatch logs per GB, metrics and alarms per month', () => {
    const { byLine } = dollars({ logsIngestedBytes: 2 * 1024 ** 3, customMetricMonths: 10, alarmMonths: 7 });
    expect(byLine.cloudwatch_logs).toBeCloseTo(1, 10);
    expect(byLine.cloudwatch_metrics).toBeCloseTo(3, 10);
    expect(byLine.cloudwatch_alarms).toBeCloseTo(0.7, 10);
  });

  it('scales per-execution usage to a million executions and adds usages', () => {
    const perExecution = { dynamodbWriteUnits: 8, dynamodbReadUnits: 3, sqsRequests: 4 };
    const perMillion = dollars(scaleUsage(perExecution, 1_000_000));
    expect(perMillion.total).toBeCloseTo(8 * 0.625 + 3 * 0.125 + 4 * 0.4, 10);
    expect(addUsage(perExecution, { sqsRequests: 1, lambdaInvocations: 2 })).toEqual({
      dynamodbWriteUnits: 8,
      dynamodbReadUnits: 3,
      sqsRequests: 5,
      lambdaInvocations: 2,
    });
  });

  it('prices DynamoDB units on provisioned capacity by the unit-hour over the utilization', () => {
    // A WCU-hour is 3,600 WRU at full use: a million WRU = 277.8 WCU-hours, and at 70 % use 396.8 are paid.
    const at70 = provisionedPrices(0.7);
    const { byLine } = dollars(
      { dynamodbWriteUnits: 1_000_000, dynamodbReadUnits: 1_000_000, sqsRequests: 1 },
      at70,
    );
    expect(byLine.dynamodb_writes).toBeCloseTo((1_000_000 / 3600 / 0.7) * 0.00065, 10);
    expect(byLine.dynamodb_reads).toBeCloseTo((1_000_000 / 3600 / 0.7) * 0.00013, 10);
    expect(byLine.sqs).toBe(dollars({ sqsRequests: 1 }).byLine.sqs);
    // At full use a write costs less than a third of on-demand's.
    expect(provisionedPrices(1).dynamodbWriteRequestUnit).toBeLessThan(
      PRICE_TABLE.dynamodbWriteRequestUnit / 3,
    );
    expect(() => provisionedPrices(0)).toThrow(/utilization/);
  });
});
