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
 * The classes the request names, in its order of preference, that Postern
 * knows: an essential `acr` claim's values, else `acr_values`, else the
 * client's `default_acr_values`. Empty when it names none Postern knows
 * (unknown values are advisory).
 */
export function requestedAcrValues({ acrValues, claims, defaultAcrValues }: AcrRequestSources): Acr[] {
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
  return (requested ?? []).filter(isAcr);
}

/**
 * The weakest class the request accepts, when it demands more than `0`;
 * undefined when anything will do (nothing asked, `0` accepted, or only values
 * Postern does not know).
 */
export function requiredAcr(sources: AcrRequestSources): Exclude<Acr, '0'> | undefined {
  const known = requestedAcrValues(sources);
  if (known.length === 0 || known.includes('0')) return undefined;
  return known.includes('phr') ? 'phr' : 'phrh';
}

/**
 * The `acr` to assert for a login at `performed`: the first requested class
 * it satisfies (OIDC Core §5.5.1.1: an essential acr request is answered with
 * one of its values), else what was performed. A device-bound passkey asked
 * for `phr` says `phr`, which is true of it; nothing ever says more than was
 * done.
 */
export function acrClaimFor(performed: Acr, requested: readonly Acr[]): Acr {
  return requested.find((value) => acrMeets(performed, value)) ?? performed;
}
