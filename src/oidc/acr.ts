/**
 * Authentication context classes Postern asserts, and what a request asks
 * for. `phrh` (phishing-resistant, hardware-protected: a device-bound passkey)
 * satisfies a request for `phr`; `0` is anything else. A request names its
 * wish with `acr_values`, an essential `acr` claim, or the client's
 * `default_acr_values`; oidc-provider treats these as advisory, so Postern
 * enforces them in the interaction policy and the login flow.
 */
export type Acr = 'phrh' | 'phr' | '0';

const STRENGTH: Record<Acr, number> = { '0': 0, phr: 1, phrh: 2 };

export function isAcr(value: unknown): value is Acr {
  return value === 'phrh' || value === 'phr' || value === '0';
}

/** Whether a login at `actual` satisfies `required`. */
export function acrMeets(actual: string | undefined, required: Acr): boolean {
  return isAcr(actual) && STRENGTH[actual] >= STRENGTH[required];
}

export interface AcrRequestSources {
  /** The request's `acr_values` (space-separated). */
  acrValues?: unknown;
  /** The request's `claims` parameter (JSON string), for an essential id_token acr. */
  claims?: unknown;
  /** The client's `default_acr_values`. */
  defaultAcrValues?: readonly string[];
}

/**
 * The weakest class the request accepts, when it demands more than `0`;
 * undefined when anything will do (nothing asked, `0` accepted, or only values
 * Postern does not know, which are advisory).
 */
export function requiredAcr({
  acrValues,
  claims,
  defaultAcrValues,
}: AcrRequestSources): Exclude<Acr, '0'> | undefined {
  let requested: string[] | undefined;
  if (typeof claims === 'string') {
    try {
      const acr = (
        JSON.parse(claims) as {
          id_token?: { acr?: { essential?: boolean; value?: string; values?: string[] } };
        }
      ).id_token?.acr;
      if (acr?.essential) requested = acr.values ?? (acr.value ? [acr.value] : undefined);
    } catch {
      // oidc-provider has already refused a malformed claims parameter.
    }
  }
  if (!requested && typeof acrValues === 'string' && acrValues.trim())
    requested = acrValues.trim().split(/\s+/);
  if (!requested && defaultAcrValues?.length) requested = [...defaultAcrValues];
  const known = (requested ?? []).filter(isAcr);
  if (known.length === 0 || known.includes('0')) return undefined;
  return known.includes('phr') ? 'phr' : 'phrh';
}
