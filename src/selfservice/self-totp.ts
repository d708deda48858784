/**
 * An authenticator app (TOTP, RFC 6238) through `/{pool}/api/self/totp…`,
 * where the pool lists `totp` among its second factors:
 *
 * - `setup` makes a secret and answers it with its `otpauth://` URI and QR
 *   code; it is kept, sealed, for ten minutes and belongs to nobody yet;
 * - `confirm` with a code from the app enrols it (replacing an earlier one),
 *   recording the code's time step so that code is spent;
 * - `remove` deletes it and signs the user out everywhere else, as removing
 *   a passkey does; not when it is the user's last second factor where one
 *   is required (src/factors/leaves-no-second-factor.ts), decided under the
 *   lock a passkey removal takes, so that removing both at once cannot pass.
 *
 * Every one is a write: it needs a recent sign-in (./self-service-scope.ts).
 */
import { randomBytes } from 'node:crypto';
import { errorOf, invalidRequest, notFound } from '../errors.ts';
import { FACTORS_BUSY, withFactorLock } from '../factors/factor-lock.ts';
import { leavesNoSecondFactor } from '../factors/leaves-no-second-factor.ts';
import { refusal } from '../factors/refusal-codes.ts';
import { matchTotp, newTotpSecret, totpQrSvg, totpUri } from '../factors/totp/totp-codes.ts';
import { openTotpSecret, sealTotpSecret } from '../factors/totp/totp-secrets.ts';
import { limitRule } from '../interactions/rate-limits.ts';
import {
  invalidToken,
  type SelfServiceContext,
  type SelfServiceScope,
  type SignedOutView,
  signOutOthers,
  writerOf,
} from './self-service-scope.ts';

/** How long a secret shown by `setup` waits for its first code. */
const SETUP_SECONDS = 10 * 60;

const setupKey = (poolId: string, userId: string) => `totp-setup:${poolId}:${userId}`;

const factorsBusy = () =>
  errorOf('conflict', { description: 'Another change to your sign-in methods is under way. Try again.' });

/** The passkey's `last_second_factor`, in words about the app. */
const lastAppNeeded = () =>
  errorOf('last_second_factor', {
    description:
      'This service asks for a second step at every sign-in, and this authenticator app is the only one you have. Add a passkey before removing it, or set up a new app to replace it.',
  });

export interface TotpSetup {
  /** Base32, for typing into an app that cannot scan. */
  secret: string;
  otpauth_uri: string;
  /** The URI as a QR code, an SVG document. */
  qr_svg: string;
  expires_in: number;
}

export function selfTotp(context: SelfServiceContext) {
  const { durable, ephemeral, limits, totpBox, now } = context;

  const requireTotp = (scope: SelfServiceScope) => {
    if (!scope.pool.authentication.second_factor.includes('totp'))
      throw invalidRequest('This service does not use authenticator apps.');
  };

  return {
    /** A new secret to scan. @throws {PosternError} invalid_request where the pool does not list totp. */
    async setupTotp(scope: SelfServiceScope): Promise<TotpSetup> {
      const user = await writerOf(context, scope);
      requireTotp(scope);
      const secret = newTotpSecret();
      // Sealed in Redis too; the nonce keeps one setup's value from being replayed as another's.
      const nonce = randomBytes(8).toString('base64url');
      await ephemeral.set(
        setupKey(scope.pool.id, user.id),
        JSON.stringify({
          nonce,
          sealed: sealTotpSecret(totpBox, scope.pool.id, `${user.id}:${nonce}`, secret),
        }),
        SETUP_SECONDS,
      );
      const uri = totpUri(secret, { issuer: scope.pool.display_name, account: user.email });
      scope.audit.record({ event: 'totp_setup', outcome: 'success' });
      return { secret, otpauth_uri: uri, qr_svg: await totpQrSvg(uri), expires_in: SETUP_SECONDS };
    },

    /**
     * Enrols the secret `setup` showed, once a code from the app matches it.
     * @throws {PosternError} invalid_request without a setup; invalid_code; 429 after too many wrong codes.
     */
    async confirmTotp(scope: SelfServiceScope, { code }: { code: string }): Promise<{ enabled: true }> {
      const user = await writerOf(context, scope);
      requireTotp(scope);
      // The sign-in's budget for this account, counted before the check and reset by a right code.
      const accountKey = `${scope.pool.id}:${user.id}`;
      const rule = limitRule('totp_user');
      await limits.enforce(rule, accountKey);
      const raw = await ephemeral.get(setupKey(scope.pool.id, user.id));
      if (!raw)
        throw invalidRequest('Start again: scan a new code first.', 'no TOTP setup (expired or never made)');
      const { nonce, sealed } = JSON.parse(raw) as { nonce: string; sealed: string };
      const secret = openTotpSecret(totpBox, scope.pool.id, `${user.id}:${nonce}`, sealed);
      const step = matchTotp(secret, code, now() * 1000);
      if (step === undefined) {
        scope.audit.record({ event: 'totp_enrolled', outcome: 'failure', detail: { code: 'wrong_code' } });
        throw errorOf('invalid_code', {
          description: 'That code does not match. Enter the code your authenticator app shows now.',
        });
      }
      const sealedSecret = sealTotpSecret(totpBox, scope.pool.id, user.id, secret);
      if (!(await durable.totp.set(scope.pool.id, user.id, sealedSecret, step)))
        throw invalidToken(`token of user ${user.id}, who no longer exists`);
      await limits.reset(rule, accountKey);
      await ephemeral.delete(setupKey(scope.pool.id, user.id));
      scope.audit.record({ event: 'totp_enrolled', outcome: 'success' });
      return { enabled: true };
    },

    /**
     * Removes the user's authenticator app and signs them out elsewhere.
     * @throws {PosternError} 404 when none; 409 last_second_factor when it is
     *   the last second factor where one is required; 409 conflict while
     *   another change to the user's second factors runs.
     */
    async removeTotp(scope: SelfServiceScope): Promise<{ signed_out: SignedOutView }> {
      const user = await writerOf(context, scope);
      const outcome = await withFactorLock(
        ephemeral,
        { poolId: scope.pool.id, userId: user.id },
        async () => {
          const account = await durable.users.findAccount(scope.pool.id, user.id);
          if (!account?.hasTotp) return 'not_found' as const;
          if (leavesNoSecondFactor(scope.pool, account, 'totp')) return 'last_second_factor' as const;
          return (await durable.totp.delete(scope.pool.id, user.id))
            ? ('removed' as const)
            : ('not_found' as const);
        },
      );
      if (outcome === FACTORS_BUSY) throw factorsBusy();
      if (outcome === 'not_found') throw notFound('There is no authenticator app on this account.');
      if (outcome === 'last_second_factor') {
        scope.audit.record({
          event: 'totp_removed',
          outcome: 'failure',
          detail: refusal('last_second_factor'),
        });
        throw lastAppNeeded();
      }
      scope.audit.record({ event: 'totp_removed', outcome: 'success' });
      return { signed_out: await signOutOthers(context, scope, 'totp_removed') };
    },
  };
}
