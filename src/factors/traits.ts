/** Every factor's traits by name: what `nextStep` reads (pure, no factor code). */
import { emailCodeTraits } from './email-code/email-code-traits.ts';
import type { FactorTraits } from './factor.ts';
import type { Method } from './methods.ts';
import { passkeyTraits } from './passkey/passkey-traits.ts';
import { passwordTraits } from './password/password-traits.ts';
import { recoveryCodeTraits } from './recovery-code/recovery-code-traits.ts';
import { totpTraits } from './totp/totp-traits.ts';

export const FACTOR_TRAITS: Readonly<Record<Method, FactorTraits>> = {
  passkey: passkeyTraits,
  email_otp: emailCodeTraits,
  password: passwordTraits,
  recovery_code: recoveryCodeTraits,
  totp: totpTraits,
};
