/** The factors a login can use, with the interaction API calls each serves. */
import { emailCodeLoginFactor } from './email-code/email-code-factor.ts';
import type { LoginFactor } from './factor.ts';
import { passkeyLoginFactor } from './passkey/passkey-factor.ts';
import { passwordLoginFactor } from './password/password-factor.ts';
import { recoveryCodeLoginFactor } from './recovery-code/recovery-code-factor.ts';
import { totpLoginFactor } from './totp/totp-factor.ts';

export const LOGIN_FACTORS: readonly LoginFactor[] = [
  passkeyLoginFactor,
  emailCodeLoginFactor,
  passwordLoginFactor,
  recoveryCodeLoginFactor,
  totpLoginFactor,
];
