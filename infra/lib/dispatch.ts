import { Duration } from 'aws-cdk-lib';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

export interface DispatchProps {
  /** How long a received message stays invisible before another agent may take it. Default: 60 s. */
  readonly visibilityTimeout?: Duration;
  /** Receives after which a message moves to the dead-letter queue. Default: 5. */
  readonly maxReceiveCount?: number;
}

/**
 * The default dispatch queue (polled by every agent) and its dead-letter queue. Tag-set queues are
 * created at run time with the same attributes, named with CRONPLANE_QUEUE_PREFIX, and redrive to the
 * same dead-letter queue.
 */
export class Dispatch extends Construct {
  readonly defaultQueue: Queue;
  readonly deadLetterQueue: Queue;

  constructor(scope: Construct, id: string, props: DispatchProps = {}) {
    super(scope, id);
    this.deadLetterQueue = new Queue(this, 'DeadLetterQueue', {
      retentionPeriod: Duration.days(14),
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
    });
    this.defaultQueue = new Queue(this, 'DefaultQueue', {
      visibilityTimeout: props.visibilityTimeout ?? Duration.seconds(60),
      retentionPeriod: Duration.days(4),
      receiveMessageWaitTime: Duration.seconds(20),
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: props.maxReceiveCount ?? 5 },
    });
  }
}
