/** The item of a planned execution, as the stream carries it: the base the events tests build on. */
export const plannedItem = {
  jobName: 'job',
  executionId: '0000000001000.0.1',
  group: '0000000001000',
  slot: 0,
  attempt: 1,
  trigger: 'schedule',
  scheduledAt: 1_000,
  jobVersion: 1,
  queueUrl: 'http://q',
};
