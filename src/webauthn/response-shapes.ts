/**
 * The shape of a WebAuthn response, checked inside the ceremony, after its
 * challenge is taken: a response that is malformed, of another `type` or far
 * too large is a refused verification like any other and spends the
 * challenge (STYLE.md rule 5). The routes only guard the request around it.
 * Nested objects keep unknown members (browsers add fields over time); sizes
 * are bounded well above what authenticators send.
 * https://www.w3.org/TR/webauthn-3/#dictdef-registrationresponsejson
 * https://www.w3.org/TR/webauthn-3/#dictdef-authenticationresponsejson
 */
import type { AuthenticationResponseJSON, RegistrationResponseJSON } from '@simplewebauthn/server';
import { z } from 'zod';
import { type Refused, refused } from './ceremony-refusals.ts';

const base64url = (max: number) =>
  z
    .string()
    .max(max)
    .regex(/^[A-Za-z0-9_-]*$/, 'expected base64url');

const clientExtensionResults = z.record(z.string(), z.unknown()).default({});

/** What both ceremonies' responses carry around their `response` member. */
const credentialFields = {
  id: base64url(1400).min(1),
  rawId: base64url(1400).min(1),
  type: z.literal('public-key'),
  authenticatorAttachment: z.enum(['platform', 'cross-platform']).optional(),
  clientExtensionResults,
};

const AuthenticationResponseShape = z.object({
  ...credentialFields,
  response: z.object({
    clientDataJSON: base64url(8192),
    authenticatorData: base64url(8192),
    signature: base64url(2048),
    userHandle: base64url(128).optional(),
  }),
});

const RegistrationResponseShape = z.object({
  ...credentialFields,
  response: z.object({
    clientDataJSON: base64url(8192),
    attestationObject: base64url(32_768),
    authenticatorData: base64url(16_384).optional(),
    // Unknown transports are dropped when the passkey is stored (./finish-registration.ts).
    transports: z.array(z.string().max(32)).max(10).optional(),
    publicKeyAlgorithm: z.number().int().optional(),
    publicKey: base64url(16_384).optional(),
  }),
});

export type Shaped<T> = { ok: true; response: T } | Refused;

/**
 * `malformed_response`, with where and how the shape is wrong in zod's issue
 * codes: nothing of the input itself.
 */
function malformed(error: z.ZodError): Refused {
  const issues = error.issues
    .slice(0, 5)
    .map((issue) => `${issue.path.join('.') || '(response)'}: ${issue.code}`)
    .join('; ');
  return refused('malformed_response', `response is malformed (${issues})`);
}

/** Checks a registration response's shape; the ceremony verifies its meaning. */
export function shapeRegistrationResponse(value: unknown): Shaped<RegistrationResponseJSON> {
  const result = RegistrationResponseShape.safeParse(value);
  // The transports are plain strings here, where the library's type lists the known ones.
  return result.success
    ? { ok: true, response: result.data as RegistrationResponseJSON }
    : malformed(result.error);
}

/** Checks an authentication response's shape; the ceremony verifies its meaning. */
export function shapeAuthenticationResponse(value: unknown): Shaped<AuthenticationResponseJSON> {
  const result = AuthenticationResponseShape.safeParse(value);
  return result.success ? { ok: true, response: result.data } : malformed(result.error);
}
