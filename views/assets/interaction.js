// The hosted sign-in page: a thin client of the interaction API. Every step
// comes from the server's answer; this file only shows it and runs the
// WebAuthn ceremonies (@simplewebauthn/browser). It switches on error codes,
// never on messages.
//
// Each step change goes through `enter`: one section shows, the heading says
// what the step is for, what the last step said (status, error, invalid
// fields) is cleared, and focus moves to the step's first field or, without
// one, to its heading, so keyboard and screen reader users follow along.
// A field the server refused is marked aria-invalid and described by the
// error, which takes the focus back to it.

import { clearInvalid, markInvalid } from '/assets/field-errors.js';
import { showRecoveryCodes as listRecoveryCodes } from '/assets/recovery-codes.js';
import {
  browserSupportsWebAuthn,
  browserSupportsWebAuthnAutofill,
  startAuthentication,
  startRegistration,
  WebAuthnAbortService,
  WebAuthnError,
} from '/assets/vendor/simplewebauthn/index.js';

const flow = document.getElementById('flow');
const base = flow.dataset.interaction;
const clientName = flow.dataset.clientName;
const poolName = flow.dataset.poolName;
const $ = (id) => document.getElementById(id);
const heading = $('heading');
const errorBox = $('error');
const statusBox = $('status');
const SIGN_IN_TITLE = heading.textContent;
const STEPS = [
  'identify',
  'first-factor',
  'password',
  'code',
  'recovery-code',
  'totp',
  'enroll',
  'recovery-codes',
  'organization',
  'consent',
  'expired',
];

const SCOPE_TEXT = {
  openid: 'Know who you are',
  email: 'See your email address',
  profile: 'See your name',
  offline_access: 'Stay signed in to it while you are away',
};
const METHOD_TEXT = {
  passkey: 'Use your passkey',
  email_otp: 'Email me a code',
  password: 'Use your password',
  recovery_code: 'Use a recovery code',
  totp: 'Use your authenticator app',
};
/** Errors that are not the fault of what the user typed: the field stays as it is. */
const NOT_THE_FIELD = new Set([
  'rate_limited',
  'server_error',
  'temporarily_unavailable',
  'interaction_expired',
]);

/** The last step answer, to come back to from a sub-form ("Choose another way"). */
let current;
/** Set by "New here? Create an account": the headings say so until the account exists. */
const SIGNUP_KEY = `postern.signup:${base}`;
let signingUp = readSignup();
/** "Send a new code" waits until this time (ms) after the server said so (429 Retry-After). */
let resendAllowedAt = 0;

const app = clientName || 'This app';

/** Calls the interaction API; rejects with { code, message, retryAfter } from the server's error answer. */
async function call(path, body) {
  const init =
    body === undefined
      ? { headers: { accept: 'application/json' } }
      : {
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'application/json' },
          body: JSON.stringify(body),
        };
  const response = await fetch(`${base}/${path}`, { ...init, credentials: 'same-origin' });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error(data.error_description || 'Something went wrong. Please try again.');
    error.code = data.error || 'server_error';
    const retryAfter = Number(response.headers.get('retry-after'));
    if (Number.isFinite(retryAfter) && retryAfter > 0) error.retryAfter = retryAfter;
    throw error;
  }
  return data;
}

function readSignup() {
  try {
    return sessionStorage.getItem(SIGNUP_KEY) === '1';
  } catch {
    return false;
  }
}

function setSignup(value) {
  signingUp = value;
  try {
    if (value) sessionStorage.setItem(SIGNUP_KEY, '1');
    else sessionStorage.removeItem(SIGNUP_KEY);
  } catch {
    // Storage refused: the heading only forgets on reload.
  }
}

const say = (message) => {
  statusBox.textContent = message;
};

/** Shows an error; `field` (optional) is the input it is about. */
function fail(message, field) {
  statusBox.textContent = '';
  errorBox.textContent = message;
  if (field) markInvalid(field);
}

