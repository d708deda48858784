/**
 * Pool × organization: the organization's settings only tighten the pool's
 * (src/organizations/org-policy.ts), and the login's state machine decides
 * on the tightened policy. Each row: the pool, the organization (or none),
 * where the login is, and the step that must come next.
 */
import test from 'ava';
import { emailCodeFactor } from '../../../src/factors/email-code/email-code-calls.ts';
import { passkeyFactor } from '../../../src/factors/passkey/passkey-calls.ts';
import type { AccountFacts, FlowPolicy, Step } from '../../../src/interactions/next-step.ts';
import { nextStep } from '../../../src/interactions/next-step.ts';
import type { CompletedFactor, Progress } from '../../../src/interactions/progress.ts';
import {
  accountLabelFor,
  type OrganizationSettings,
  tightenFlow,
} from '../../../src/organizations/org-policy.ts';

const pool = (overrides: Partial<FlowPolicy> = {}): FlowPolicy => ({
  mode: 'smart',
  passkeys: true,
  firstFactors: ['passkey', 'email_otp', 'password'],
  secondFactors: ['passkey', 'totp', 'recovery_code'],
  secondFactorRequired: 'never',
  passkeyCountsAsTwoFactors: true,
  passkeySupersedesTotp: true,
  offerPasskey: true,
  ...overrides,
});
const org = (overrides: Partial<OrganizationSettings> = {}): OrganizationSettings => ({
  passkeyLogin: true,
  requireMfa: false,
  allowedFirstFactors: null,
  ...overrides,
});

const uvPasskey = passkeyFactor(
  { deviceBound: true, userPresent: true, userVerified: true, credentialId: 'c' },
  1,
);
const upPasskey = passkeyFactor(
  { deviceBound: true, userPresent: true, userVerified: false, credentialId: 'c' },
  1,
);
const otp = emailCodeFactor(1);
const password: CompletedFactor = { method: 'password', amr: ['pwd'], multiFactor: false, at: 1 };

const fresh: Progress = { factors: [] };
const identified: Progress = { email: 'a@x.example', factors: [] };
const signedIn = (...factors: CompletedFactor[]): Progress => ({
  email: 'a@x.example',
  userId: 'u1',
  factors,
});
const facts = (overrides: Partial<AccountFacts> = {}): AccountFacts => ({
  passkeys: 0,
  hasRecoveryCodes: false,
  hasPassword: true,
  hasTotp: false,
  ...overrides,
});

type Row = [
  title: string,
  pool: FlowPolicy,
  organization: OrganizationSettings | undefined,
  progress: Progress,
  account: AccountFacts | undefined,
  expected: Step,
];

