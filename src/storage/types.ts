/**
 * The storage vocabulary (dex-style): small interfaces that every backend
 * implements and that test/storage/ checks with one conformance suite.
 *
 * - DurableStore: PostgreSQL through knex, or PGlite (the embedded default)
 *   through the same knex code.
 * - EphemeralStore: Redis, or an in-process memory store with the same
 *   semantics (TTL, atomic take, atomic increment).
 *
 * Everything is scoped by pool id; nothing one pool writes is visible to another.
 */

// ------------------------------------------------------------ oidc-provider

/** What oidc-provider hands its adapter: a JSON object with optional index fields. */
export interface OidcPayload {
  [key: string]: unknown;
  grantId?: string;
  uid?: string;
  userCode?: string;
  accountId?: string;
  /** Seconds since the epoch, set when the artifact was consumed. */
  consumed?: number;
}

/**
 * oidc-provider's adapter contract for one model of one pool
 * (https://github.com/panva/node-oidc-provider/blob/main/example/my_adapter.js),
 * with one strengthening: `consume` is atomic and reports whether this call
 * was the one that consumed it.
 */
export interface OidcModelStore {
  upsert(
    model: string,
    id: string,
    payload: OidcPayload,
    expiresInSeconds: number | undefined,
  ): Promise<void>;
  find(model: string, id: string): Promise<OidcPayload | undefined>;
  findByUid(model: string, uid: string): Promise<OidcPayload | undefined>;
  findByUserCode(model: string, userCode: string): Promise<OidcPayload | undefined>;
  /**
   * Marks the artifact consumed. Returns true for exactly one caller; false when
   * it was already consumed or does not exist. Two concurrent calls: one true.
   */
  consume(model: string, id: string): Promise<boolean>;
  destroy(model: string, id: string): Promise<void>;
  /** Removes every artifact of this model that belongs to the grant. */
  revokeByGrantId(model: string, grantId: string): Promise<void>;
  /**
   * This model's live artifacts whose payload names `accountId`, each with the
   * id it is stored under (what `destroy` takes): a user's sessions and grants,
   * for signing them out. In no particular order.
   */
  listByAccountId(model: string, accountId: string): Promise<StoredOidcArtifact[]>;
}

/** One stored artifact: the id it is stored under and its payload (as `find` returns it). */
export interface StoredOidcArtifact {
  id: string;
  payload: OidcPayload;
}

// ---------------------------------------------------------------- ephemeral

export interface RateLimitRule {
  /** Names the counter family, e.g. `email-code-send-ip`. */
  name: string;
  /** Attempts allowed per window. */
  points: number;
  windowSeconds: number;
}

export interface RateLimitDecision {
  allowed: boolean;
  remaining: number;
  /** The first refusal of its window: the moment a limit trips, worth recording once. */
  firstRefusal: boolean;
  /** When a refused caller may try again. */
  retryAfterSeconds: number;
}

export interface RateLimiter {
  /** Counts one attempt for `key` (atomically, across processes) and decides. */
  consume(key: string): Promise<RateLimitDecision>;
  /**
   * Whether `key` still has attempts left, without counting one: for limits
   * that count only failures, checked before the attempt and consumed after
   * a failed one. `allowed` is false once every point is used.
   */
  peek(key: string): Promise<RateLimitDecision>;
  /** Forgets `key`'s attempts, e.g. after a success. */
  reset(key: string): Promise<void>;
}

