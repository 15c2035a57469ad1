import { Aws } from 'aws-cdk-lib';
import {
  AccountRootPrincipal,
  CompositePrincipal,
  InstanceProfile,
  Role,
  ServicePrincipal,
} from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { type RuntimeBindings, ssmSecretStatements } from './bindings.ts';

/**
 * What a host needs to run `cronplane agent` against the stack: an IAM role with the same tables, bucket and
 * queues as the functions plus the SSM secrets, an instance profile for EC2, and the agent's environment.
 * Hosts off AWS assume the role (any principal of the account that is allowed sts:AssumeRole on it).
 */
export class Agents extends Construct {
  readonly role: Role;
  readonly instanceProfile: InstanceProfile;
  /** `KEY=value` lines for the agent's environment file (AWS_REGION and the CRONPLANE_* names). */
  readonly environmentFile: string;

  constructor(scope: Construct, id: string, props: { bindings: RuntimeBindings }) {
    super(scope, id);
    this.role = new Role(this, 'Role', {
      assumedBy: new CompositePrincipal(
        new ServicePrincipal('ec2.amazonaws.com'),
        new AccountRootPrincipal(),
      ),
      description: 'Cronplane agents: run jobs from the dispatch queues and write their results',
    });
    props.bindings.grant(this.role);
    for (const statement of ssmSecretStatements()) this.role.addToPrincipalPolicy(statement);
    this.instanceProfile = new InstanceProfile(this, 'InstanceProfile', { role: this.role });
    const environment = { AWS_REGION: Aws.REGION, ...props.bindings.environment };
    this.environmentFile = Object.entries(environment)
      .map(([key, value]) => `${key}=${value}`)
      .join(' ');
  }
}
