/**
 * The configuration schema: the one place that says which keys exist, what
 * they default to and what they mean. The README's configuration reference is
 * generated from it (`npm run docs`), so a key's description here is its
 * documentation.
 *
 * Shape checks live here; checks that relate keys to each other or to the
 * outside world (RP ID against the public suffix list, origins against the
 * RP ID, client ids unique in a pool) live in ./checks/.
 */
import { z } from 'zod';
// Dependency-free modules of src/oidc: what tokens assert and how they are signed is theirs to say.
import { ACR_VALUES } from '../oidc/acr.ts';
import { DEFAULT_SIGNING_ALGORITHM, SIGNING_ALGORITHMS } from '../oidc/signing-algorithms.ts';
import { formatDuration, parseDuration } from './duration.ts';

/** Values substituted from `${VAR}` arrive as strings; numbers and booleans accept those too. */
function integer(min: number, max: number) {
  return z.preprocess(
    (value) => (typeof value === 'string' && /^-?\d+$/.test(value.trim()) ? Number(value) : value),
    z.number().int().min(min).max(max),
  );
}

function boolean() {
  return z.preprocess(
    (value) => (value === 'true' ? true : value === 'false' ? false : value),
    z.boolean({ error: 'expected true or false' }),
  );
}

/** A duration written `30s`, `5m`, `1h`, `1d` or as seconds; parsed to seconds. */
function duration(min: number, max: number) {
  return z.union([z.string(), z.number()]).transform((value, ctx) => {
    const seconds = parseDuration(value);
    if (seconds === undefined) {
      ctx.addIssue({ code: 'custom', message: `"${value}" is not a duration (write e.g. 30s, 5m, 1h)` });
      return z.NEVER;
    }
    if (seconds < min || seconds > max) {
      ctx.addIssue({
        code: 'custom',
        message: `${formatDuration(seconds)} is out of range (${formatDuration(min)} to ${formatDuration(max)})`,
      });
      return z.NEVER;
    }
    return seconds;
  });
}

const uniqueList = <T extends z.ZodType>(item: T) =>
  z.array(item).refine((list) => new Set(list).size === list.length, { message: 'lists an entry twice' });

const AAGUID = z
  .string()
  .regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, 'expected a lowercase AAGUID');

// ---------------------------------------------------------------- server file

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;