export interface EphemeralStore {
  /** Stores `value` under `key` for `ttlSeconds`, replacing what was there. */
  set(key: string, value: string, ttlSeconds: number): Promise<void>;
  /** Stores only when `key` is absent (or expired). Returns whether it stored. */
  setIfAbsent(key: string, value: string, ttlSeconds: number): Promise<boolean>;
  get(key: string): Promise<string | undefined>;
  /** Atomic get-and-delete: of concurrent takes of one key, exactly one gets the value. */
  take(key: string): Promise<string | undefined>;
  delete(key: string): Promise<void>;
  /**
   * Atomically adds 1 and returns the new count. The first increment creates the
   * counter with `ttlSeconds`; later ones keep its expiry (a fixed window).
   */
  increment(key: string, ttlSeconds: number): Promise<number>;
  /** oidc-provider's short-lived models (sessions, interactions, codes, access tokens, PAR). */
  oidcModels(poolId: string): OidcModelStore;
  /** A rate limiter whose counters live in this store (rate-limiter-flexible). */
  rateLimiter(rule: RateLimitRule): RateLimiter;
  /** Resolves when the store answers; throws StoreUnavailableError otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

// ------------------------------------------------------------------ durable

export interface User {
  id: string;
  poolId: string;
  /** Normalised: trimmed and lowercased. Unique in the pool. */
  email: string;
  emailVerified: boolean;
  name: string | null;
  /** The WebAuthn user handle: 32 random bytes, base64url; never the account id. */
  webauthnUserId: string;
  /** When the user last declined the offer to create a passkey. */
  enrollPromptedAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface NewUser {
  poolId: string;
  email: string;
  emailVerified?: boolean;
  name?: string | null;
  /** (Optional) The WebAuthn user handle, when a ceremony already used one (sign-up). Defaults to 32 random bytes. */
  webauthnUserId?: string;
  /** (Optional) An argon2id hash of the password chosen at sign-up. */
  passwordHash?: string;
}

/** A user and the counts of what they enrolled. */
export interface Account {
  user: User;
  passkeys: number;
  unusedRecoveryCodes: number;
  hasPassword: boolean;
  /** Whether the user has enrolled a TOTP (TotpRepository). */
  hasTotp: boolean;
  /** The organizations of the pool the user belongs to, by slug. */
  organizations: Organization[];
}

export interface UserRepository {
  /** @throws {UniqueViolationError} when the email is taken in the pool. */
  create(user: NewUser): Promise<User>;
  /**
   * Sign-up in one transaction: the user and their first passkey both land, or
   * neither. With `maxPerPool`, the pool's passkeys are counted in that
   * transaction under a pool-wide lock (see PasskeyRepository.create): at the
   * ceiling, no user is created either.
   * @throws {UniqueViolationError} when the email or the credential id is taken.
   * @throws {LimitExceededError} (scope `per_pool`) when the pool already stores `maxPerPool` passkeys.
   */
  createWithPasskey(
    user: NewUser,
    passkey: Omit<NewPasskey, 'userId' | 'poolId'>,
    options?: {
      /** (Optional) Most passkeys the pool may store. Defaults to no ceiling (nothing counted, no lock). */
      maxPerPool?: number;
    },
  ): Promise<{ user: User; passkey: Passkey }>;
  findById(poolId: string, id: string): Promise<User | undefined>;
  /** The user with what they have enrolled, in one query: what a login step is decided on. */
  findAccount(poolId: string, id: string): Promise<Account | undefined>;
  findByEmail(poolId: string, email: string): Promise<User | undefined>;
  findByWebauthnUserId(poolId: string, webauthnUserId: string): Promise<User | undefined>;
  /** The user's password hash; undefined when they have none (or do not exist). */
  getPasswordHash(poolId: string, userId: string): Promise<string | undefined>;
  /** Sets or replaces the password hash. Returns false when there is no such user. */
  setPasswordHash(poolId: string, userId: string, hash: string): Promise<boolean>;
  /** Records that the user declined the passkey offer at `at`. */
  recordEnrollPrompt(poolId: string, userId: string, at: Date): Promise<void>;
  /**
   * One page of the pool's users, by id ascending: those whose id comes after
   * `after` (an exclusive cursor: the last id of the previous page; omitted
   * for the first page), at most `limit`. An `after` that is not a user id
   * matches nothing: an empty page, not an error.
   */
  list(poolId: string, page: { after?: string; limit: number }): Promise<User[]>;
  /**
   * Erases the user and everything durable that is theirs, in one transaction:
   * the user (with the password hash), their passkeys, recovery codes and TOTP, and
   * their oidc-provider grants and refresh tokens. Their audit events stay:
   * the trail outlives the users it describes. Returns false when there is no
   * such user in the pool (or `id` is not a user id).
   */
  delete(poolId: string, id: string): Promise<boolean>;
}

export interface RecoveryCodeRepository {
  /** Replaces the user's codes with `hashes` in one transaction: the old set stops working. */
  replace(poolId: string, userId: string, hashes: string[]): Promise<void>;
  /**
   * Uses the unused code with `hash`: returns how many unused codes remain, or
   * undefined when none matched. Of concurrent uses of one code, exactly one
   * gets a number.
   */
  use(poolId: string, userId: string, hash: string): Promise<number | undefined>;
  countUnused(poolId: string, userId: string): Promise<number>;
}

/** A user's TOTP second factor (RFC 6238): one per user. */
export interface TotpCredential {
  poolId: string;
  userId: string;
  /** Sealed by the layer above (src/secrets/secret-box.ts); storage never sees the secret. */
  sealedSecret: string;
  createdAt: Date;
  /** The time step last accepted; a code of this step or an earlier one is a replay. */
  lastUsedStep: number | null;
}

export interface TotpRepository {
  /** The user's TOTP, if enrolled. Undefined for a non-uuid id. */
  find(poolId: string, userId: string): Promise<TotpCredential | undefined>;
  /**
   * Enrols the user's TOTP, replacing any earlier one (its last used step
   * too: `lastUsedStep` given here, usually the step of the code that
   * confirmed the enrolment). False when the pool has no such user.
   */
  set(poolId: string, userId: string, sealedSecret: string, lastUsedStep: number | null): Promise<boolean>;
  /**
   * Records that a code of time step `step` was accepted, only if no equal or
   * later step was (one atomic compare-and-set UPDATE ... WHERE
   * last_used_step IS NULL OR last_used_step < step). False for a replay or
   * when there is no TOTP: of two concurrent uses of one code exactly one
   * gets true.
   */
  recordUse(poolId: string, userId: string, step: number): Promise<boolean>;
  /** Removes the user's TOTP. False when there was none. */
  delete(poolId: string, userId: string): Promise<boolean>;
}

export interface Passkey {
  id: string;
  poolId: string;
  userId: string;
  /** base64url credential id, unique in the pool. */
  credentialId: string;
  publicKey: Uint8Array;
  counter: number;
  transports: string[];
  aaguid: string;
  backupEligible: boolean;
  backupState: boolean;
  /** Whether registration was verified with user verification. */
  uvInitialized: boolean;
  attestationFormat: string;
  name: string;
  /**
   * Whether it is a discoverable credential (a resident key), which can sign
   * in without a username; null when unknown (the browser did not say, and
   * the pool did not require one). Registration decides it: finish-registration.ts.
   */
  discoverable: boolean | null;
  createdAt: Date;
  lastUsedAt: Date | null;
}

export type NewPasskey = Omit<Passkey, 'id' | 'createdAt' | 'lastUsedAt'>;

export interface PasskeyRepository {
  /**
   * Adds a passkey. With `maxPerUser`, the count and the insert happen in one
   * transaction that locks the user's row; with `maxPerPool`, in one that
   * holds a pool-wide lock, so concurrent registrations cannot exceed either.
   * Without them nothing is counted or locked.
   * @throws {UniqueViolationError} when the credential id exists in the pool.
   * @throws {LimitExceededError} scope `per_user` when the user already has
   *   `maxPerUser` passkeys, `per_pool` when the pool already stores `maxPerPool`.
   */
  create(
    passkey: NewPasskey,
    options?: {
      /** (Optional) Most passkeys the user may have. Defaults to no limit. */
      maxPerUser?: number;
      /** (Optional) Most passkeys the pool may store. Defaults to no ceiling. */
      maxPerPool?: number;
    },
  ): Promise<Passkey>;
  findByCredentialId(poolId: string, credentialId: string): Promise<Passkey | undefined>;
  /** The passkey with its owner and what the owner enrolled, in one query: what a passkey sign-in reads. */
  findWithOwner(
    poolId: string,
    credentialId: string,
  ): Promise<{ passkey: Passkey; owner: Account } | undefined>;
  listByUser(poolId: string, userId: string): Promise<Passkey[]>;
  countByUser(poolId: string, userId: string): Promise<number>;
  /**
   * Records a successful assertion: new counter, backup state and last use,
   * only while the stored counter is still `previousCounter` (compare and
   * set). False when another assertion moved it first: of two concurrent
   * uses of one counter value, one is recorded.
   */
  recordUse(
    id: string,
    use: { previousCounter: number; counter: number; backupState: boolean; usedAt: Date },
  ): Promise<boolean>;
  rename(poolId: string, userId: string, id: string, name: string): Promise<boolean>;
  delete(poolId: string, userId: string, id: string): Promise<boolean>;
}

export type SigningAlgorithm = 'ES256' | 'RS256';

export interface SigningKeyRecord {
  poolId: string;
  kid: string;
  alg: SigningAlgorithm;
  /** The private JWK, encrypted by the layer above; storage never sees it in clear. */
  encryptedJwk: string;
  createdAt: Date;
  /**
   * When it stops signing, replaced by a newer key of the same algorithm
   * (which signs from then on); null while no newer key exists. May lie in
   * the future: a rotation publishes the new key at once and switches later.
   */
  retiredAt: Date | null;
}

export interface SigningKeyRepository {
  /** Every key of the pool, newest first. */
  list(poolId: string): Promise<SigningKeyRecord[]>;
  /**
   * Adds keys in one transaction and retires the pool's keys of the same
   * algorithms that have no retirement yet, as of `retireReplacedAt` (default:
   * each new key's creation). `onlyIfNone`: add nothing when the pool already
   * has keys (first start racing another process); returns whether anything
   * was added.
   */
  add(
    poolId: string,
    keys: SigningKeyRecord[],
    options?: { onlyIfNone?: boolean; retireReplacedAt?: Date },
  ): Promise<boolean>;
  /** Deletes retired keys retired before `before`. Returns how many went. */
  deleteRetiredBefore(poolId: string, before: Date): Promise<number>;
}

export interface AuditEvent {
  poolId: string;
  event: string;
  outcome: 'success' | 'failure';
  userId?: string | null;
  credentialId?: string | null;
  ip?: string | null;
  userAgent?: string | null;
  /** Log-only detail (never shown to users); no secrets. */
  detail?: Record<string, unknown> | null;
}

export interface StoredAuditEvent extends Required<AuditEvent> {
  id: number;
  occurredAt: Date;
}

export interface AuditEventRepository {
  append(event: AuditEvent): Promise<void>;
  /** Several events in one statement (a request's audit rows, written together). */
  appendMany(events: readonly AuditEvent[]): Promise<void>;
  /**
   * Newest first. `before`: only events whose id is below it (an exclusive
   * cursor: the last id of the previous page), for paging back in time.
   */
  list(
    poolId: string,
    filter?: { userId?: string; event?: string; limit?: number; before?: number },
  ): Promise<StoredAuditEvent[]>;
}

/** A one-time link for a user to create a passkey (src/enrollment/). */
export interface EnrollmentLink {
  /** SHA-256 of the link's token, hex: the token itself is never stored. */
  tokenHash: string;
  poolId: string;
  userId: string;
  /** Who issued it: `admin:{client_id}` or `cli`. */
  createdBy: string;
  createdAt: Date;
  expiresAt: Date;
  usedAt: Date | null;
}

export type EnrollmentRedemption =
  | { ok: true; passkey: Passkey }
  /** Unknown in the pool, or replaced by a newer link. */
  | { ok: false; reason: 'not_found' | 'used' | 'expired' };

export interface EnrollmentLinkRepository {
  /** Issues the user's link, replacing any earlier one (used or not). False when the pool has no such user. */
  issue(link: {
    poolId: string;
    userId: string;
    tokenHash: string;
    expiresAt: Date;
    createdBy: string;
  }): Promise<boolean>;
  /** The link with this token hash in the pool: used or not, expired or not. */
  find(poolId: string, tokenHash: string): Promise<EnrollmentLink | undefined>;
  /**
   * Redeems the link with the user's new passkey, in one transaction: only
   * while it is unused and unexpired at `now`, stores the passkey (within
   * the limits), marks the link used and the user's email verified.
   * @throws {UniqueViolationError} when the credential is registered in the pool.
   * @throws {LimitExceededError} at the user's or the pool's passkey limit.
   */
  redeem(
    poolId: string,
    tokenHash: string,
    redemption: {
      now: Date;
      passkey: Omit<NewPasskey, 'poolId' | 'userId'>;
      maxPerUser?: number;
      maxPerPool?: number;
    },
  ): Promise<EnrollmentRedemption>;
}

/** An organization inside a pool: a customer of a B2B app, with login settings that tighten the pool's. */
export interface Organization {
  id: string;
  poolId: string;
  /** The operator's handle, unique in the pool: lowercase letters, digits, `-`. */
  slug: string;
  name: string;
  /** false: its members sign in and enrol without passkeys while in it. */
  passkeyLogin: boolean;
  /** true: its members always complete two factors (or one passkey with UV, where the pool counts that). */
  requireMfa: boolean;
  /** The first factors its members may use (factor names, a subset of the pool's); null: the pool's. */
  allowedFirstFactors: string[] | null;
  createdAt: Date;
  updatedAt: Date;
}

export type NewOrganization = Pick<Organization, 'poolId' | 'slug' | 'name'> &
  Partial<Pick<Organization, 'passkeyLogin' | 'requireMfa' | 'allowedFirstFactors'>>;

export type OrganizationChanges = Partial<
  Pick<Organization, 'slug' | 'name' | 'passkeyLogin' | 'requireMfa' | 'allowedFirstFactors'>
>;

/** A member as the admin API lists them. */
export interface OrganizationMember {
  userId: string;
  email: string;
  /** When the user was added. */
  addedAt: Date;
}

export interface OrganizationRepository {
  /** @throws {UniqueViolationError} `organizations_pool_id_slug_unique` when the slug is taken in the pool. */
  create(organization: NewOrganization): Promise<Organization>;
  /** By id, or by slug when `idOrSlug` is no uuid. */
  find(poolId: string, idOrSlug: string): Promise<Organization | undefined>;
  /** One page by id ascending, after the exclusive cursor `after` (see UserRepository.list). */
  list(poolId: string, page: { after?: string; limit: number }): Promise<Organization[]>;
  /**
   * Applies `changes` and returns the organization as it now is; undefined when there is none.
   * @throws {UniqueViolationError} when a new slug is taken.
   */
  update(poolId: string, id: string, changes: OrganizationChanges): Promise<Organization | undefined>;
  /** Deletes it with its memberships and grant records. False when there was none. */
  delete(poolId: string, id: string): Promise<boolean>;
  /**
   * Adds a user of the pool to the organization: `added`, `already` a member,
   * or `not_found` when either is not in the pool. One statement: a user or
   * organization deleted meanwhile adds nothing.
   */
  addMember(
    poolId: string,
    organizationId: string,
    userId: string,
  ): Promise<'added' | 'already' | 'not_found'>;
  /** False when the user was no member. */
  removeMember(poolId: string, organizationId: string, userId: string): Promise<boolean>;
  /** One page of members by user id ascending, after the exclusive cursor `after`. */
  listMembers(
    poolId: string,
    organizationId: string,
    page: { after?: string; limit: number },
  ): Promise<OrganizationMember[]>;
  /** The organizations of the pool the user belongs to, by slug (what Account.organizations holds). */
  listForUser(poolId: string, userId: string): Promise<Organization[]>;
  /**
   * Records the organization a grant's login was for, replacing an earlier
   * one, in one transaction; null forgets it. Only for a member of the
   * organization (of this pool): otherwise the grant keeps no record and the
   * answer is false.
   */
  setGrantOrganization(
    poolId: string,
    grantId: string,
    membership: { organizationId: string; userId: string } | null,
  ): Promise<boolean>;
  /** The organization recorded for the grant, if it still exists. */
  organizationOfGrant(poolId: string, grantId: string): Promise<Organization | undefined>;
}

export interface MigrationResult {
  /** Names of the migrations this call applied; empty when already up to date. */
  applied: string[];
}

/** A refresh token spent for its successor (ids as the adapter stores them). */
export interface RefreshRotation {
  spentId: string;
  successorId: string;
  successor: OidcPayload;
  expiresInSeconds?: number;
}

export interface DurableStore {
  readonly kind: 'postgres' | 'pglite';
  users: UserRepository;
  passkeys: PasskeyRepository;
  recoveryCodes: RecoveryCodeRepository;
  totp: TotpRepository;
  organizations: OrganizationRepository;
  enrollmentLinks: EnrollmentLinkRepository;
  signingKeys: SigningKeyRepository;
  auditEvents: AuditEventRepository;
  /** Long-lived oidc-provider models: Grant and RefreshToken. */
  oidcModels(poolId: string): OidcModelStore;
  /**
   * Rotates a refresh token in one atomic step: marks the spent one consumed
   * and stores its successor, or does neither when the spent one was already
   * consumed, has expired or is gone (a concurrent or replayed refresh).
   * @returns whether the successor was stored.
   */
  rotateRefreshToken(poolId: string, rotation: RefreshRotation): Promise<boolean>;
  /** Applies pending migrations; safe when several processes run it at once. */
  migrate(): Promise<MigrationResult>;
  /** Names of migrations not yet applied. */
  pendingMigrations(): Promise<string[]>;
  /** Deletes expired oidc-provider rows. Returns how many went. */
  sweepExpired(now?: Date): Promise<number>;
  ping(): Promise<void>;
  close(): Promise<void>;
}
