import { EventField, type IEventBus, Rule, RuleTargetInput } from 'aws-cdk-lib/aws-events';
import { SnsTopic } from 'aws-cdk-lib/aws-events-targets';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import { EVENT_DETAIL_TYPE, EVENT_SOURCE } from '../../shared/events/finished-event.ts';

/** `failure`: a run failed, timed out or was lost and no retry follows; `all`: every finish. */
export type NotifyOn = 'failure' | 'all';

export interface NotificationsProps {
  /** the bus the events function publishes `Execution Finished` to */
  readonly bus: IEventBus;
  /** Default: `failure`. */
  readonly on?: NotifyOn;
  /** An address to subscribe to the topic (it confirms by mail). */
  readonly email?: string;
}

/** The statuses that are a failure to tell someone about (not `skipped` or `cancelled`: those were chosen). */
export const FAILED_STATUSES = ['failed', 'timeout', 'lost'];

/**
 * Job notifications: an SNS topic fed by a rule on the Execution Finished events. By default only final
 * failures, once per run (`will_retry: false`), not every attempt nor every success: Dkron notifies of
 * every run, which is the noise users complain about. Subscribe anything SNS delivers to: e-mail, an HTTPS
 * webhook, a chat integration, a queue.
 */
export class Notifications extends Construct {
  readonly topic: Topic;
  readonly rule: Rule;

  constructor(scope: Construct, id: string, props: NotificationsProps) {
    super(scope, id);
    const on = props.on ?? 'failure';
    this.topic = new Topic(this, 'Topic', { displayName: 'Cronplane job notifications', enforceSSL: true });
    this.rule = new Rule(this, 'Rule', {
      eventBus: props.bus,
      description: on === 'all' ? 'Cronplane: every finished run' : 'Cronplane: final failures',
      eventPattern: {
        source: [EVENT_SOURCE],
        detailType: [EVENT_DETAIL_TYPE],
        ...(on === 'all' ? {} : { detail: { status: FAILED_STATUSES, will_retry: [false] } }),
      },
    });
    const field = (name: string) => EventField.fromPath(`$.detail.${name}`);
    this.rule.addTarget(
      new SnsTopic(this.topic, {
        message: RuleTargetInput.fromText(
          `Cronplane: job ${field('job_name')} ${field('status')} (attempt ${field('attempt')}, scheduled ${field('scheduled_at')}, node ${field('node_name')}, exit code ${field('exit_code')}): ${field('reason')}`,
        ),
      }),
    );
    if (props.email) this.topic.addSubscription(new EmailSubscription(props.email));
  }
}
