/**
 * Request options for signing in (https://www.w3.org/TR/webauthn-3/#sctn-verifying-assertion).
 * Before the user gives an email, smart pools send an empty allowCredentials
 * (the authenticator offers its discoverable passkeys, also in autofill); once
 * they have (classic pools always ask first), the options list that user's
 * credentials, or decoys when there is no such user (./decoy-credentials.ts).
 */
import {
  generateAuthenticationOptions,
  type PublicKeyCredentialRequestOptionsJSON,
} from '@simplewebauthn/server';
import type { PasskeyPolicy } from './passkey-policy.ts';

export interface BeginAuthenticationOptions {
  policy: PasskeyPolicy;
  /** (Optional) Credentials to allow. Defaults to none: any discoverable passkey. */
  allowCredentials?: ReadonlyArray<{ credentialId: string; transports: readonly string[] }>;
}

export function beginAuthentication({
  policy,
  allowCredentials = [],
}: BeginAuthenticationOptions): Promise<PublicKeyCredentialRequestOptionsJSON> {
  return generateAuthenticationOptions({
    rpID: policy.rpId,
    allowCredentials: allowCredentials.map((credential) => ({
      id: credential.credentialId,
      transports: [...credential.transports],
    })),
    userVerification: policy.userVerification,
    timeout: policy.timeoutSeconds * 1000,
  });
}
