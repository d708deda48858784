/**
 * Creation options for a new passkey (https://www.w3.org/TR/webauthn-3/#sctn-registering-a-new-credential).
 * Smart pools require a discoverable credential (usernameless sign-in needs
 * one); classic pools prefer one. `excludeCredentials` lists the user's
 * existing passkeys so one authenticator cannot register twice.
 */
import {
  generateRegistrationOptions,
  type PublicKeyCredentialCreationOptionsJSON,
} from '@simplewebauthn/server';
import type { PasskeyPolicy } from './passkey-policy.ts';

export interface BeginRegistrationOptions {
  policy: PasskeyPolicy;
  user: {
    /** base64url WebAuthn user handle (random, per pool; never the account id). */
    webauthnUserId: string;
    /** Shown by the authenticator to pick this account: the email. */
    name: string;
    /** (Optional) The user's name. Defaults to `name`. */
    displayName?: string;
  };
  /** (Optional) The user's existing passkeys. Defaults to none. */
  existing?: ReadonlyArray<{ credentialId: string; transports: readonly string[] }>;
  /**
   * (Optional) For conditional create (`mediation: 'conditional'`), where the
   * password manager makes the passkey without asking: user verification can
   * only be preferred. Defaults to false.
   * https://w3c.github.io/webauthn/#sctn-createCredential (conditional mediation)
   */
  conditional?: boolean;
}

export function beginRegistration({
  policy,
  user,
  existing = [],
  conditional = false,
}: BeginRegistrationOptions): Promise<PublicKeyCredentialCreationOptionsJSON> {
  const discoverable = policy.mode === 'smart';
  return generateRegistrationOptions({
    rpName: policy.rpName,
    rpID: policy.rpId,
    userName: user.name,
    userDisplayName: user.displayName ?? user.name,
    userID: Buffer.from(user.webauthnUserId, 'base64url'),
    timeout: policy.timeoutSeconds * 1000,
    attestationType: policy.attestation,
    excludeCredentials: existing.map((passkey) => ({
      id: passkey.credentialId,
      transports: [...passkey.transports],
    })),
    authenticatorSelection: {
      residentKey: discoverable ? 'required' : 'preferred',
      requireResidentKey: discoverable,
      userVerification: conditional ? 'preferred' : policy.userVerification,
      ...(policy.authenticatorAttachment ? { authenticatorAttachment: policy.authenticatorAttachment } : {}),
    },
    supportedAlgorithmIDs: policy.algorithmIds,
    // credProps tells whether the credential is discoverable (https://www.w3.org/TR/webauthn-3/#sctn-authenticator-credential-properties-extension).
    extensions: { credProps: true },
  });
}
