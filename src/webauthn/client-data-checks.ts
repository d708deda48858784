/**
 * What the client data says about where a ceremony ran, checked beyond what
 * SimpleWebAuthn checks. Postern's pages never run in a frame (CSP
 * `frame-ancestors 'none'`), so a ceremony that reports one ran cross-origin
 * or names a top origin came from someone else's page embedding an allowed
 * origin, and is refused. The library only checks `topOrigin` when a browser
 * sends it, and not at all for registrations.
 * https://www.w3.org/TR/webauthn-3/#dom-collectedclientdata-crossorigin
 */
import { decodeClientDataJSON } from '@simplewebauthn/server/helpers';
import { type Refused, refused } from './ceremony-refusals.ts';

/** Why to refuse (`cross_origin`), or undefined when the ceremony ran in a top-level page. */
export function crossOriginProblem(clientDataJSON: string): Refused | undefined {
  let clientData: { crossOrigin?: unknown; topOrigin?: unknown };
  try {
    clientData = decodeClientDataJSON(clientDataJSON);
  } catch {
    return refused('malformed_response', 'client data is not JSON');
  }
  if (clientData.crossOrigin === true)
    return refused('cross_origin', 'ceremony ran in a cross-origin frame (crossOrigin: true)');
  if (clientData.topOrigin !== undefined)
    return refused('cross_origin', `ceremony names a top origin (${String(clientData.topOrigin)})`);
  return undefined;
}
