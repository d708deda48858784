/**
 * Authentication context classes Postern asserts, and what a request asks
 * for. `phrh` (phishing-resistant, hardware-protected: a device-bound passkey)
 * satisfies a request for `phr`; `0` is anything else. A request names its
 * wish with `acr_values`, an essential `acr` claim, or the client's
 * `default_acr_values`; oidc-provider treats these as advisory, so Postern
 * enforces them in the interaction policy and the login flow. This module
 * imports nothing, so src/config can read it without the OIDC stack.
 */

/** The classes Postern asserts (CONTRACT.md, Tokens), strongest first. The config schema reads them. */
export const ACR_VALUES = ['phrh', 'phr', '0'] as const;

export type Acr = (typeof ACR_VALUES)[number];

const STRENGTH: Record<Acr, number> = { '0': 0, phr: 1, phrh: 2 };

export function isAcr(value: unknown): value is Acr {
  return (ACR_VALUES as readonly unknown[]).includes(value);
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

/** The classes an essential `acr` claim asks for; anything malformed counts as nothing asked. */
function essentialClaimValues(claims: unknown): unknown[] {
  if (typeof claims !== 'string') return [];
  try {
    const acr = (JSON.parse(claims) as { id_token?: { acr?: unknown } } | null)?.id_token?.acr;
    if (!acr || typeof acr !== 'object') return [];
    const { essential, value, values } = acr as { essential?: unknown; value?: unknown; values?: unknown };
    if (essential !== true) return [];
    if (Array.isArray(values)) return values;
    return value === undefined ? [] : [value];
  } catch {
    return []; // oidc-provider has already refused a claims parameter that is not JSON
  }
}

const known = (values: readonly unknown[]): Acr[] => values.filter(isAcr);

/**
 * The classes the request names that Postern knows, in its order of
 * preference: an essential `acr` claim's, else `acr_values`, else the
 * client's `default_acr_values`. A source naming none Postern knows is
 * skipped (unknown values are advisory).
 */
export function requestedAcrValues({ acrValues, claims, defaultAcrValues }: AcrRequestSources): Acr[] {
  const fromValues = typeof acrValues === 'string' ? acrValues.trim().split(/\s+/) : [];
  for (const source of [essentialClaimValues(claims), fromValues, defaultAcrValues ?? []]) {
    const values = known(source);
    if (values.length > 0) return values;
  }
  return [];
}

/** The weakest class of `values`, when all of them demand more than `0`. */
function floorOf(values: readonly Acr[]): Exclude<Acr, '0'> | undefined {
  if (values.length === 0 || values.includes('0')) return undefined;
  return values.includes('phr') ? 'phr' : 'phrh';
}

/**
 * The weakest class the login must reach; undefined when anything will do.
 * The request's demand (essential `acr` claim, else `acr_values`) and the
 * client's `default_acr_values` are both floors: a request can raise what the
 * operator configured for the app, never lower it.
 */
export function requiredAcr({
  acrValues,
  claims,
  defaultAcrValues,
}: AcrRequestSources): Exclude<Acr, '0'> | undefined {
  const request = floorOf(requestedAcrValues({ acrValues, claims }));
  const client = floorOf(known(defaultAcrValues ?? []));
  if (request === 'phrh' || client === 'phrh') return 'phrh';
  return request ?? client;
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
