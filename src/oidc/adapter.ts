/**
 * oidc-provider's storage adapter for one pool. Grants and refresh tokens must
 * survive restarts and failover, so they go to the durable store; everything
 * short-lived (sessions, interactions, codes, access tokens, PAR) goes to the
 * ephemeral store (DESIGN.md, "Where data lives").
 *
 * `consume` is atomic in both stores. oidc-provider checks `consumed` and then
 * consumes, which lets two concurrent redemptions of one code both pass the
 * check; here the loser fails with invalid_grant and, as for any reuse of a
 * code or rotated refresh token, the grant is revoked (RFC 6749 §4.1.2,
 * RFC 9700 §4.14.2).
 */
import { errors } from 'oidc-provider';
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

export interface AdapterStores {
  durable: Pick<DurableStore, 'oidcModels'>;
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

export function createAdapter(poolId: string, { durable, ephemeral }: AdapterStores): AdapterClass {
  const durableModels = durable.oidcModels(poolId);
  const ephemeralModels = ephemeral.oidcModels(poolId);
  const storeFor = (model: string): OidcModelStore =>
    DURABLE_MODELS.has(model) ? durableModels : ephemeralModels;

  async function revokeGrant(grantId: string): Promise<void> {
    await Promise.all([
      ...GRANT_BOUND_MODELS.map((model) => storeFor(model).revokeByGrantId(model, grantId)),
      storeFor('Grant').destroy('Grant', grantId),
    ]);
  }

  return class PosternAdapter {
    readonly #model: string;
    readonly #store: OidcModelStore;

    constructor(model: string) {
      this.#model = model;
      this.#store = storeFor(model);
    }

    upsert(id: string, payload: OidcPayload, expiresIn?: number) {
      return this.#store.upsert(this.#model, id, payload, expiresIn);
    }

    find(id: string) {
      return this.#store.find(this.#model, id);
    }

    findByUid(uid: string) {
      return this.#store.findByUid(this.#model, uid);
    }

    findByUserCode(userCode: string) {
      return this.#store.findByUserCode(this.#model, userCode);
    }

    async consume(id: string) {
      if (await this.#store.consume(this.#model, id)) return;
      if (this.#model === 'PushedAuthorizationRequest') {
        throw new errors.InvalidRequestUri('request_uri is invalid, expired, or was already used');
      }
      if (REVOKE_ON_REPLAY.has(this.#model)) {
        const grantId = (await this.#store.find(this.#model, id))?.grantId;
        if (grantId) await revokeGrant(grantId);
      }
      throw new errors.InvalidGrant('grant request is invalid');
    }

    destroy(id: string) {
      return this.#store.destroy(this.#model, id);
    }

    revokeByGrantId(grantId: string) {
      return this.#store.revokeByGrantId(this.#model, grantId);
    }
  };
}
