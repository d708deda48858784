/**
 * Authorization and PAR parameters must be text every store can keep. What a
 * request asks for travels on: `nonce`, `claims`, `acr_values` and the rest
 * go into the interaction, the code and then the refresh token and grant,
 * which PostgreSQL keeps as jsonb, and jsonb refuses U+0000 and unpaired
 * surrogates. Let through, `nonce=%00` or `claims` with `"\ud800"` signed the
 * user in and then failed at /token with a 500 (issue 8, item 11).
 *
 * A plain parameter cannot carry an unpaired surrogate (a query or form body
 * percent-encodes UTF-8, and bytes that are not UTF-8 decode to U+FFFD), but
 * any can carry U+0000; `claims` is JSON, whose `\u` escapes can spell both.
 *
 * Checked inside oidc-provider, from the extraParams validators it runs on
 * every authorization and PAR request (lib/actions/authorization, after the
 * client and redirect_uri are checked, before anything is stored): the
 * refusal is its own invalid_request, redirected to the app or answered as
 * JSON at the PAR endpoint, as OAuth says (RFC 6749 §4.1.2.1, RFC 9126 §2.3).
 */
import { errors, type KoaContextWithOIDC } from 'oidc-provider';

/** An unpaired surrogate: with the u flag, a paired one is one code point and does not match. */
const LONE_SURROGATE = /\p{Cs}/u;

const unstorable = (text: string) => text.includes('\u0000') || LONE_SURROGATE.test(text);

/**
 * @throws {errors.InvalidRequest} when a parameter, or a string or key of the
 * `claims` JSON, holds U+0000 or an unpaired surrogate.
 */
export function assertStorableParams(ctx: KoaContextWithOIDC): void {
  const params = (ctx.oidc.params ?? {}) as Record<string, unknown>;
  for (const [name, value] of Object.entries(params)) {
    if (typeof value === 'string' && unstorable(value)) throw refused(name);
  }
  if (typeof params.claims === 'string') {
    let claims: unknown;
    try {
      claims = JSON.parse(params.claims);
    } catch {
      // Not JSON: oidc-provider's own check of claims refuses it.
      return;
    }
    if (!wellFormed(claims)) throw refused('claims');
  }
}

function refused(name: string) {
  return new errors.InvalidRequest(`${name} must not contain U+0000 or text that is not well-formed Unicode`);
}

/** Every string and key of a JSON value is storable. Iterative: JSON can nest deeper than the stack. */
function wellFormed(root: unknown): boolean {
  const pending: unknown[] = [root];
  while (pending.length > 0) {
    const value = pending.pop();
    if (typeof value === 'string') {
      if (unstorable(value)) return false;
    } else if (typeof value === 'object' && value !== null) {
      for (const [key, item] of Object.entries(value)) {
        if (unstorable(key)) return false;
        pending.push(item);
      }
    }
  }
  return true;
}
