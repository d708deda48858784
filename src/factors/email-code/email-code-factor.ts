/** Email codes as a login factor: sent and verified to sign in, to sign up, or to prove the email. */
import { Bodies } from '../../interactions/request-schemas.ts';
import { type LoginFactor, loginCall } from '../factor.ts';
import { emailCodeCalls } from './email-code-calls.ts';
import { emailCodeTraits } from './email-code-traits.ts';

export const emailCodeLoginFactor: LoginFactor = {
  method: 'email_otp',
  traits: emailCodeTraits,
  calls: [
    loginCall('email-otp/send', Bodies.emailCodeSend, emailCodeCalls.sendEmailCode),
    loginCall('email-otp/verify', Bodies.emailCodeVerify, emailCodeCalls.verifyEmailCode),
  ],
};