const rows: Row[] = [
  // passkey_login
  [
    'smart pool, no organization: a passkey at once',
    pool(),
    undefined,
    fresh,
    undefined,
    { step: 'identify', methods: ['passkey'] },
  ],
  [
    'smart pool, organization with passkeys on: a passkey at once',
    pool(),
    org(),
    fresh,
    undefined,
    { step: 'identify', methods: ['passkey'] },
  ],
  [
    'smart pool, organization with passkeys off: no passkey before the email',
    pool(),
    org({ passkeyLogin: false }),
    fresh,
    undefined,
    { step: 'identify', methods: [] },
  ],
  [
    'passkeys off: the first factors without passkey',
    pool(),
    org({ passkeyLogin: false }),
    identified,
    undefined,
    { step: 'first_factor', methods: ['email_otp', 'password'] },
  ],
  [
    'passkeys off: no offer to create one after an email code',
    pool(),
    org({ passkeyLogin: false }),
    signedIn(otp),
    facts(),
    { step: 'done' },
  ],
  [
    'passkeys on: the offer after an email code',
    pool(),
    org(),
    signedIn(otp),
    facts(),
    { step: 'enroll', methods: ['passkey'], optional: true, reason: 'offer' },
  ],
  [
    'passkeys off in a pool whose second factor is always a passkey: the user has TOTP',
    pool({ secondFactorRequired: 'always' }),
    org({ passkeyLogin: false }),
    signedIn(password),
    facts({ passkeys: 1, hasTotp: true }),
    { step: 'second_factor', methods: ['totp'] },
  ],
  [
    'passkeys off: a step-up for phr cannot be met',
    pool({ requiredAcr: 'phr' }),
    org({ passkeyLogin: false }),
    identified,
    undefined,
    { step: 'unmet' },
  ],
  [
    'pool without passkeys: an organization cannot switch them on',
    pool({ passkeys: false, firstFactors: ['email_otp'], secondFactors: [] }),
    org({ passkeyLogin: true }),
    fresh,
    undefined,
    { step: 'identify', methods: [] },
  ],

  // require_mfa
  [
    'no organization, pool never asks: a password alone signs in',
    pool(),
    undefined,
    signedIn(password),
    facts({ passkeys: 1 }),
    { step: 'done' },
  ],
  [
    'require_mfa: a password is followed by the passkey the user has',
    pool(),
    org({ requireMfa: true }),
    signedIn(password),
    facts({ passkeys: 1 }),
    { step: 'second_factor', methods: ['passkey'] },
  ],
  [
    'require_mfa: a UV passkey satisfies it alone',
    pool(),
    org({ requireMfa: true }),
    signedIn(uvPasskey),
    facts({ passkeys: 1 }),
    { step: 'done' },
  ],
  [
    'require_mfa: a passkey without UV needs a second factor',
    pool(),
    org({ requireMfa: true }),
    signedIn(upPasskey),
    facts({ passkeys: 2 }),
    { step: 'second_factor', methods: ['passkey'] },
  ],
  [
    'require_mfa, pool not counting a UV passkey as two: a second factor after it',
    pool({ passkeyCountsAsTwoFactors: false }),
    org({ requireMfa: true }),
    signedIn(uvPasskey),
    facts({ passkeys: 2 }),
    { step: 'second_factor', methods: ['passkey'] },
  ],
  [
    'require_mfa, nothing to use as second factor: enrol a passkey (email proven by the code)',
    pool(),
    org({ requireMfa: true }),
    signedIn(otp),
    facts(),
    { step: 'enroll', methods: ['passkey'], optional: false, reason: 'second_factor' },
  ],
  [
    'require_mfa after a password, nothing enrolled: prove the email first',
    pool(),
    org({ requireMfa: true }),
    signedIn(password),
    facts(),
    { step: 'second_factor', methods: ['email_otp'], reason: 'prove_email' },
  ],
  [
    'require_mfa false cannot loosen a pool that always asks',
    pool({ secondFactorRequired: 'always' }),
    org({ requireMfa: false }),
    signedIn(password),
    facts({ passkeys: 1 }),
    { step: 'second_factor', methods: ['passkey'] },
  ],
  [
    'require_mfa with TOTP, passkey superseding it: the passkey is asked',
    pool(),
    org({ requireMfa: true }),
    signedIn(password),
    facts({ passkeys: 1, hasTotp: true }),
    { step: 'second_factor', methods: ['passkey'] },
  ],
  [
    'require_mfa with TOTP and passkeys off: TOTP is asked',
    pool(),
    org({ requireMfa: true, passkeyLogin: false }),
    signedIn(password),
    facts({ passkeys: 1, hasTotp: true }),
    { step: 'second_factor', methods: ['totp'] },
  ],

  [
    'require_mfa with passkeys off, nothing usable: the login cannot be met',
    pool(),
    org({ requireMfa: true, passkeyLogin: false }),
    signedIn(otp),
    facts({ passkeys: 1 }),
    { step: 'unmet', reason: 'second_factor' },
  ],

  [
    'a step-up where the organization accepts no passkey as first factor cannot be met',
    pool({ requiredAcr: 'phr' }),
    org({ allowedFirstFactors: ['email_otp', 'password'] }),
    identified,
    undefined,
    { step: 'unmet' },
  ],
  [
    'a member of a passkey-off organization, signing in to another: no offer to create a passkey',
    pool({ enrollPasskeys: false }),
    org(),
    signedIn(otp),
    facts(),
    { step: 'done' },
  ],
  [
    'a member of a passkey-off organization, MFA required elsewhere, nothing enrolled: cannot be met',
    pool({ enrollPasskeys: false }),
    org({ requireMfa: true }),
    signedIn(otp),
    facts(),
    { step: 'unmet', reason: 'second_factor' },
  ],
  [
    'a member of a passkey-off organization still uses the passkey they have where the login accepts one',
    pool({ enrollPasskeys: false }),
    org({ requireMfa: true }),
    signedIn(password),
    facts({ passkeys: 1 }),
    { step: 'second_factor', methods: ['passkey'] },
  ],

  // allowed_first_factors
  [
    'allowed_first_factors narrows the pool’s',
    pool(),
    org({ allowedFirstFactors: ['email_otp'] }),
    identified,
    undefined,
    { step: 'first_factor', methods: ['email_otp'] },
  ],
  [
    'allowed_first_factors cannot add a factor the pool lacks',
    pool({ firstFactors: ['passkey', 'email_otp'] }),
    org({ allowedFirstFactors: ['password', 'email_otp'] }),
    identified,
    undefined,
    { step: 'first_factor', methods: ['email_otp'] },
  ],
  [
    'allowed_first_factors without passkey: none before the email in a smart pool',
    pool(),
    org({ allowedFirstFactors: ['password'] }),
    fresh,
    undefined,
    { step: 'identify', methods: [] },
  ],
  [
    'allowed_first_factors keeps the pool’s order',
    pool(),
    org({ allowedFirstFactors: ['password', 'passkey'] }),
    identified,
    undefined,
    { step: 'first_factor', methods: ['passkey', 'password'] },
  ],
];

