/**
 * Each pool's WebAuthn policy (src/webauthn/passkey-policy.ts), made once per
 * pool and shared by every flow that runs a ceremony, instead of one cache per
 * flow; and whether the pool uses passkeys at all. Keyed by the pool's config object (frozen at load), so the cache keeps
 * nothing alive that no pool uses any more.
 */
import type { PoolConfig } from '../config/types.ts';
import { createPasskeyPolicy, type PasskeyPolicy } from '../webauthn/passkey-policy.ts';

const policies = new WeakMap<PoolConfig, PasskeyPolicy>();

export function policyOf(pool: PoolConfig): PasskeyPolicy {
  let policy = policies.get(pool);
  if (!policy) {
    policy = createPasskeyPolicy(pool);
    policies.set(pool, policy);
  }
  return policy;
}

/**
 * Whether the pool uses passkeys at all: switched on (`passkeys.enabled`) and
 * listed as a first or second factor. Where not, no passkey is offered,
 * asked for or registered by any flow; stored ones stay for when it does.
 */
export function passkeysInUse(pool: PoolConfig): boolean {
  const { first_factor, second_factor } = pool.authentication;
  return pool.passkeys.enabled && (first_factor.includes('passkey') || second_factor.includes('passkey'));
}
