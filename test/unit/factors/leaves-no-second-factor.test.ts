/**
 * The last second factor rule (src/factors/leaves-no-second-factor.ts), as a
 * table: which removals leave an account no second factor while the pool or
 * one of the user's organizations requires one.
 */
import test from 'ava';
import { PoolFileSchema } from '../../../src/config/schema.ts';
import { resolvePool } from '../../../src/config/types.ts';
import {
  leavesNoSecondFactor,
  type SecondFactorRemoval,
} from '../../../src/factors/leaves-no-second-factor.ts';
import type { Organization } from '../../../src/storage/types.ts';

const ORIGIN = 'http://localhost:8080';

const poolOf = (
  required: 'never' | 'when_enrolled' | 'always',
  secondFactor = 'passkey, recovery_code, totp',
) =>
  resolvePool(
    'acme',
    PoolFileSchema.parse({
      passkeys: { rp: { id: 'localhost', origins: [ORIGIN] } },
      authentication: {
        first_factor: ['passkey', 'email_otp'],
        second_factor: secondFactor.split(', '),
        second_factor_required: required,
      },
      clients: [
        { client_id: 'web', redirect_uris: [`${ORIGIN}/cb`], scope: 'openid email', first_party: true },
      ],
    }),
    ORIGIN,
  );

const organization = (settings: Partial<Pick<Organization, 'requireMfa' | 'passkeyLogin'>>) =>
  ({ requireMfa: false, passkeyLogin: true, ...settings }) as Organization;

const MFA = organization({ requireMfa: true });
const MFA_NO_PASSKEYS = organization({ requireMfa: true, passkeyLogin: false });
const RELAXED = organization({});

const cases: Array<{
  title: string;
  pool: ReturnType<typeof poolOf>;
  account: { passkeys: number; hasTotp: boolean; organizations: Organization[] };
  removing: SecondFactorRemoval;
  leaves: boolean;
}> = [
  {
    title: 'always: the last passkey, no app',
    pool: poolOf('always'),
    account: { passkeys: 1, hasTotp: false, organizations: [] },
    removing: 'passkey',
    leaves: true,
  },
  {
    title: 'always: the last passkey, an app stays',
    pool: poolOf('always'),
    account: { passkeys: 1, hasTotp: true, organizations: [] },
    removing: 'passkey',
    leaves: false,
  },
  {
    title: 'always: the last passkey, an app the pool does not use',
    pool: poolOf('always', 'passkey, recovery_code'),
    account: { passkeys: 1, hasTotp: true, organizations: [] },
    removing: 'passkey',
    leaves: true,
  },
  {
    title: 'always: one of two passkeys',
    pool: poolOf('always'),
    account: { passkeys: 2, hasTotp: false, organizations: [] },
    removing: 'passkey',
    leaves: false,
  },
  {
    title: 'always: the app, no passkey',
    pool: poolOf('always'),
    account: { passkeys: 0, hasTotp: true, organizations: [] },
    removing: 'totp',
    leaves: true,
  },
  {
    title: 'always: the app, a passkey stays',
    pool: poolOf('always'),
    account: { passkeys: 1, hasTotp: true, organizations: [] },
    removing: 'totp',
    leaves: false,
  },
  {
    title: 'when_enrolled: the last second factor may go',
    pool: poolOf('when_enrolled'),
    account: { passkeys: 1, hasTotp: false, organizations: [RELAXED] },
    removing: 'passkey',
    leaves: false,
  },
  {
    title: 'when_enrolled, an organization requiring MFA: the last passkey',
    pool: poolOf('when_enrolled'),
    account: { passkeys: 1, hasTotp: false, organizations: [RELAXED, MFA] },
    removing: 'passkey',
    leaves: true,
  },
  {
    title: 'never, an organization requiring MFA: the app, no passkey',
    pool: poolOf('never', 'totp'),
    account: { passkeys: 0, hasTotp: true, organizations: [MFA] },
    removing: 'totp',
    leaves: true,
  },
  {
    title: 'an organization requiring MFA with passkey login off: passkeys do not stand in for the app',
    pool: poolOf('when_enrolled'),
    account: { passkeys: 2, hasTotp: true, organizations: [MFA_NO_PASSKEYS] },
    removing: 'totp',
    leaves: true,
  },
  {
    title: 'an organization requiring MFA with passkey login off: a passkey may go while the app stays',
    pool: poolOf('when_enrolled'),
    account: { passkeys: 1, hasTotp: true, organizations: [MFA_NO_PASSKEYS] },
    removing: 'passkey',
    leaves: false,
  },
];

for (const { title, pool, account, removing, leaves } of cases) {
  test(`${title}: ${leaves ? 'refused' : 'allowed'}`, (t) => {
    t.is(leavesNoSecondFactor(pool, account, removing), leaves);
  });
}
