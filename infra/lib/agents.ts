import { Aws } from 'aws-cdk-lib';
import {
  ArnPrincipal,
  CompositePrincipal,
  InstanceProfile,
  type IPrincipal,
  PolicyStatement,
  Role,
  ServicePrincipal,
} from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import type { RuntimeBindings } from './bindings.ts';
import { satisfiedTagSets } from './roles.ts';

/** Who may assume an agent role besides EC2 (context `agentPrincipals`, `agentTrustAnchors`). */
export interface AgentTrust {
  /** IAM role/user ARNs (e.g. an on-prem host's role). Never the account root unless named here. */
  readonly principals?: readonly string[];
  /** IAM Roles Anywhere trust anchor ARNs: hosts holding a certificate of that CA may assume the role. */
  readonly rolesAnywhereTrustAnchors?: readonly string[];
}

export interface AgentGroupProps {
  readonly bindings: RuntimeBindings;
  /**
   * The tags the group's hosts carry (`cronplane agent --tag k=v`). The role may receive launches of
   * the default queue and of every job selector these tags satisfy (every subset of them), nothing else.
   * Empty: untagged agents, the default queue only.
   */
  readonly tags?: Readonly<Record<string, string>>;
  readonly trust?: AgentTrust;
  readonly description?: string;
}

function trustPolicy(trust: AgentTrust = {}): IPrincipal {
  const principals: IPrincipal[] = [new ServicePrincipal('ec2.amazonaws.com')];
  for (const arn of trust.principals ?? []) {
    if (/:root$/.test(arn) || /^\d{12}$/.test(arn)) {
      throw new Error(
        `context agentPrincipals: "${arn}" is a whole account; name the role or user that hosts use instead`,
      );
    }
    principals.push(new ArnPrincipal(arn));
  }
  return new CompositePrincipal(...principals);
}

/** IAM Roles Anywhere: assumes with session tags and source identity, only through the named anchors. */
function rolesAnywhereStatement(anchors: readonly string[]): PolicyStatement {
  return new PolicyStatement({
    principals: [new ServicePrincipal('rolesanywhere.amazonaws.com')],
    actions: ['sts:AssumeRole', 'sts:TagSession', 'sts:SetSourceIdentity'],
    conditions: { ArnEquals: { 'aws:SourceArn': [...anchors] } },
  });
}

/**
 * The hosts of one tag set: an IAM role (and an EC2 instance profile) that can receive launches only from
 * the queues of tag sets its tags satisfy, read job definitions but not write them, and write in
 * Executions only an agent's fields (permissions.ts `agent`). A compromised `role=web` host cannot
 * receive `role=db` launches: the `role=db` queue is not in its policy.
 *
 * The rule: a job whose tags select {k1=v1, …} goes to the queue named by that canonical tag set; an
 * agent serves it when it carries every k=v of it, i.e. when the selector is a subset of the agent's
 * tags. IAM cannot compute subsets, so the role lists the queue of each non-empty subset of the group's
 * tags (2^n - 1, n ≤ 6) plus the default queue. An agent of the group that carries tags beyond the
 * group's can poll more queues than its role allows: those receives fail with AccessDenied.
 */
export class AgentGroup extends Construct {
  readonly role: Role;
  readonly instanceProfile: InstanceProfile;
  readonly tags: Readonly<Record<string, string>>;
  /** `KEY=value` pairs (space-separated) for the agent's environment file. */
  readonly environmentFile: string;

  constructor(scope: Construct, id: string, props: AgentGroupProps) {
    super(scope, id);
    this.tags = { ...(props.tags ?? {}) };
    satisfiedTagSets(this.tags); // refuses too many tags before anything is built
    const tagText = Object.entries(this.tags)
      .map(([k, v]) => `${k}=${v}`)
      .join(',');
    this.role = new Role(this, 'Role', {
      assumedBy: trustPolicy(props.trust),
      description:
        props.description ??
        `Cronplane agents${tagText ? ` (${tagText})` : ''}: run jobs from their tag sets' queues and write their results`,
    });
    const anchors = props.trust?.rolesAnywhereTrustAnchors ?? [];
    if (anchors.length > 0) this.role.assumeRolePolicy?.addStatements(rolesAnywhereStatement(anchors));
    props.bindings.grant(this.role, this, 'agent', this.tags);
    this.instanceProfile = new InstanceProfile(this, 'InstanceProfile', { role: this.role });
    const environment = { AWS_REGION: Aws.REGION, ...props.bindings.environment };
    this.environmentFile = Object.entries(environment)
      .map(([key, value]) => `${key}=${value}`)
      .join(' ');
  }
}

/** The default agent role (untagged agents: the default queue) — an AgentGroup without tags. */
export class Agents extends AgentGroup {
  constructor(scope: Construct, id: string, props: Omit<AgentGroupProps, 'tags'>) {
    super(scope, id, { ...props, tags: {} });
  }
}
