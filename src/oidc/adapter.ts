/**
 * oidc-provider's storage adapter for one pool. Grants and refresh tokens must
 * survive restarts and failover, so they go to the durable store; everything
 * short-lived (sessions, interactions, codes, access tokens, PAR) goes to the
 * ephemeral store (DESIGN.md, "Where data lives").
 *
 * `consume` is atomic in both stores (a refresh token's, with its successor:
 * PendingRotation below). oidc-provider checks `consumed` and then
 * consumes, which lets two concurrent redemptions of one code both pass the
 * check; here the loser fails with invalid_grant and, as for any reuse of a
 * code or rotated refresh token, the grant is revoked (RFC 6749 §4.1.2,
 * RFC 9700 §4.14.2).
 *
 * Bearer tokens are stored under a hash of their value (RFC 6819 §5.1.4.1.3):
 * oidc-provider's opaque token *is* its id (the `jti`), passed both as the
 * adapter's id and inside the payload, so a store holding the id would hold a
 * working credential. Here the key is sha256(id) and the payload has no `jti`;
 * `find` puts back the id its caller already holds. Anyone who reads the
 * stores (a backup, a replica, a Redis snapshot) gets no usable token. Which
 * models are hashed, and why the others are not: HASHED_MODELS.
 */
import { createHash } from 'node:crypto';
import { errors, Provider } from 'oidc-provider';
import type { DurableStore, EphemeralStore, OidcModelStore, OidcPayload } from '../storage/types.ts';

const DURABLE_MODELS = new Set(['Grant', 'RefreshToken']);

/** Models that carry a grantId and die with their grant. */
const GRANT_BOUND_MODELS = [
  'AccessToken',
  'AuthorizationCode',
  'RefreshToken',
  'DeviceCode',
  'BackchannelAuthenticationRequest',
];

/** Reuse of these means a leaked or replayed credential: revoke what it granted. */
const REVOKE_ON_REPLAY = new Set(['AuthorizationCode', 'RefreshToken']);

/**
 * Models whose id is a bearer credential a client presents: the refresh token
 * (durable, two weeks, alone enough for a public client), the access token
 * (it opens userinfo and the self-service API, which can add a passkey), the
 * client-credentials token, and the authorization code. Hashing costs a
 * microsecond a lookup.
 *
 * Not hashed, on purpose:
 * - Session and Interaction: their ids travel in cookies that oidc-provider
 *   signs with the pool's cookie keys (kept encrypted in the database), so an
 *   id read from Redis is not a cookie anyone can present; and oidc-provider
 *   finds sessions by `uid` too, which needs the id in the payload.
 * - Grant: its id is a reference inside tokens and sessions, never presented
 *   by anyone as a credential.
 * - PushedAuthorizationRequest (`request_uri` travels in the browser's URL),
 *   ReplayDetection, and DeviceCode and BackchannelAuthenticationRequest
 *   (disabled; DeviceCode is also found by user code).
 *
 * migrations/0003_hash_token_ids.ts rewrote the rows stored before.
 */
const HASHED_MODELS = new Set(['AccessToken', 'AuthorizationCode', 'ClientCredentials', 'RefreshToken']);

/**
 * The key an artifact is stored under: for bearer tokens the hex SHA-256 of
 * the id (a plain hash suffices: ids carry 256 random bits, nothing to guess;
 * and SQL can compute it, so a migration could rewrite old rows), otherwise
 * the id itself.
 */
export function storedIdOf(model: string, id: string): string {
  return HASHED_MODELS.has(model) ? createHash('sha256').update(id, 'utf8').digest('hex') : id;
}

export interface AdapterStores {
  durable: Pick<DurableStore, 'oidcModels' | 'rotateRefreshToken'>;
  ephemeral: Pick<EphemeralStore, 'oidcModels'>;
}

export type AdapterClass = new (
  model: string,
) => {
  upsert(id: string, payload: OidcPayload, expiresIn?: number): Promise<void>;
  find(id: string): Promise<OidcPayload | undefined>;
  findByUid(uid: string): Promise<OidcPayload | undefined>;
  findByUserCode(userCode: string): Promise<OidcPayload | undefined>;
  consume(id: string): Promise<void>;
  destroy(id: string): Promise<void>;
  revokeByGrantId(grantId: string): Promise<void>;
};

/** For one pool: the store that keeps a model's artifacts (durable for Grant and RefreshToken). */
export function oidcModelStoreFor(poolId: string, { durable, ephemeral }: AdapterStores) {
  const durableModels = durable.oidcModels(poolId);
  const ephemeralModels = ephemeral.oidcModels(poolId);
  return (model: string): OidcModelStore => (DURABLE_MODELS.has(model) ? durableModels : ephemeralModels);
}

/**
 * Revokes grants of one pool: the Grant and every artifact bound to it
 * (access tokens, codes, refresh tokens) in both stores. What the adapter does
 * when a code or refresh token is replayed, and what signing out elsewhere does.
 */
