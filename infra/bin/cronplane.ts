#!/usr/bin/env -S npx tsx
// The CDK app (cdk.json: "app": "npx tsx infra/bin/cronplane.ts").
//   npx cdk synth | deploy [-c stackName=Name] [-c iamAuth=false]
import { addCronplaneStack, createCronplaneApp } from '../lib/stack.ts';

const app = createCronplaneApp();
addCronplaneStack(app);
app.synth();