/** When the user may try again, in words: "in 40 seconds", "in 5 minutes (at 14:05)". */
function whenAgain(seconds) {
  if (seconds < 60) return `in ${Math.ceil(seconds)} second${Math.ceil(seconds) === 1 ? '' : 's'}`;
  const minutes = Math.ceil(seconds / 60);
  const at = new Date(Date.now() + seconds * 1000).toLocaleTimeString([], {
    hour: '2-digit',
    minute: '2-digit',
  });
  return `in ${minutes} minute${minutes === 1 ? '' : 's'} (at ${at})`;
}

function isVisible(element) {
  return element.isConnected && !element.disabled && !element.closest('[hidden]');
}

/** The step's first field, else its heading. */
function focusStep(section) {
  const field = [...section.querySelectorAll('input, textarea, select')].find(
    (candidate) => candidate.type !== 'hidden' && !candidate.readOnly && isVisible(candidate),
  );
  (field ?? heading).focus();
}

/**
 * Shows one step: its section and heading, nothing left of what the last
 * step said; focus moves once the caller has filled the section in.
 */
function enter(name, title) {
  const section = $(`step-${name}`);
  for (const step of STEPS) $(`step-${step}`).hidden = step !== name;
  heading.textContent = title;
  statusBox.textContent = '';
  errorBox.textContent = '';
  for (const field of flow.querySelectorAll('[aria-invalid]')) clearInvalid(field);
  queueMicrotask(() => {
    if (!section.hidden) focusStep(section);
  });
  return section;
}

/** What the steps of this sign-in are called, in the heading. */
function titleOf(answer) {
  if (answer?.step === 'second_factor')
    return answer.reason === 'prove_email' ? 'Confirm your email' : 'Confirm it’s you';
  if (answer?.step === 'organization') return 'Choose an organization';
  if (answer?.reason === 'step_up_enroll') return 'Confirm it’s you';
  if (answer?.reason === 'step_up') return 'Sign in with a passkey';
  if (signingUp || answer?.reason === 'signup') return 'Create your account';
  return SIGN_IN_TITLE;
}

/**
 * Runs an action with the page busy. A refusal shows its error; with
 * `field`, the input it is about is marked and focused (`only`: just for
 * these error codes). Focus lost to disabled buttons comes back.
 */
async function busy(action, { field, only } = {}) {
  const before = document.activeElement;
  const buttons = [...flow.querySelectorAll('button')];
  for (const button of buttons) button.disabled = true;
  errorBox.textContent = '';
  let refocus;
  try {
    await action();
  } catch (error) {
    if (error.code === 'interaction_expired') {
      showExpired();
      return;
    }
    const about =
      field && !NOT_THE_FIELD.has(error.code) && (!only || only.includes(error.code)) ? field : undefined;
    const message = error.retryAfter
      ? `${error.message} You can try again ${whenAgain(error.retryAfter)}.`
      : error.message;
    fail(message, about);
    refocus = about;
  } finally {
    for (const button of buttons) button.disabled = false;
    holdResend();
    const lost = !document.activeElement || document.activeElement === document.body;
    if (refocus && isVisible(refocus)) refocus.focus();
    else if (lost) (before && before !== document.body && isVisible(before) ? before : heading).focus();
  }
}

function show(answer, { leaving = 'Signed in. Returning to the app…' } = {}) {
  // Recovery codes are shown once, before anything else happens.
  if (answer.recovery_codes) return showCodesToSave(answer);
  if (answer.redirect_to) return leave(answer.redirect_to, leaving);
  current = answer;
  $('organization-line').hidden = !answer.organization;
  $('organization-name').textContent = answer.organization?.name ?? '';
  if (answer.reason === 'signup') setSignup(false);
  // A code was sent in this interaction (also after a reload): the code screen, until it is used.
  if (answer.code_sent && (answer.step === 'first_factor' || answer.step === 'second_factor'))
    return showCode(answer);
  showStep(answer);
  if (answer.recovery_codes_remaining !== undefined)
    say(`Recovery code accepted. You have ${answer.recovery_codes_remaining} left.`);
}