for (const [title, poolPolicy, organization, progress, account, expected] of rows) {
  test(title, (t) => {
    const policy = organization ? tightenFlow(poolPolicy, organization) : poolPolicy;
    t.deepEqual(nextStep(policy, progress, account, { needsConsent: false }), expected);
  });
}

test('a user of several organizations picks one once the first factor proved who they are', (t) => {
  const choices = [
    { id: 'o1', name: 'Acme' },
    { id: 'o2', name: 'Globex' },
  ];
  const policy = { ...pool(), organization: { pick: choices } };
  t.deepEqual(nextStep(policy, signedIn(otp), facts(), { needsConsent: false }), {
    step: 'organization',
    organizations: choices,
  });
  // Not before: identify and the first factor come first.
  t.deepEqual(nextStep(policy, identified, undefined, { needsConsent: false }), {
    step: 'first_factor',
    methods: ['passkey', 'email_otp', 'password'],
  });
});

test('a login for an organization the user is not in ends, whatever was done', (t) => {
  const policy: FlowPolicy = { ...pool(), organization: { outsider: true } };
  t.deepEqual(nextStep(policy, signedIn(uvPasskey), facts({ passkeys: 1 }), { needsConsent: false }), {
    step: 'not_member',
  });
  t.deepEqual(
    nextStep(policy, { email: 'n@x.example', signup: { email: 'n@x.example' }, factors: [] }, undefined, {
      needsConsent: false,
    }),
    { step: 'not_member' },
  );
});

test('signing in again after the organization refused a factor: the page is told why', (t) => {
  const policy = tightenFlow(pool(), org({ passkeyLogin: false }));
  t.deepEqual(
    nextStep(policy, { ...identified, organizationId: 'o1', organizationRefused: 'passkey' }, undefined, {
      needsConsent: false,
    }),
    {
      step: 'first_factor',
      methods: ['email_otp', 'password'],
      reason: 'organization',
    },
  );
});

test('a new passkey is labelled with the login’s organization, else the user’s only one, else the pool', (t) => {
  const acme = { name: 'Acme' };
  const globex = { name: 'Globex' };
  t.is(accountLabelFor('Pool', { organizations: [acme, globex] }, globex), 'Globex');
  t.is(accountLabelFor('Pool', { organizations: [acme] }), 'Acme');
  t.is(accountLabelFor('Pool', { organizations: [acme, globex] }), 'Pool');
  t.is(accountLabelFor('Pool', undefined), 'Pool');
});
