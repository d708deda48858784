/**
 * The interaction API's request bodies (zod guards, STYLE.md rule 1). Top-level
 * bodies refuse unknown members. A WebAuthn response is taken as it comes: its
 * shape is the ceremony's to check, after the ceremony has taken its
 * challenge, so that a malformed response spends the challenge like any other
 * refused verification (src/webauthn/response-shapes.ts). For the same reason
 * a verification's whole body (`passkeyVerify`, `registerVerify`, and the
 * self-service and enrolment ones) is read and guarded only once the
 * challenge is taken (`ceremonyCall`, src/factors/factor.ts).
 */
import { z } from 'zod';
import { emailField as email } from '../http/api-fields.ts';

/**
 * A WebAuthn response as the routes take it: any JSON value, or none, bounded
 * by the routes' 64 KB body limit: every call to verify is a verification,
 * and spends the challenge. The self-service API shares it.
 */
export const CeremonyResponse = z.unknown().optional();

const passkeyName = z
  .string()
  .trim()
  .max(64, 'A passkey name has at most 64 characters.')
  .regex(/^[^\p{Cc}]*$/u, 'A passkey name cannot contain control characters.');

/** A code from an authenticator app: 6 digits (spaces, as some apps show them, are dropped). */
export const totpCode = z
  .string()
  .transform((code) => code.replace(/\s/g, ''))
  .pipe(z.string().regex(/^\d{6}$/, 'A code from your authenticator app has 6 digits.'));

export const Bodies = {
  empty: z.strictObject({}),
  identify: z.strictObject({ email }),
  passkeyVerify: z.strictObject({ response: CeremonyResponse }),
  registerOptions: z.strictObject({
    name: passkeyName.optional(),
    mediation: z.literal('conditional').optional(),
  }),
  removePasskey: z.strictObject({ id: z.uuid({ error: 'No such passkey.' }) }),
  password: z.strictObject({
    password: z.string().min(1, 'Enter your password.').max(1024, 'That password is too long.'),
  }),
  recoveryCode: z.strictObject({
    code: z
      .string()
      .trim()
      .regex(/^[0-9A-Za-z][0-9A-Za-z\s-]{9,24}$/, 'A recovery code looks like XXXX-XXXX-XXXX.'),
  }),
  registerVerify: z.strictObject({ response: CeremonyResponse, name: passkeyName.optional() }),
  emailCodeSend: z.strictObject({ email: email.optional() }),
  emailCodeVerify: z.strictObject({
    code: z
      .string()
      .trim()
      .regex(/^\d{6}$/, 'A code has 6 digits.'),
  }),
  consent: z.strictObject({ decision: z.enum(['allow', 'deny']) }),
  organization: z.strictObject({ organization_id: z.uuid('Choose one of your organizations.') }),
  totp: z.strictObject({ code: totpCode }),
} as const;