export function createGrantRevoker(
  poolId: string,
  stores: AdapterStores,
): (grantId: string) => Promise<void> {
  const storeFor = oidcModelStoreFor(poolId, stores);
  return async (grantId) => {
    await Promise.all([
      ...GRANT_BOUND_MODELS.map((model) => storeFor(model).revokeByGrantId(model, grantId)),
      storeFor('Grant').destroy('Grant', grantId),
    ]);
  };
}

/**
 * A refresh grant's rotation, held back until the request stores its access
 * token. oidc-provider consumes the old refresh token, saves the new one, then
 * saves the access token (Redis); a store failing in between left the old one
 * spent and the client with no successor, so the chain could never refresh
 * again (and a retry looked like a replay, revoking the grant). Here nothing
 * is written until the access token is stored; then the rotation is one
 * statement (DurableStore#rotateRefreshToken). A failure anywhere before
 * leaves the old token as it was, so the client's retry works.
 */
interface PendingRotation {
  spentKey: string;
  successor?: { key: string; payload: OidcPayload; expiresIn?: number };
}

/** By the request (oidc-provider's Koa context, Provider.ctx) that rotates. */
const pendingRotations = new WeakMap<object, PendingRotation>();

/** The refresh-token request being served, if this call comes from one. */
function refreshRequest(): object | undefined {
  const ctx = Provider.ctx as { oidc?: { params?: { grant_type?: unknown } } } | undefined;
  return ctx?.oidc?.params?.grant_type === 'refresh_token' ? ctx : undefined;
}

export function createAdapter(poolId: string, stores: AdapterStores): AdapterClass {
  const storeFor = oidcModelStoreFor(poolId, stores);
  const revokeGrant = createGrantRevoker(poolId, stores);

  /** Stores the held successor and spends the old token, after the access token is stored. */
  const completeRotation = async ({ spentKey, successor }: Required<PendingRotation>, grantId: unknown) => {
    const rotated = await stores.durable.rotateRefreshToken(poolId, {
      spentId: spentKey,
      successorId: successor.key,
      successor: successor.payload,
      expiresInSeconds: successor.expiresIn,
    });
    if (rotated) return;
    // Spent meanwhile by a concurrent refresh with the same token: a replay.
    // The grant goes, with the access token just stored.
    if (typeof grantId === 'string') await revokeGrant(grantId);
    throw new errors.InvalidGrant('grant request is invalid');
  };

  return class PosternAdapter {
    readonly #model: string;
    readonly #store: OidcModelStore;
    readonly #hashed: boolean;

    constructor(model: string) {
      this.#model = model;
      this.#store = storeFor(model);
      this.#hashed = HASHED_MODELS.has(model);
    }

    #key(id: string): string {
      return storedIdOf(this.#model, id);
    }

    async upsert(id: string, payload: OidcPayload, expiresIn?: number) {
      if (!this.#hashed) return this.#store.upsert(this.#model, id, payload, expiresIn);
      const { jti: _token, ...rest } = payload;
      const request = refreshRequest();
      const pending = request && pendingRotations.get(request);
      if (pending && this.#model === 'RefreshToken') {
        pending.successor = { key: this.#key(id), payload: rest, expiresIn };
        return;
      }
      await this.#store.upsert(this.#model, this.#key(id), rest, expiresIn);
      if (request && pending?.successor && this.#model === 'AccessToken') {
        pendingRotations.delete(request);
        await completeRotation({ spentKey: pending.spentKey, successor: pending.successor }, rest.grantId);
      }
    }

    async find(id: string) {
      const payload = await this.#store.find(this.#model, this.#key(id));
      // The caller holds the token; hand oidc-provider back the jti it stored.
      return payload && this.#hashed ? { ...payload, jti: id } : payload;
    }

    findByUid(uid: string) {
      return this.#store.findByUid(this.#model, uid);
    }

    findByUserCode(userCode: string) {
      return this.#store.findByUserCode(this.#model, userCode);
    }

    async consume(id: string) {
      const key = this.#key(id);
      const request = this.#model === 'RefreshToken' ? refreshRequest() : undefined;
      if (request) {
        pendingRotations.set(request, { spentKey: key });
        return;
      }
      if (await this.#store.consume(this.#model, key)) return;
      if (this.#model === 'PushedAuthorizationRequest') {
        throw new errors.InvalidRequestUri('request_uri is invalid, expired, or was already used');
      }
      if (REVOKE_ON_REPLAY.has(this.#model)) {
        const grantId = (await this.#store.find(this.#model, key))?.grantId;
        if (grantId) await revokeGrant(grantId);
      }
      throw new errors.InvalidGrant('grant request is invalid');
    }

    destroy(id: string) {
      return this.#store.destroy(this.#model, this.#key(id));
    }

    revokeByGrantId(grantId: string) {
      return this.#store.revokeByGrantId(this.#model, grantId);
    }
  };
}
