/** Passwords as a login factor: chosen at sign-up, signed in with. */
import { Bodies } from '../../interactions/request-schemas.ts';
import { type LoginFactor, loginCall } from '../factor.ts';
import { passwordCalls } from './password-calls.ts';
import { passwordTraits } from './password-traits.ts';

export const passwordLoginFactor: LoginFactor = {
  method: 'password',
  traits: passwordTraits,
  calls: [loginCall('password', Bodies.password, passwordCalls.password)],
};