/** The step itself, leaving aside a code already sent ("Choose another way" comes back here). */
function showStep(answer) {
  switch (answer.step) {
    case 'identify':
      return showIdentify(answer);
    case 'first_factor':
    case 'second_factor':
      return showFactors(answer);
    case 'enroll':
      return showEnroll(answer);
    case 'organization':
      return showOrganizations(answer);
    case 'consent':
      return showConsent(answer);
  }
}

function showOrganizations(answer) {
  enter('organization', titleOf(answer));
  $('organization-choices').replaceChildren(
    ...answer.organizations.map((organization, index) => {
      const button = document.createElement('button');
      button.type = 'button';
      if (index > 0) button.className = 'secondary';
      button.textContent = organization.name;
      button.addEventListener('click', () =>
        busy(async () => show(await call('organization', { organization_id: organization.id }))),
      );
      return button;
    }),
  );
}

function leave(url, message) {
  for (const step of STEPS) $(`step-${step}`).hidden = true;
  $('cancel-line').hidden = true;
  errorBox.textContent = '';
  say(message);
  window.location.assign(url);
}

function showExpired() {
  WebAuthnAbortService.cancelCeremony();
  setSignup(false);
  enter('expired', 'This sign-in has expired');
  $('cancel-line').hidden = true;
}

function showIdentify(answer) {
  enter('identify', titleOf(answer));
  const passkeyOffered = answer.methods.includes('passkey') && browserSupportsWebAuthn();
  $('passkey-first').hidden = !passkeyOffered;
  if (passkeyOffered) startAutofill();
}

/** Passkey autofill: offered in the email field's suggestions until the user does something else. */
async function startAutofill() {
  if (!(await browserSupportsWebAuthnAutofill())) return;
  try {
    const optionsJSON = await call('passkey/options', {});
    const response = await startAuthentication({ optionsJSON, useBrowserAutofill: true });
    await busy(async () => show(await call('passkey/verify', { response })));
  } catch (error) {
    // Aborted because the user chose another way: nothing to report.
    if (error instanceof WebAuthnError && error.code === 'ERROR_CEREMONY_ABORTED') return;
    if (error.name === 'AbortError' || error.name === 'NotAllowedError') return;
    if (error.code === 'interaction_expired') return showExpired();
    fail(error.message);
  }
}

const STEP_TEXT = {
  step_up: () => `${app} asks you to sign in with a passkey.`,
  step_up_enroll: () =>
    `${app} asks you to sign in with a passkey. You have none yet: confirm it’s you, then create one.`,
  organization: (answer) =>
    `${answer.organization?.name ?? 'Your organization'} does not allow that way of signing in. Choose another.`,
  prove_email: (answer) =>
    `Before you add a passkey, confirm your email: we will send a code to ${answer.email || 'your email address'}.`,
};

function showFactors(answer) {
  const section = enter('first-factor', titleOf(answer));
  const second = answer.step === 'second_factor';
  const stepUp = answer.reason === 'step_up' || answer.reason === 'step_up_enroll';
  $('factor-intro').hidden = second || !answer.email;
  $('signing-in-as').textContent = answer.email || '';
  const reason = $('factor-reason');
  const text = STEP_TEXT[answer.reason]?.(answer) ?? (second ? 'Confirm it’s you with a second step.' : '');
  reason.textContent = text;
  reason.hidden = !text;
  const buttons = $('factor-buttons');
  buttons.replaceChildren();
  for (const method of answer.methods) {
    if (!METHOD_TEXT[method]) continue;
    if (method === 'passkey' && !browserSupportsWebAuthn()) continue;
    const button = document.createElement('button');
    button.type = 'button';
    button.textContent = METHOD_TEXT[method];
    button.dataset.method = method;
    if (buttons.children.length > 0) button.className = 'secondary';
    button.addEventListener('click', () => chooseMethod(method));
    buttons.append(button);
  }
  // Where email codes are not a way in, a newcomer still proves their email by code to sign up.
  // Never in a step-up: the user is signed in and has an account.
  if (answer.signup_open && !second && !stepUp && !answer.methods.includes('email_otp')) {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'secondary';
    button.textContent = 'New here? Create an account';
    button.addEventListener('click', () => {
      setSignup(true);
      busy(sendCode).then(() => {
        if (!$('step-code').hidden) return;
        setSignup(false); // not sent: still signing in
        heading.textContent = titleOf(current);
      });
    });
    buttons.append(button);
  }
  return section;
}

