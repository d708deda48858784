/**
 * The interaction API's request bodies (zod guards, STYLE.md rule 1). WebAuthn
 * responses are checked for shape and size only; their meaning is the
 * ceremony's to verify. Nested objects keep unknown members (browsers add
 * fields over time); top-level bodies refuse them.
 */
import { z } from 'zod';

const base64url = (max: number) =>
  z
    .string()
    .max(max)
    .regex(/^[A-Za-z0-9_-]*$/, 'expected base64url');

const clientExtensionResults = z.record(z.string(), z.unknown()).default({});

export const AuthenticationResponseSchema = z.object({
  id: base64url(1400).min(1),
  rawId: base64url(1400).min(1),
  type: z.literal('public-key'),
  authenticatorAttachment: z.enum(['platform', 'cross-platform']).optional(),
  clientExtensionResults,
  response: z.object({
    clientDataJSON: base64url(8192),
    authenticatorData: base64url(8192),
    signature: base64url(2048),
    userHandle: base64url(128).optional(),
  }),
});

export const RegistrationResponseSchema = z.object({
  id: base64url(1400).min(1),
  rawId: base64url(1400).min(1),
  type: z.literal('public-key'),
  authenticatorAttachment: z.enum(['platform', 'cross-platform']).optional(),
  clientExtensionResults,
  response: z.object({
    clientDataJSON: base64url(8192),
    attestationObject: base64url(32_768),
    authenticatorData: base64url(16_384).optional(),
    transports: z.array(z.string().max(32)).max(10).optional(),
    publicKeyAlgorithm: z.number().int().optional(),
    publicKey: base64url(16_384).optional(),
  }),
});

const email = z
  .string()
  .trim()
  .max(254)
  .pipe(z.email({ error: 'Enter a valid email address.' }));
const passkeyName = z
  .string()
  .trim()
  .max(64, 'A passkey name has at most 64 characters.')
  .regex(/^[^\p{Cc}]*$/u, 'A passkey name cannot contain control characters.');

export const Bodies = {
  empty: z.strictObject({}),
  identify: z.strictObject({ email }),
  passkeyVerify: z.strictObject({ response: AuthenticationResponseSchema }),
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
  registerVerify: z.strictObject({ response: RegistrationResponseSchema, name: passkeyName.optional() }),
  emailCodeSend: z.strictObject({ email: email.optional() }),
  emailCodeVerify: z.strictObject({
    code: z
      .string()
      .trim()
      .regex(/^\d{6}$/, 'A code has 6 digits.'),
  }),
  consent: z.strictObject({ decision: z.enum(['allow', 'deny']) }),
} as const;
