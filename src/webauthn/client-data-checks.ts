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

/** A reason to refuse, or undefined when the ceremony ran in a top-level page. */
export function crossOriginProblem(clientDataJSON: string): string | undefined {
  let clientData: { crossOrigin?: unknown; topOrigin?: unknown };
  try {
    clientData = decodeClientDataJSON(clientDataJSON);
  } catch {
    return 'client data is not JSON';
  }
  if (clientData.crossOrigin === true) return 'ceremony ran in a cross-origin frame (crossOrigin: true)';
  if (clientData.topOrigin !== undefined)
    return `ceremony names a top origin (${String(clientData.topOrigin)})`;
  return undefined;
}
