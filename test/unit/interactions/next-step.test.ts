import test from 'ava';
import { emailCodeFactor } from '../../../src/factors/email-code/email-code-calls.ts';
import { passkeyFactor } from '../../../src/factors/passkey/passkey-calls.ts';
import { assessAssurance } from '../../../src/interactions/assurance.ts';
import {
  type AccountFacts,
  type FlowPolicy,
  nextStep,
  type Step,
} from '../../../src/interactions/next-step.ts';
import type { CompletedFactor, Progress } from '../../../src/interactions/progress.ts';

const policy = (overrides: Partial<FlowPolicy> = {}): FlowPolicy => ({
  mode: 'smart',
  passkeys: true,
  firstFactors: ['passkey', 'email_otp'],
  secondFactors: ['passkey', 'recovery_code'],
  secondFactorRequired: 'never',
  passkeyCountsAsTwoFactors: true,
  passkeySupersedesTotp: true,
  offerPasskey: true,
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
const recovery: CompletedFactor = { method: 'recovery_code', amr: ['otp'], multiFactor: false, at: 2 };

const signedIn = (...factors: CompletedFactor[]): Progress => ({
  email: 'a@x.example',
  userId: 'u1',
  factors,
});
const none: AccountFacts = { passkeys: 0, hasRecoveryCodes: false, hasPassword: false, hasTotp: false };
const withPasskey: AccountFacts = { passkeys: 1, hasRecoveryCodes: true, hasPassword: false, hasTotp: false };
const twoPasskeys: AccountFacts = {
  passkeys: 2,
  hasRecoveryCodes: false,
  hasPassword: false,
  hasTotp: false,
};
const passkeyNoCodes: AccountFacts = {
  passkeys: 1,
  hasRecoveryCodes: false,
  hasPassword: true,
  hasTotp: false,
};
const codesOnly: AccountFacts = { passkeys: 0, hasRecoveryCodes: true, hasPassword: true, hasTotp: false };
const synced = passkeyFactor(
  { deviceBound: false, userPresent: true, userVerified: true, credentialId: 's' },
  1,
);

type Row = [title: string, FlowPolicy, Progress, AccountFacts | undefined, boolean, Step];

const rows: Row[] = [
  // Identification and first factor
  [
    'smart pool, nothing done: identify or use a passkey at once',
    policy(),
    { factors: [] },
    undefined,
    false,
    { step: 'identify', methods: ['passkey'] },
  ],
  [
    'classic pool, nothing done: identify first',
    policy({ mode: 'classic' }),
    { factors: [] },
    undefined,
    false,
    { step: 'identify', methods: [] },
  ],
  [
    'smart pool without passkey first factor: identify first',
    policy({ firstFactors: ['email_otp'] }),
    { factors: [] },
    undefined,
    false,
    { step: 'identify', methods: [] },
  ],
  [
    'identified: every first factor, known account or not',
    policy(),
    { email: 'a@x.example', factors: [] },
    undefined,
    false,
    { step: 'first_factor', methods: ['passkey', 'email_otp'] },
  ],
  [
    'first factors keep the pool order',
    policy({ firstFactors: ['password', 'passkey'] }),
    { email: 'a@x.example', factors: [] },
    undefined,
    false,
    { step: 'first_factor', methods: ['password', 'passkey'] },
  ],
  // Without passkeys (passkeys.enabled: false, or passkey in no factor): the lists hold none
  [
    'no passkeys, smart pool: identify, no passkey at once',
    policy({ passkeys: false, firstFactors: ['email_otp'] }),
    { factors: [] },
    undefined,
    false,
    { step: 'identify', methods: [] },
  ],
  [
    'no passkeys: a sign-up by email code needs nothing more to make the account',
    policy({ passkeys: false, firstFactors: ['email_otp'] }),
    { signup: { email: 'n@x.example' }, factors: [otp] },
    undefined,
    false,
    { step: 'enroll', methods: [], optional: true, reason: 'signup' },
  ],
  [
    'no passkeys: a password pool signs up with a password',
    policy({ passkeys: false, firstFactors: ['email_otp', 'password'] }),
    { signup: { email: 'n@x.example' }, factors: [otp] },
    undefined,
    false,
    { step: 'enroll', methods: ['password'], optional: true, reason: 'signup' },
  ],
  [
    'no passkeys: no passkey offer after a sign-in, whatever the pool setting',
    policy({ passkeys: false, firstFactors: ['email_otp'], offerPasskey: false }),
    signedIn(otp),
    none,
    false,
    { step: 'done' },
  ],
  [
    'no passkeys: a request for phr cannot be met',
    policy({ passkeys: false, firstFactors: ['email_otp'], requiredAcr: 'phr' }),
    signedIn(otp),
    withPasskey,
    false,
    { step: 'unmet' },
  ],
  // Sign-up
  [
    'sign-up with email sign-in allowed: passkey offered, skippable',
    policy(),
    { signup: { email: 'n@x.example' }, factors: [otp] },
    undefined,
    false,
    { step: 'enroll', methods: ['passkey'], optional: true, reason: 'signup' },
  ],
  [
    'sign-up in a passkey-only pool: passkey required',
    policy({ firstFactors: ['passkey'] }),
    { signup: { email: 'n@x.example' }, factors: [otp] },
    undefined,
    false,
    { step: 'enroll', methods: ['passkey'], optional: false, reason: 'signup' },
  ],
  // One factor is enough
  ['never: a UV passkey is done', policy(), signedIn(uvPasskey), withPasskey, false, { step: 'done' }],
  [
    'never: an email code from a user with a passkey is done',
    policy(),
    signedIn(otp),
    withPasskey,
    false,
    { step: 'done' },
  ],
  [
    'never: an email code from a user without passkey gets the enrolment offer',
    policy(),
    signedIn(otp),
    none,
    false,
    { step: 'enroll', methods: ['passkey'], optional: true, reason: 'offer' },
  ],
  [
    'declined offer: done',
    policy(),
    { ...signedIn(otp), enrollDeclined: true },
    none,
    false,
    { step: 'done' },
  ],
  [
    'no offer in a pool without passkeys',
    policy({ firstFactors: ['email_otp'], secondFactors: ['recovery_code'] }),
    signedIn(otp),
    none,
    false,
    { step: 'done' },
  ],
  ['consent after everything else', policy(), signedIn(uvPasskey), withPasskey, true, { step: 'consent' }],
  // TOTP (an authenticator app): a second factor only, superseded by a usable passkey
  [
    'when_enrolled: email code + an authenticator app asks for its code',
    policy({ secondFactorRequired: 'when_enrolled', secondFactors: ['passkey', 'recovery_code', 'totp'] }),
    signedIn(otp),
    { ...none, hasTotp: true },
    false,
    { step: 'second_factor', methods: ['totp'] },
  ],
  [
    'a passkey the user could use supersedes their authenticator app',
    policy({ secondFactorRequired: 'when_enrolled', secondFactors: ['passkey', 'recovery_code', 'totp'] }),
    signedIn(otp),
    { ...withPasskey, hasTotp: true },
    false,
    { step: 'second_factor', methods: ['passkey', 'recovery_code'] },
  ],
  [
    'with passkey_supersedes_totp off, both are offered',
    policy({
      secondFactorRequired: 'when_enrolled',
      secondFactors: ['passkey', 'recovery_code', 'totp'],
      passkeySupersedesTotp: false,
    }),
    signedIn(otp),
    { ...withPasskey, hasTotp: true },
    false,
    { step: 'second_factor', methods: ['passkey', 'recovery_code', 'totp'] },
  ],
  [
    'an authenticator app is not offered where the pool does not list it',
    policy({ secondFactorRequired: 'when_enrolled', offerPasskey: false }),
    signedIn(otp),
    { ...none, hasTotp: true },
    false,
    { step: 'done' },
  ],
  [
    'a request for phr keeps the authenticator app owed after a passkey that is not two factors',
    policy({
      secondFactorRequired: 'when_enrolled',
      secondFactors: ['passkey', 'recovery_code', 'totp'],
      passkeyCountsAsTwoFactors: false,
      requiredAcr: 'phr',
    }),
    signedIn(uvPasskey),
    { ...withPasskey, hasTotp: true },
    false,
    { step: 'second_factor', methods: ['totp'] },
  ],
  [
    'a step-up is never met by an authenticator app',
    policy({ secondFactorRequired: 'when_enrolled', secondFactors: ['passkey', 'totp'], requiredAcr: 'phr' }),
    signedIn(otp),
    { ...withPasskey, hasTotp: true },
    false,
    { step: 'second_factor', methods: ['passkey'] },
  ],
  // when_enrolled
  [
    'when_enrolled: email code + enrolled passkey asks for it',
    policy({ secondFactorRequired: 'when_enrolled' }),
    signedIn(otp),
    withPasskey,
    false,
    { step: 'second_factor', methods: ['passkey', 'recovery_code'] },
  ],
  [
    'when_enrolled: nothing enrolled, no second step',
    policy({ secondFactorRequired: 'when_enrolled' }),
    signedIn(otp),
    none,
    false,
    { step: 'enroll', methods: ['passkey'], optional: true, reason: 'offer' },
  ],
  [
    'when_enrolled: UV passkey counts as two',
    policy({ secondFactorRequired: 'when_enrolled' }),
    signedIn(uvPasskey),
    withPasskey,
    false,
    { step: 'done' },
  ],
  [
    'when_enrolled: password + enrolled passkey asks for it',
    policy({ firstFactors: ['password'], secondFactorRequired: 'when_enrolled' }),
    signedIn(password),
    withPasskey,
    false,
    { step: 'second_factor', methods: ['passkey', 'recovery_code'] },
  ],
  // always
  [
    'always: password, nothing enrolled: prove the email, then enrol a passkey (not skippable)',
    policy({ firstFactors: ['password'], secondFactorRequired: 'always' }),
    signedIn(password),
    none,
    false,
    { step: 'second_factor', methods: ['email_otp'], reason: 'prove_email' },
  ],
  [
    'always: password + passkey: done',
    policy({ firstFactors: ['password'], secondFactorRequired: 'always' }),
    signedIn(password, uvPasskey),
    withPasskey,
    false,
    { step: 'done' },
  ],
  [
    'always: password + recovery code: done',
    policy({ firstFactors: ['password'], secondFactorRequired: 'always' }),
    signedIn(password, recovery),
    withPasskey,
    false,
    { step: 'done' },
  ],
  [
    'always: UV passkey counts as two',
    policy({ secondFactorRequired: 'always' }),
    signedIn(uvPasskey),
    withPasskey,
    false,
    { step: 'done' },
  ],
  [
    'always: passkey without UV and no other passkey: enrol another, codes are no factor alone',
    policy({ secondFactorRequired: 'always' }),
    signedIn(upPasskey),
    withPasskey,
    false,
    { step: 'enroll', methods: ['passkey'], optional: false, reason: 'second_factor' },
  ],
  [
    'always, passkey not counting as two: UV passkey and no other passkey: enrol another',
    policy({ secondFactorRequired: 'always', passkeyCountsAsTwoFactors: false }),
    signedIn(uvPasskey),
    withPasskey,
    false,
    { step: 'enroll', methods: ['passkey'], optional: false, reason: 'second_factor' },
  ],
  [
    'second factors limited to the pool list',
    policy({ secondFactorRequired: 'always', secondFactors: ['passkey'] }),
    signedIn(otp),
    withPasskey,
    false,
    { step: 'second_factor', methods: ['passkey'] },
  ],
  [
    'always: second factor done, consent next',
    policy({ secondFactorRequired: 'always' }),
    signedIn(otp, uvPasskey),
    withPasskey,
    true,
    { step: 'consent' },
  ],
  [
    'sign-up in a password pool: set a password',
    policy({ firstFactors: ['password'] }),
    { signup: { email: 'n@x.example' }, factors: [otp] },
    undefined,
    false,
    { step: 'enroll', methods: ['password'], optional: false, reason: 'signup' },
  ],
  [
    'sign-up where passkeys and passwords both start a sign-in: either',
    policy({ firstFactors: ['passkey', 'password', 'email_otp'] }),
    { signup: { email: 'n@x.example' }, factors: [otp] },
    undefined,
    false,
    { step: 'enroll', methods: ['passkey', 'password'], optional: true, reason: 'signup' },
  ],
  [
    'no offer when the pool turned it off or asked recently',
    policy({ offerPasskey: false }),
    signedIn(otp),
    none,
    false,
    { step: 'done' },
  ],
  [
    'offer after a password sign-in where passkeys are a second factor',
    policy({ firstFactors: ['password'], secondFactors: ['passkey'], secondFactorRequired: 'when_enrolled' }),
    signedIn(password),
    { ...none, hasPassword: true },
    false,
    { step: 'enroll', methods: ['passkey'], optional: true, reason: 'offer' },
  ],
  [
    'a second passkey can follow a passkey',
    policy({ secondFactorRequired: 'always', passkeyCountsAsTwoFactors: false }),
    signedIn(uvPasskey),
    twoPasskeys,
    false,
    { step: 'second_factor', methods: ['passkey'] },
  ],
  [
    'the only passkey cannot be its own second factor: enrol another',
    policy({ secondFactorRequired: 'always', passkeyCountsAsTwoFactors: false, secondFactors: ['passkey'] }),
    signedIn(uvPasskey),
    { ...withPasskey, hasRecoveryCodes: false },
    false,
    { step: 'enroll', methods: ['passkey'], optional: false, reason: 'second_factor' },
  ],
  [
    'when_enrolled: recovery codes alone are no second factor (the passkey offer follows)',
    policy({ firstFactors: ['password'], secondFactorRequired: 'when_enrolled' }),
    signedIn(password),
    codesOnly,
    false,
    { step: 'enroll', methods: ['passkey'], optional: true, reason: 'offer' },
  ],
  [
    'when_enrolled: passkey without recovery codes',
    policy({ firstFactors: ['password'], secondFactorRequired: 'when_enrolled' }),
    signedIn(password),
    passkeyNoCodes,
    false,
    { step: 'second_factor', methods: ['passkey'] },
  ],
  [
    'after a recovery code: offered to replace the lost passkey',
    policy({ firstFactors: ['password'], secondFactorRequired: 'always' }),
    { ...signedIn(password, recovery), recovered: true },
    withPasskey,
    false,
    { step: 'enroll', methods: ['passkey'], optional: true, reason: 'recovery' },
  ],
  [
    'recovery handled: done',
    policy({ firstFactors: ['password'], secondFactorRequired: 'always' }),
    { ...signedIn(password, recovery), recovered: true, recoveryHandled: true },
    withPasskey,
    false,
    { step: 'done' },
  ],
  [
    'acr phr requested: only a passkey starts the sign-in',
    policy({ requiredAcr: 'phr' }),
    { email: 'a@x.example', factors: [] },
    undefined,
    false,
    { step: 'first_factor', methods: ['passkey'] },
  ],
  [
    'acr phr requested, smart pool: passkey at once',
    policy({ requiredAcr: 'phr', firstFactors: ['email_otp', 'passkey'] }),
    { factors: [] },
    undefined,
    false,
    { step: 'identify', methods: ['passkey'] },
  ],
  [
    'acr phr requested after an email code (e.g. sign-up): sign in with the passkey',
    policy({ requiredAcr: 'phr' }),
    signedIn(otp),
    withPasskey,
    false,
    { step: 'first_factor', methods: ['passkey'], reason: 'step_up' },
  ],
  [
    'acr phr met by a synced passkey',
    policy({ requiredAcr: 'phr' }),
    signedIn(synced),
    withPasskey,
    false,
    { step: 'done' },
  ],
  [
    'acr phrh not met by a synced passkey',
    policy({ requiredAcr: 'phrh' }),
    signedIn(synced),
    withPasskey,
    false,
    { step: 'first_factor', methods: ['passkey'], reason: 'step_up' },
  ],
  [
    'acr phrh met by a device-bound passkey',
    policy({ requiredAcr: 'phrh' }),
    signedIn(uvPasskey),
    withPasskey,
    false,
    { step: 'done' },
  ],
];

for (const [title, flowPolicy, progress, account, needsConsent, expected] of rows) {
  test(`nextStep: ${title}`, (t) => {
    t.deepEqual(nextStep(flowPolicy, progress, account, { needsConsent }), expected);
  });
}

const assuranceRows: Array<[string, CompletedFactor[], { amr: string[]; acr: string }]> = [
  ['device-bound passkey with UV', [uvPasskey], { amr: ['hwk', 'mfa', 'pop', 'user'], acr: 'phrh' }],
  [
    'synced passkey with UV',
    [passkeyFactor({ deviceBound: false, userPresent: true, userVerified: true, credentialId: 'c' }, 1)],
    { amr: ['mfa', 'pop', 'swk', 'user'], acr: 'phr' },
  ],
  ['passkey without UV', [upPasskey], { amr: ['hwk', 'pop', 'user'], acr: 'phrh' }],
  ['email code', [otp], { amr: ['otp'], acr: '0' }],
  [
    'password then passkey',
    [password, upPasskey],
    { amr: ['hwk', 'mfa', 'pop', 'pwd', 'user'], acr: 'phrh' },
  ],
  ['recovery code after password', [password, recovery], { amr: ['mfa', 'otp', 'pwd'], acr: '0' }],
  [
    'recovery code after a passkey: a recovery sign-in claims no passkey class',
    [upPasskey, recovery],
    { amr: ['hwk', 'mfa', 'otp', 'pop', 'user'], acr: '0' },
  ],
];
for (const [title, factors, expected] of assuranceRows) {
  test(`assurance: ${title}`, (t) => {
    t.deepEqual(assessAssurance(factors), expected);
  });
}

test('a request for phr offers no recovery code as second factor: a recovery sign-in is acr 0', (t) => {
  const flow = policy({
    secondFactorRequired: 'always',
    passkeyCountsAsTwoFactors: false,
    requiredAcr: 'phr',
  });
  const twoPasskeysAndCodes: AccountFacts = {
    passkeys: 2,
    hasRecoveryCodes: true,
    hasPassword: false,
    hasTotp: false,
  };
  t.deepEqual(nextStep(flow, signedIn(uvPasskey), twoPasskeysAndCodes, { needsConsent: false }), {
    step: 'second_factor',
    methods: ['passkey'],
  });
});

/*
 * Every first factor × second_factor_required × what the user has enrolled,
 * with passkey_counts_as_two_factors on and off, in a pool that lists every
 * method. One row per first factor; one cell per (setting, enrolment):
 *   D  done                       O  the optional passkey offer
 *   E  enrol a passkey, required  P  second factor [passkey]
 *   C  second factor [passkey, recovery_code]      -  impossible
 *   V  prove the email with a code first (a password alone does not enrol a required passkey)
 */
const ENROLMENTS: Array<[string, AccountFacts]> = [
  ['nothing', { passkeys: 0, hasRecoveryCodes: false, hasPassword: true, hasTotp: false }],
  ['codes only', { passkeys: 0, hasRecoveryCodes: true, hasPassword: true, hasTotp: false }],
  ['a passkey', { passkeys: 1, hasRecoveryCodes: false, hasPassword: true, hasTotp: false }],
  ['a passkey and codes', { passkeys: 1, hasRecoveryCodes: true, hasPassword: true, hasTotp: false }],
  ['two passkeys and codes', { passkeys: 2, hasRecoveryCodes: true, hasPassword: true, hasTotp: false }],
];
const SETTINGS = ['never', 'when_enrolled', 'always'] as const;
const CELLS: Record<string, Step> = {
  D: { step: 'done' },
  O: { step: 'enroll', methods: ['passkey'], optional: true, reason: 'offer' },
  E: { step: 'enroll', methods: ['passkey'], optional: false, reason: 'second_factor' },
  P: { step: 'second_factor', methods: ['passkey'] },
  C: { step: 'second_factor', methods: ['passkey', 'recovery_code'] },
  V: { step: 'second_factor', methods: ['email_otp'], reason: 'prove_email' },
};
//                                counts as two    never  when_enrolled  always
const MATRIX: Array<[string, CompletedFactor, boolean, string]> = [
  ['email code', otp, true, /*   */ 'OODDD OOPCC EEPCC'],
  ['email code', otp, false, /*  */ 'OODDD OOPCC EEPCC'],
  ['password', password, true, /**/ 'OODDD OOPCC VVPCC'],
  ['password', password, false, /**/ 'OODDD OOPCC VVPCC'],
  ['UV passkey', uvPasskey, true, /**/ '--DDD --DDD --DDD'],
  ['UV passkey', uvPasskey, false, /**/ '--DDD --DDC --EEC'],
  ['passkey without UV', upPasskey, true, /**/ '--DDD --DDC --EEC'],
  ['passkey without UV', upPasskey, false, /**/ '--DDD --DDC --EEC'],
];
for (const [name, factor, counts, row] of MATRIX) {
  const cells = row.replaceAll(' ', '');
  SETTINGS.forEach((setting, s) => {
    ENROLMENTS.forEach(([enrolled, account], e) => {
      const cell = cells[s * ENROLMENTS.length + e] ?? '?';
      if (cell === '-') return;
      test(`matrix: ${name} first, ${setting}, counts as two ${counts}, user has ${enrolled}`, (t) => {
        const flow = policy({
          firstFactors: ['passkey', 'email_otp', 'password'],
          secondFactorRequired: setting,
          passkeyCountsAsTwoFactors: counts,
        });
        t.deepEqual(nextStep(flow, signedIn(factor), account, { needsConsent: false }), CELLS[cell]);
      });
    });
  });
}

test('a required passkey after a password is enrolled once the email is proven in this interaction', (t) => {
  const flow = policy({ firstFactors: ['password'], secondFactorRequired: 'always' });
  const proven: Progress = { ...signedIn(password), emailProven: true };
  t.deepEqual(nextStep(flow, proven, none, { needsConsent: false }), {
    step: 'enroll',
    methods: ['passkey'],
    optional: false,
    reason: 'second_factor',
  });
  t.deepEqual(
    nextStep(flow, signedIn(otp), none, { needsConsent: false }),
    { step: 'enroll', methods: ['passkey'], optional: false, reason: 'second_factor' },
    'the sign-up code proved it',
  );
});

const stepUpRows: Array<[string, FlowPolicy, Progress, AccountFacts, Step]> = [
  [
    'step-up, signed-in user without a passkey: prove it is them with what they have',
    policy({ requiredAcr: 'phr', firstFactors: ['passkey', 'email_otp', 'password'] }),
    { email: 'a@x.example', sessionUserId: 'u1', factors: [] },
    { passkeys: 0, hasRecoveryCodes: false, hasPassword: true, hasTotp: false },
    { step: 'first_factor', methods: ['email_otp', 'password'], reason: 'step_up_enroll' },
  ],
  [
    'step-up, no password set: email code only',
    policy({ requiredAcr: 'phr', firstFactors: ['passkey', 'email_otp', 'password'] }),
    { email: 'a@x.example', sessionUserId: 'u1', factors: [] },
    none,
    { step: 'first_factor', methods: ['email_otp'], reason: 'step_up_enroll' },
  ],
  [
    'step-up in a passkey-only pool without a passkey: the request cannot be met',
    policy({ requiredAcr: 'phr', firstFactors: ['passkey'] }),
    { email: 'a@x.example', sessionUserId: 'u1', factors: [] },
    none,
    { step: 'unmet' },
  ],
  [
    'step-up after an email code, no passkey yet: create one',
    policy({ requiredAcr: 'phr' }),
    { ...signedIn(otp), sessionUserId: 'u1' },
    none,
    { step: 'enroll', methods: ['passkey'], optional: false, reason: 'step_up' },
  ],
  [
    'step-up after a password, no passkey yet: prove the email before creating one',
    policy({ requiredAcr: 'phr', firstFactors: ['passkey', 'password'] }),
    signedIn(password),
    none,
    { step: 'second_factor', methods: ['email_otp'], reason: 'prove_email' },
  ],
  [
    'step-up after the passkey was created: sign in with it',
    policy({ requiredAcr: 'phr' }),
    signedIn(otp),
    withPasskey,
    { step: 'first_factor', methods: ['passkey'], reason: 'step_up' },
  ],
];
for (const [title, flow, progress, account, expected] of stepUpRows) {
  test(title, (t) => {
    t.deepEqual(nextStep(flow, progress, account, { needsConsent: false }), expected);
  });
}
