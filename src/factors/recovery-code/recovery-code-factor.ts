/** Recovery codes as a login factor: the second factor that stands in for a lost passkey. */
import { Bodies } from '../../interactions/request-schemas.ts';
import { type LoginFactor, loginCall } from '../factor.ts';
import { recoveryCodeCalls } from './recovery-code-calls.ts';
import { recoveryCodeTraits } from './recovery-code-traits.ts';

export const recoveryCodeLoginFactor: LoginFactor = {
  method: 'recovery_code',
  traits: recoveryCodeTraits,
  calls: [loginCall('recovery-code', Bodies.recoveryCode, recoveryCodeCalls.recoveryCode)],
};
