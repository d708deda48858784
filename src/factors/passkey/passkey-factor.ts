/**
 * Passkeys as a login factor: signed in with (first factor, second factor,
 * step-up), created (sign-up, a required second factor, the offer, after a
 * recovery) and, in the recovery step, removed.
 */
import { Bodies } from '../../interactions/request-schemas.ts';
import { ceremonyCall, type LoginFactor, loginCall } from '../factor.ts';
import { passkeyCalls } from './passkey-calls.ts';
import { passkeyTraits } from './passkey-traits.ts';

export const passkeyLoginFactor: LoginFactor = {
  method: 'passkey',
  traits: passkeyTraits,
  calls: [
    loginCall('passkey/options', Bodies.empty, passkeyCalls.passkeyOptions),
    ceremonyCall('passkey/verify', Bodies.passkeyVerify, passkeyCalls.passkeyVerify),
    loginCall('passkey/register/options', Bodies.registerOptions, passkeyCalls.registerOptions),
    ceremonyCall('passkey/register/verify', Bodies.registerVerify, passkeyCalls.registerVerify),
    loginCall('passkey/remove', Bodies.removePasskey, passkeyCalls.removePasskey),
  ],
};
