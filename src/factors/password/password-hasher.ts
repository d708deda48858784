/**
 * Password hashing with argon2id (RFC 9106) at the pool's parameters
 * (defaults: OWASP's 19 MiB, 2 passes, 1 lane). Hashing runs off the event
 * loop in @node-rs/argon2's thread pool. A hash made with older parameters
 * still verifies; `needsRehash` tells when to upgrade it after a sign-in.
 */
import { hash, verify } from '@node-rs/argon2';

export interface Argon2Parameters {
  memoryKib: number;
  iterations: number;
  parallelism: number;
}

export function hashPassword(password: string, parameters: Argon2Parameters): Promise<string> {
  // @node-rs/argon2 hashes with argon2id by default (its Algorithm enum is type-only).
  return hash(password.normalize('NFKC'), {
    memoryCost: parameters.memoryKib,
    timeCost: parameters.iterations,
    parallelism: parameters.parallelism,
  });
}

/** False for a wrong password or a hash that does not parse; never throws for either. */
export async function verifyPassword(passwordHash: string, password: string): Promise<boolean> {
  try {
    return await verify(passwordHash, password.normalize('NFKC'));
  } catch {
    return false;
  }
}

/** Whether `passwordHash` was made with other parameters than the pool's current ones. */
export function needsRehash(
  passwordHash: string,
  { memoryKib, iterations, parallelism }: Argon2Parameters,
): boolean {
  return !passwordHash.startsWith(`$argon2id$v=19$m=${memoryKib},t=${iterations},p=${parallelism}$`);
}

const decoys = new Map<string, Promise<string>>();

/**
 * A hash to verify against when the account has no password (or does not
 * exist), so a wrong guess costs the same time either way.
 */
export function decoyHash(parameters: Argon2Parameters): Promise<string> {
  const key = `${parameters.memoryKib}:${parameters.iterations}:${parameters.parallelism}`;
  let decoy = decoys.get(key);
  if (!decoy) {
    decoy = hashPassword(`decoy-${Math.random()}`, parameters);
    decoys.set(key, decoy);
  }
  return decoy;
}
