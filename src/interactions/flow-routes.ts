/** The interaction API calls that belong to no factor: identify, the organization, consent, skip, cancel. */
import { type LoginCall, loginCall } from '../factors/factor.ts';
import { flowCalls } from './flow-calls.ts';
import { Bodies } from './request-schemas.ts';

export const FLOW_CALLS: readonly LoginCall[] = [
  loginCall('identify', Bodies.identify, flowCalls.identify),
  loginCall('organization', Bodies.organization, flowCalls.chooseOrganization),
  loginCall('consent', Bodies.consent, flowCalls.consent),
  loginCall('enroll/skip', Bodies.empty, flowCalls.skipEnroll),
  loginCall('abort', Bodies.empty, flowCalls.abort),
];