export const ServerFileSchema = z.strictObject({
  public_url: z
    .string()
    .optional()
    .describe(
      'External base URL, scheme://host[:port] without a path; each pool is served at {public_url}/{pool}. ' +
        'Defaults to http://localhost:{port}. Env: PUBLIC_URL.',
    ),
  port: integer(0, 65_535).default(3000).describe('Port to listen on. Env: PORT.'),
  data_dir: z
    .string()
    .default('./data')
    .describe(
      'Directory for the embedded database and the generated secret (embedded mode only), relative to the working directory.',
    ),
  database: z
    .strictObject({
      url: z
        .string()
        .optional()
        .describe('PostgreSQL URL (postgres://…). Unset: embedded PGlite under data_dir. Env: DATABASE_URL.'),
      pool_max: integer(1, 100).default(10).describe('Most connections one process opens to PostgreSQL.'),
      timeout_ms: integer(50, 600_000)
        .default(800)
        .describe(
          'Milliseconds a request waits for PostgreSQL (a new connection, a free one, one query) before it answers 503. ' +
            'Queries answer in milliseconds; past this the database is down, stalled or overloaded. Env: DATABASE_TIMEOUT_MS.',
        ),
    })
    .prefault({})
    .describe('Durable storage: users, passkeys, grants, refresh tokens, signing keys, audit events.'),
  redis: z
    .strictObject({
      url: z
        .string()
        .optional()
        .describe(
          'Redis URL (redis:// or rediss://). Unset: an in-process store (one process only). Env: REDIS_URL.',
        ),
      key_prefix: z
        .string()
        .default('postern:')
        .describe('Prefix of every Redis key Postern writes, so one Redis can serve several deployments.'),
      timeout_ms: integer(50, 600_000)
        .default(400)
        .describe(
          'Milliseconds a Redis command may go unanswered before its request answers 503; ' +
            'after one such timeout, commands fail at once until Redis answers a PING again. Env: REDIS_TIMEOUT_MS.',
        ),
    })
    .prefault({})
    .describe('Short-lived state: challenges, interactions, sessions, codes, rate limits.'),
  email: z
    .strictObject({
      smtp_url: z
        .string()
        .optional()
        .describe(
          'smtp://host:port (or smtps://). Unset: codes and links are written to the log. Env: SMTP_URL.',
        ),
      from: z.string().default('Postern <no-reply@localhost>').describe('From address of every message.'),
    })
    .prefault({}),
  secret: z
    .string()
    .min(32, 'must be at least 32 characters')
    .optional()
    .describe(
      'Key that encrypts signing keys at rest and derives cookie keys. Required with database.url; ' +
        'embedded mode generates one into data_dir. Env: POSTERN_SECRET.',
    ),
  trust_proxy: boolean()
    .default(false)
    .describe(
      'Trust X-Forwarded-For (its last hop, the one the proxy appends) and X-Forwarded-Proto from one reverse proxy in front of Postern. Leave false when exposed directly.',
    ),
  workers: integer(1, 64)
    .default(1)
    .describe(
      'Processes to run (node:cluster); one per core saturates the machine. Needs Redis and PostgreSQL when > 1.',
    ),
  shutdown_delay: duration(0, 60)
    .prefault(0)
    .describe(
      'On SIGTERM, how long to go on serving, new connections included, while /readyz answers 503 ' +
        'shutting_down, before the listener closes and the last requests drain (0s to 1m). Set it to a few ' +
        'of your load balancer’s health-check intervals, so that it stops sending here first: a connection ' +
        'it opens just as the listener closes is reset, with its request.',
    ),
  log_level: z.enum(LOG_LEVELS).default('info').describe('Least severe log level written. Env: LOG_LEVEL.'),
});

// ------------------------------------------------------------------ pool file

export const FIRST_FACTORS = ['passkey', 'email_otp', 'password'] as const;
export const SECOND_FACTORS = ['passkey', 'recovery_code', 'totp'] as const;
export const COSE_ALGORITHMS = ['EdDSA', 'ES256', 'RS256'] as const;
export const GRANT_TYPES = ['authorization_code', 'refresh_token', 'client_credentials'] as const;

const RelyingPartySchema = z
  .strictObject({
    id: z
      .string()
      .optional()
      .describe(
        'WebAuthn Relying Party ID: a registrable domain, or localhost. Passkeys are bound to it for good. ' +
          'Defaults to the host of public_url.',
      ),
    display_name: z
      .string()
      .optional()
      .describe("Name authenticators show next to the passkey. Defaults to the pool's display_name."),
    origins: uniqueList(z.string())
      .optional()
      .describe(
        'Exact origins (scheme://host[:port]) allowed to run ceremonies; each host is the RP ID or a subdomain of it. ' +
          'Defaults to the origin of public_url.',
      ),
  })
  .prefault({});

