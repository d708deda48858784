/**
 * The bench's baseline: a bare node-oidc-provider (the very version Postern
 * runs) whose login needs nobody: GET /interaction/{uid} picks the next
 * account, grants what the request asks and finishes the interaction at once
 * (`interactionFinished`), so authorize → code → token is oidc-provider's own
 * cost and nothing else. Configured like Postern's providers where that
 * changes the work per request: ES256 ID tokens, PKCE required, rotating
 * refresh tokens, the same lifetimes, DPoP/PAR/introspection/revocation on,
 * resource indicators off.
 *
 * Storage: with BARE_REDIS_URL, a Redis adapter modelled on oidc-provider's
 * example one (a string or, for consumable models, a hash per model; a list
 * per grant), so the baseline pays for a store too; without it,
 * oidc-provider's in-memory adapter (the bench's --embedded mode).
 *
 * Run by the bench as its own process: `node --import tsx test/bench/bare-provider.ts`.
 * Env: BARE_PORT, BARE_ORIGIN (its public origin, the issuer), BARE_WEB_SECRET,
 * BARE_MACHINE_SECRET, BARE_REDIRECT_URI, BARE_ACCOUNTS (how many accounts to
 * sign in in turn), BARE_REDIS_URL and BARE_KEY_PREFIX (optional).
 * Prints `listening` once it accepts connections.
 */
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { Redis } from 'ioredis';
import Provider, { type Adapter, type AdapterPayload, type Configuration } from 'oidc-provider';

const env = (name: string) => {
  const value = process.env[name];
  if (!value) throw new Error(`bare-provider: ${name} is not set`);
  return value;
};

const port = Number(env('BARE_PORT'));
const accounts = Number(process.env.BARE_ACCOUNTS ?? '200');
const redisUrl = process.env.BARE_REDIS_URL;
const keyPrefix = process.env.BARE_KEY_PREFIX ?? 'postern-bench-bare:';

const GRANTABLE = new Set([
  'AccessToken',
  'AuthorizationCode',
  'RefreshToken',
  'DeviceCode',
  'BackchannelAuthenticationRequest',
]);
const CONSUMABLE = new Set([
  'AuthorizationCode',
  'RefreshToken',
  'DeviceCode',
  'BackchannelAuthenticationRequest',
]);

/** oidc-provider's example Redis adapter, one round trip per call where it can. */
function redisAdapter(client: Redis) {
  const grantKey = (grantId: string) => `grant:${grantId}`;
  return class RedisAdapter implements Adapter {
    constructor(readonly name: string) {}

    key(id: string) {
      return `${this.name}:${id}`;
    }

    async upsert(id: string, payload: AdapterPayload, expiresIn: number) {
      const key = this.key(id);
      const multi = client.multi();
      if (CONSUMABLE.has(this.name)) multi.hset(key, { payload: JSON.stringify(payload) });
      else multi.set(key, JSON.stringify(payload));
      if (expiresIn) multi.expire(key, expiresIn);
      if (GRANTABLE.has(this.name) && payload.grantId) {
        const grant = grantKey(payload.grantId);
        multi.rpush(grant, key);
        multi.expire(grant, expiresIn, 'NX');
        multi.expire(grant, expiresIn, 'GT');
      }
      if (payload.userCode) multi.set(`userCode:${payload.userCode}`, id, 'EX', expiresIn);
      if (payload.uid) multi.set(`uid:${payload.uid}`, id, 'EX', expiresIn);
      await multi.exec();
    }

    async find(id: string): Promise<AdapterPayload | undefined> {
      if (CONSUMABLE.has(this.name)) {
        const data = await client.hgetall(this.key(id));
        if (!data.payload) return undefined;
        const { payload, consumed } = data;
        return { ...JSON.parse(payload), ...(consumed ? { consumed: Number(consumed) } : {}) };
      }
      const data = await client.get(this.key(id));
      return data ? JSON.parse(data) : undefined;
    }

    async findByUid(uid: string) {
      const id = await client.get(`uid:${uid}`);
      return id ? this.find(id) : undefined;
    }

    async findByUserCode(userCode: string) {
      const id = await client.get(`userCode:${userCode}`);
      return id ? this.find(id) : undefined;
    }

    async consume(id: string) {
      await client.hset(this.key(id), 'consumed', Math.floor(Date.now() / 1000));
    }

    async destroy(id: string) {
      await client.del(this.key(id));
    }

    async revokeByGrantId(grantId: string) {
      const tokens = await client.lrange(grantKey(grantId), 0, -1);
      await client
        .multi()
        .del(...tokens, grantKey(grantId))
        .exec();
    }
  };
}