function chooseMethod(method) {
  if (method === 'passkey') return busy(signInWithPasskey);
  if (method === 'email_otp') return busy(sendCode);
  if (method === 'password') return showPassword({ choosing: false });
  if (method === 'recovery_code') {
    enter('recovery-code', titleOf(current));
    $('recovery-code').value = '';
  }
  if (method === 'totp') {
    enter('totp', titleOf(current));
    $('totp-code').value = '';
  }
}

async function signInWithPasskey() {
  const optionsJSON = await call('passkey/options', {});
  let response;
  try {
    response = await startAuthentication({ optionsJSON });
  } catch (error) {
    if (error instanceof WebAuthnError && error.code === 'ERROR_CEREMONY_ABORTED') return;
    if (error.name === 'NotAllowedError') {
      fail('The passkey request was cancelled or timed out. Try again, or choose another way.');
      return;
    }
    throw error;
  }
  say('Checking your passkey…');
  show(await call('passkey/verify', { response }));
}

/** The password form: signing in (current-password) or choosing one at sign-up (new-password). */
function showPassword({ choosing }) {
  enter('password', choosing ? 'Create your account' : titleOf(current));
  const input = $('password');
  const hint = $('password-hint');
  $('password-username').value = current?.email || '';
  input.value = '';
  input.autocomplete = choosing ? 'new-password' : 'current-password';
  $('password-label').textContent = choosing ? 'Choose a password' : 'Password';
  $('password-submit').textContent = choosing ? 'Create account' : 'Sign in';
  hint.hidden = !choosing;
  const min = current?.password_min_length;
  hint.textContent = min
    ? `Use at least ${min} characters; a long phrase is easiest to remember.`
    : 'A long phrase is easiest to remember.';
  if (choosing) input.setAttribute('aria-describedby', 'password-hint');
  else input.removeAttribute('aria-describedby');
  $('password-form').dataset.choosing = String(choosing);
}

async function sendCode() {
  show(await call('email-otp/send', {}));
}

/** The code screen, for the code this interaction sent. */
function showCode(answer) {
  enter('code', titleOf(answer));
  $('code-email').textContent = answer.email || 'your email address';
  // With a link (authentication.email_otp.delivery), opening it in this browser enters the code.
  $('code-what').textContent =
    answer.code_delivery === 'link' || answer.code_delivery === 'both'
      ? 'a link (open it in this browser) with a 6-digit code'
      : 'a 6-digit code';
  $('code').value = '';
  // Back to the step's other ways in, where it has some.
  $('code-back').hidden = answer.methods.every((method) => method === 'email_otp');
}

/** Keeps "Send a new code" disabled while the server said to wait. */
function holdResend() {
  const wait = resendAllowedAt - Date.now();
  if (wait <= 0) return;
  $('resend-code').disabled = true;
  setTimeout(() => {
    if (Date.now() >= resendAllowedAt) $('resend-code').disabled = false;
  }, wait + 50);
}