const PasskeysSchema = z
  .strictObject({
    enabled: z
      .boolean()
      .default(true)
      .describe(
        'false: no passkey is offered, asked for or registered anywhere (sign-in, sign-up, enrolment links, self-service); stored passkeys stay and work again once this is true.',
      ),
    mode: z
      .enum(['smart', 'classic'])
      .default('smart')
      .describe(
        'smart: usernameless sign-in with discoverable credentials and autofill. ' +
          "classic: email first, then the user's own credentials (allowCredentials).",
      ),
    rp: RelyingPartySchema,
    user_verification: z
      .enum(['required', 'preferred', 'discouraged'])
      .default('required')
      .describe(
        'Whether the authenticator must verify the user (PIN, biometrics). Only required makes a passkey MFA on its own.',
      ),
    timeout: duration(30, 600)
      .prefault('5m')
      .describe('Ceremony timeout, which is also the lifetime of its challenge (30s to 10m).'),
    registration: z
      .strictObject({
        attestation: z
          .enum(['none', 'direct', 'enterprise'])
          .default('none')
          .describe(
            'Attestation conveyance. none suits consumer pools; direct lets filtering rely on verified AAGUIDs.',
          ),
        authenticator_attachment: z
          .enum(['any', 'platform', 'cross-platform'])
          .default('any')
          .describe(
            'Which authenticators may be registered: built into the device, roaming (security keys), or any.',
          ),
        algorithms: uniqueList(z.enum(COSE_ALGORITHMS))
          .min(1, 'needs at least one algorithm')
          .default(['EdDSA', 'ES256', 'RS256'])
          .describe('COSE algorithms accepted for new passkeys, in order of preference.'),
        max_per_user: integer(1, 100).default(10).describe('Most passkeys one user may register.'),
        max_per_pool: integer(1, 100_000_000)
          .optional()
          .describe(
            'Most passkeys the pool stores, all users together: a registration past it is refused (`passkey_pool_full`). ' +
              'Enforcing it takes a pool-wide lock for each registration’s count and insert. Unset: no ceiling.',
          ),
      })
      .prefault({}),
    filtering: z
      .strictObject({
        permitted_aaguids: uniqueList(AAGUID)
          .default([])
          .describe('Only these authenticator models may register (AAGUIDs). Empty: any.'),
        prohibited_aaguids: uniqueList(AAGUID)
          .default([])
          .describe('These authenticator models may not register or sign in.'),
        prohibit_backup_eligibility: boolean()
          .default(false)
          .describe('true: refuse synced passkeys; only device-bound keys may register or sign in.'),
      })
      .prefault({}),
  })
  .prefault({});

const AuthenticationSchema = z
  .strictObject({
    first_factor: uniqueList(z.enum(FIRST_FACTORS))
      .min(1, 'needs at least one first factor')
      .default(['passkey', 'email_otp'])
      .describe('Methods that start a sign-in, in the order the page offers them.'),
    second_factor: uniqueList(z.enum(SECOND_FACTORS))
      .default(['passkey', 'recovery_code'])
      .describe(
        'Methods accepted as a second factor. Recovery codes stand in for a lost passkey: they are offered beside one, so a pool that asks for a second factor lists passkey. totp: codes from an authenticator app (RFC 6238), enrolled on the account page.',
      ),
    second_factor_required: z
      .enum(['never', 'when_enrolled', 'always'])
      .default('never')
      .describe(
        'never: one factor. when_enrolled: users who have a second factor must use it. always: every user.',
      ),
    passkey_counts_as_two_factors: boolean()
      .default(true)
      .describe(
        'A passkey verified with user verification satisfies a second-factor requirement on its own.',
      ),
    email_otp: z
      .strictObject({
        delivery: z
          .enum(['code', 'link', 'both'])
          .default('code')
          .describe(
            'How a one-time code is mailed: the code, a link that enters it in the browser that asked for it (elsewhere it only shows the code), or both.',
          ),
      })
      .prefault({})
      .describe('Email one-time codes.'),
    passkey_supersedes_totp: boolean()
      .default(true)
      .describe(
        'Once a user has a passkey that can be their second factor, it is asked for instead of their TOTP codes, which are no longer offered.',
      ),
    password: z
      .strictObject({
        min_length: integer(8, 64).default(10).describe('Shortest password accepted (characters).'),
        max_failures: integer(3, 100)
          .default(10)
          .describe(
            'Password attempts for one account (from any address) before its password sign-in pauses for failure_window. Each attempt counts before it is checked, so guesses sent at once cannot exceed it; a right password clears the count.',
          ),
        failure_window: duration(60, 86_400)
          .prefault('15m')
          .describe(
            'Window over which wrong passwords are counted; also the longest a password sign-in can be paused.',
          ),
        argon2: z
          .strictObject({
            memory_kib: integer(8192, 1_048_576)
              .default(19_456)
              .describe('argon2id memory cost in KiB (OWASP: 19456).'),
            iterations: integer(1, 10).default(2).describe('argon2id passes.'),
            parallelism: integer(1, 8).default(1).describe('argon2id lanes.'),
          })
          .prefault({})
          .describe(
            'Password hashing parameters; hashes made with older ones are upgraded at the next sign-in.',
          ),
      })
      .prefault({})
      .describe('Passwords, where first_factor lists password.'),
  })
  .prefault({});