/** An ES256 signing key, as Postern's pools use by default. */
function signingKey() {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), alg: 'ES256', use: 'sig' };
}

const redis = redisUrl ? new Redis(redisUrl, { keyPrefix }) : undefined;
const configuration: Configuration = {
  ...(redis ? { adapter: redisAdapter(redis) } : {}),
  clients: [
    {
      client_id: 'bench-web',
      client_secret: env('BARE_WEB_SECRET'),
      redirect_uris: [env('BARE_REDIRECT_URI')],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      scope: 'openid email offline_access',
    },
    {
      client_id: 'bench-machine',
      client_secret: env('BARE_MACHINE_SECRET'),
      redirect_uris: [],
      response_types: [],
      grant_types: ['client_credentials'],
      scope: 'admin',
    },
  ],
  clientDefaults: {
    grant_types: ['authorization_code'],
    id_token_signed_response_alg: 'ES256',
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  },
  jwks: { keys: [signingKey()] },
  cookies: { keys: ['bare-bench-cookie-key-0123456789abcdef'] },
  claims: { openid: ['sub'], email: ['email', 'email_verified'] },
  scopes: ['openid', 'offline_access', 'email', 'profile', 'admin'],
  responseTypes: ['code'],
  pkce: { required: () => true },
  allowOmittingSingleRegisteredRedirectUri: false,
  rotateRefreshToken: true,
  findAccount: (_ctx, sub) => ({
    accountId: sub,
    claims: () => ({ sub, email: `${sub}@bench.example`, email_verified: true }),
  }),
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  features: {
    devInteractions: { enabled: false },
    claimsParameter: { enabled: true },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    userinfo: { enabled: true },
    pushedAuthorizationRequests: { enabled: true },
    dPoP: { enabled: true },
    resourceIndicators: { enabled: false },
  },
  // Postern's lifetimes (src/oidc/ttl.ts), so both keep the same amount of state.
  ttl: {
    AccessToken: 15 * 60,
    AuthorizationCode: 60,
    ClientCredentials: 15 * 60,
    IdToken: 60 * 60,
    Interaction: 30 * 60,
    Session: 14 * 24 * 3600,
    Grant: 30 * 24 * 3600,
    RefreshToken: 14 * 24 * 3600,
  },
};

const provider = new Provider(env('BARE_ORIGIN'), configuration);
provider.on('server_error', (_ctx, error) => console.error('bare-provider server_error', error));
const callback = provider.callback();

let nextAccount = 0;
/** The auto-login: the next account, a grant for everything asked, done. */
async function autoLogin(req: IncomingMessage, res: ServerResponse) {
  const details = await provider.interactionDetails(req, res);
  const accountId = `user-${nextAccount++ % accounts}`;
  const grant = new provider.Grant({ accountId, clientId: String(details.params.client_id) });
  grant.addOIDCScope(String(details.params.scope));
  const grantId = await grant.save();
  await provider.interactionFinished(
    req,
    res,
    { login: { accountId }, consent: { grantId } },
    { mergeWithLastSubmission: false },
  );
}

const server = createServer((req, res) => {
  if (req.method === 'GET' && req.url?.startsWith('/interaction/')) {
    autoLogin(req, res).catch((error: unknown) => {
      console.error('bare-provider auto-login failed', error);
      res.statusCode = 500;
      res.end();
    });
    return;
  }
  callback(req, res);
});
server.keepAliveTimeout = 65_000;
server.listen(port, () => console.log('listening'));

const stop = () => {
  server.close();
  server.closeAllConnections();
  redis?.disconnect();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