async function resendCode() {
  try {
    const answer = await call('email-otp/send', {});
    show(answer);
    say(`We sent a new code to ${answer.email || 'your email address'}. Only the newest code works.`);
  } catch (error) {
    if (error.code !== 'rate_limited' || !error.retryAfter) throw error;
    resendAllowedAt = Date.now() + error.retryAfter * 1000;
    fail(`You asked for several codes in a row. You can ask for a new code ${whenAgain(error.retryAfter)}.`);
    $('code').focus();
  }
}

const ENROLL = {
  signup: {
    title: 'Create your account',
    text: () =>
      'Create a passkey to finish setting up your account. Your device will ask you to confirm with your fingerprint, face or screen lock.',
  },
  offer: {
    title: 'Add a passkey',
    text: () => 'Sign in faster next time: create a passkey on this device. No password to remember.',
  },
  second_factor: {
    title: 'Add a passkey',
    text: () => 'Your account needs a passkey as a second step. Create one now to continue.',
  },
  recovery: {
    title: 'Replace your lost passkey',
    text: () =>
      'You signed in with a recovery code. Create a passkey on this device to replace the one you lost.',
  },
  step_up: {
    title: 'Create a passkey',
    text: () =>
      `It’s you. Now create a passkey on this device: ${app} asks you to sign in with one, which you will do next.`,
  },
};

function showEnroll(answer) {
  const passkey = answer.methods.includes('passkey');
  const password = answer.methods.includes('password');
  if (answer.reason === 'signup' && password && !passkey) return showPassword({ choosing: true });
  const copy = ENROLL[answer.reason] || ENROLL.offer;
  enter('enroll', copy.title);
  $('enroll-text').textContent = copy.text();
  $('enroll-form').hidden = !passkey;
  $('choose-password').hidden = !password;
  $('skip-enroll').hidden = !answer.optional;
  $('skip-enroll').textContent = answer.reason === 'recovery' ? 'Done' : 'Not now';
  showRecoveryPasskeys(answer);
  if (passkey && !browserSupportsWebAuthn()) fail('This browser cannot create passkeys.');
  // After a password sign-in, the password manager may create the passkey without a prompt.
  if (answer.reason === 'offer' && answer.conditional_create)
    busy(() => createPasskey({ conditional: true }));
}

function showRecoveryPasskeys(answer) {
  const box = $('recovery-passkeys');
  box.hidden = answer.reason !== 'recovery' || !answer.passkeys?.length;
  const list = $('recovery-passkey-list');
  list.replaceChildren(
    ...(answer.passkeys || []).map((passkey) => {
      const item = document.createElement('li');
      const label = document.createElement('span');
      label.textContent = `${passkey.name} (added ${passkey.created_at.slice(0, 10)})`;
      const remove = document.createElement('button');
      remove.type = 'button';
      remove.className = 'secondary';
      remove.textContent = 'Remove';
      remove.setAttribute('aria-label', `Remove ${passkey.name}`);
      remove.addEventListener('click', () =>
        busy(async () => {
          show(await call('passkey/remove', { id: passkey.id }));
          say(`“${passkey.name}” was removed.`);
        }),
      );
      item.append(label, remove);
      return item;
    }),
  );
}

async function createPasskey({ conditional = false } = {}) {
  const name = $('passkey-name').value.trim();
  const optionsJSON = await call('passkey/register/options', {
    ...(name ? { name } : {}),
    ...(conditional ? { mediation: 'conditional' } : {}),
  });
  let response;
  try {
    response = await startRegistration({ optionsJSON, useAutoRegister: conditional });
  } catch (error) {
    // Conditional create is a silent attempt: anything but success leaves the offer as it is.
    if (conditional) return;
    if (error instanceof WebAuthnError && error.code === 'ERROR_AUTHENTICATOR_PREVIOUSLY_REGISTERED') {
      fail('This device already holds a passkey for your account.');
      return;
    }
    if (error instanceof WebAuthnError && error.code === 'ERROR_CEREMONY_ABORTED') return;
    if (error.name === 'NotAllowedError') {
      fail('Creating the passkey was cancelled or timed out. Try again.');
      return;
    }
    throw error;
  }
  say(conditional ? 'Your password manager created a passkey for you.' : 'Saving your passkey…');
  show(await call('passkey/register/verify', name ? { response, name } : { response }));
}

