/** TOTP as a login factor: a second factor, enrolled on the account page (src/selfservice/self-totp.ts). */
import { Bodies } from '../../interactions/request-schemas.ts';
import { type LoginFactor, loginCall } from '../factor.ts';
import { totpCalls } from './totp-calls.ts';
import { totpTraits } from './totp-traits.ts';

export const totpLoginFactor: LoginFactor = {
  method: 'totp',
  traits: totpTraits,
  calls: [loginCall('totp', Bodies.totp, totpCalls.verifyTotp)],
};