const EnrollmentSchema = z
  .strictObject({
    offer_passkey: boolean()
      .default(true)
      .describe('After a sign-in without a passkey, offer users who have none to create one (skippable).'),
    ask_again_after: duration(0, 365 * 86_400)
      .prefault('7d')
      .describe('After a user skips the offer, how long until it is shown again; 0: at every sign-in.'),
    conditional_create: boolean()
      .default(true)
      .describe(
        "After a password sign-in, first try to create the passkey without a prompt (mediation: 'conditional') where the browser supports it.",
      ),
  })
  .prefault({});

/** An organization's slug: DNS-label shaped (URLs, the `organization` parameter, pool files). */
export const ORGANIZATION_SLUG = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

const ClientSchema = z.strictObject({
  client_id: z
    .string()
    .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces')
    .describe('OAuth client identifier, unique in the pool.'),
  client_name: z.string().optional().describe('Name shown to users on the consent screen.'),
  client_secret: z
    .string()
    .min(32, 'must be at least 32 characters')
    .optional()
    .describe('Secret of a confidential client; write ${VAR} to keep it out of the file.'),
  token_endpoint_auth_method: z
    .enum(['client_secret_basic', 'client_secret_post', 'none'])
    .default('client_secret_basic')
    .describe('How the client authenticates at the token endpoint; none for public clients (PKCE only).'),
  redirect_uris: uniqueList(z.string())
    .default([])
    .describe('Exact redirect URIs: absolute, https unless loopback.'),
  post_logout_redirect_uris: uniqueList(z.string())
    .default([])
    .describe('Where RP-initiated logout may return to.'),
  grant_types: uniqueList(z.enum(GRANT_TYPES))
    .min(1)
    .default(['authorization_code'])
    .describe('authorization_code (with PKCE S256, always), refresh_token, client_credentials.'),
  scope: z.string().default('openid').describe('Space-separated scopes the client may request.'),
  id_token_signed_response_alg: z
    .enum(SIGNING_ALGORITHMS)
    .default(DEFAULT_SIGNING_ALGORITHM)
    .describe('ID token signature algorithm.'),
  default_acr_values: uniqueList(z.enum(ACR_VALUES))
    .optional()
    .describe('ACR values applied when a request names none.'),
  first_party: boolean()
    .default(false)
    .describe(
      'Postern extension: a first-party client skips the consent screen, and its access tokens may manage the user’s passkeys, password and recovery codes through /api/self.',
    ),
  organization: z
    .string()
    .regex(ORGANIZATION_SLUG, 'must be an organization slug')
    .optional()
    .describe(
      'Postern extension: the slug of the organization every sign-in of this client is for (its members only, its login settings); a request may then name no other.',
    ),
});

export const PoolFileSchema = z.strictObject({
  display_name: z
    .string()
    .min(1)
    .optional()
    .describe('Name users see on the pages. Defaults to the pool id.'),
  passkeys: PasskeysSchema,
  authentication: AuthenticationSchema,
  registration: z
    .strictObject({
      mode: z
        .enum(['open', 'invite_only', 'disabled'])
        .default('open')
        .describe(
          'open: anyone with an email may sign up. invite_only: only users an operator created, who enrol through an enrolment link. disabled: no sign-up.',
        ),
      enrollment_link_ttl: duration(5 * 60, 30 * 86_400)
        .prefault('24h')
        .describe('How long an enrolment link (admin API, `postern users create`) works before it expires.'),
    })
    .prefault({}),
  enrollment: EnrollmentSchema,
  self_service: z
    .strictObject({
      recent_auth: duration(30, 86_400)
        .prefault('5m')
        .describe('How recent an authentication must be to add or remove factors.'),
    })
    .prefault({}),
  clients: z
    .array(ClientSchema)
    .default([])
    .describe('OIDC clients of this pool, in RFC 7591 metadata names.'),
});

export type ServerFile = z.output<typeof ServerFileSchema>;
export type PoolFile = z.output<typeof PoolFileSchema>;
export type ClientFile = z.output<typeof ClientSchema>;