function showCodesToSave(answer) {
  enter('recovery-codes', 'Save your recovery codes');
  listRecoveryCodes({
    list: $('recovery-code-list'),
    copyButton: $('copy-codes'),
    downloadLink: $('download-codes'),
    codes: answer.recovery_codes,
    service: poolName,
    account: answer.email ?? current?.email,
    report: (message, ok) => (ok ? say(message) : fail(message)),
  });
  const { recovery_codes: _shown, ...rest } = answer;
  $('codes-saved').onclick = () => show(rest);
}

function showConsent(answer) {
  enter('consent', 'Allow access to your account?');
  $('consent-client').textContent = answer.client.name;
  $('consent-scopes').replaceChildren(
    ...answer.scopes.map((scope) => {
      const item = document.createElement('li');
      item.textContent = SCOPE_TEXT[scope] || scope;
      return item;
    }),
  );
}

$('identify-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const email = $('email').value.trim();
  if (!email) {
    fail('Enter your email address.', $('email'));
    $('email').focus();
    return;
  }
  WebAuthnAbortService.cancelCeremony();
  setSignup(false);
  busy(async () => show(await call('identify', { email })), { field: $('email') });
});
$('passkey-button').addEventListener('click', () => busy(signInWithPasskey));
$('change-email').addEventListener('click', () => {
  setSignup(false);
  enter('identify', SIGN_IN_TITLE);
  $('passkey-first').hidden = true;
});
$('password-form').addEventListener('submit', (event) => {
  event.preventDefault();
  busy(async () => show(await call('password', { password: $('password').value })), { field: $('password') });
});
$('password-back').addEventListener('click', () => showStep(current));
$('code-form').addEventListener('submit', (event) => {
  event.preventDefault();
  busy(async () => show(await call('email-otp/verify', { code: $('code').value.trim() })), {
    field: $('code'),
  });
});
$('resend-code').addEventListener('click', () => busy(resendCode));
$('code-back').addEventListener('click', () => {
  setSignup(false);
  showStep(current);
});
$('recovery-form').addEventListener('submit', (event) => {
  event.preventDefault();
  busy(async () => show(await call('recovery-code', { code: $('recovery-code').value.trim() })), {
    field: $('recovery-code'),
  });
});
$('recovery-back').addEventListener('click', () => showStep(current));
$('totp-form').addEventListener('submit', (event) => {
  event.preventDefault();
  busy(async () => show(await call('totp', { code: $('totp-code').value.trim() })), {
    field: $('totp-code'),
  });
});
$('totp-back').addEventListener('click', () => showStep(current));
$('enroll-form').addEventListener('submit', (event) => {
  event.preventDefault();
  busy(() => createPasskey(), { field: $('passkey-name'), only: ['invalid_request'] });
});
$('choose-password').addEventListener('click', () => showPassword({ choosing: true }));
$('skip-enroll').addEventListener('click', () => busy(async () => show(await call('enroll/skip', {}))));
$('consent-allow').addEventListener('click', () =>
  busy(async () => show(await call('consent', { decision: 'allow' }))),
);
$('consent-deny').addEventListener('click', () =>
  busy(async () => show(await call('consent', { decision: 'deny' }), { leaving: 'Returning to the app…' })),
);
$('cancel').addEventListener('click', () => {
  WebAuthnAbortService.cancelCeremony();
  busy(async () => {
    const answer = await call('abort', {});
    setSignup(false);
    show(answer, { leaving: 'Cancelled. Returning to the app…' });
  });
});
// A field the user corrects is no longer marked wrong.
flow.addEventListener('input', (event) => {
  if (event.target.getAttribute?.('aria-invalid')) clearInvalid(event.target);
});

busy(async () => show(await call('state')));
