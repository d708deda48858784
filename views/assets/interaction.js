// The hosted sign-in page: a thin client of the interaction API. Every step
// comes from the server's answer; this file only shows it and runs the
// WebAuthn ceremonies (@simplewebauthn/browser). It switches on error codes,
// never on messages.
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
const $ = (id) => document.getElementById(id);
const errorBox = $('error');
const statusBox = $('status');
const sections = [
  'identify',
  'first-factor',
  'password',
  'code',
  'recovery-code',
  'enroll',
  'recovery-codes',
  'consent',
].map((name) => $(`step-${name}`));

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
};

/** The last step answer, to come back to from a sub-form ("Choose another way"). */
let current;

/** Calls the interaction API; rejects with { code, message } from the server's error answer. */
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
    throw error;
  }
  return data;
}

const say = (message) => {
  statusBox.textContent = message;
};
const fail = (message) => {
  errorBox.textContent = message;
};

function only(section) {
  for (const candidate of sections) candidate.hidden = candidate !== section;
}

/** Runs an action with the page busy, showing its error if it fails. */
async function busy(action) {
  const buttons = [...document.querySelectorAll('button')];
  for (const button of buttons) button.disabled = true;
  errorBox.textContent = '';
  try {
    await action();
  } catch (error) {
    if (error.code === 'interaction_expired') only(null);
    fail(error.message);
  } finally {
    for (const button of buttons) button.disabled = false;
  }
}

function show(answer) {
  // Recovery codes are shown once, before anything else happens.
  if (answer.recovery_codes) return showRecoveryCodes(answer);
  if (answer.redirect_to) {
    say('Signed in. Returning to the app…');
    window.location.assign(answer.redirect_to);
    return;
  }
  current = answer;
  only(null);
  say(
    answer.recovery_codes_remaining === undefined
      ? ''
      : `Recovery code accepted. You have ${answer.recovery_codes_remaining} left.`,
  );
  switch (answer.step) {
    case 'identify':
      return showIdentify(answer);
    case 'first_factor':
    case 'second_factor':
      return showFactors(answer);
    case 'enroll':
      return showEnroll(answer);
    case 'consent':
      return showConsent(answer);
  }
}

function showIdentify(answer) {
  $('step-identify').hidden = false;
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
    fail(error.message);
  }
}

function showFactors(answer) {
  $('step-first-factor').hidden = false;
  const second = answer.step === 'second_factor';
  $('factor-intro').hidden = second;
  $('signing-in-as').textContent = answer.email || '';
  if (second) say('Confirm it’s you with a second step.');
  if (answer.reason === 'step_up') say('This app asks you to confirm with a passkey.');
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
  if (answer.signup_open && !second && !answer.methods.includes('email_otp')) {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'secondary';
    button.textContent = 'New here? Create an account';
    button.addEventListener('click', () => busy(sendCode));
    buttons.append(button);
  }
}

function chooseMethod(method) {
  if (method === 'passkey') return busy(signInWithPasskey);
  if (method === 'email_otp') return busy(sendCode);
  if (method === 'password') return showPassword({ choosing: false });
  if (method === 'recovery_code') {
    only($('step-recovery-code'));
    $('recovery-code').value = '';
    $('recovery-code').focus();
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
  only($('step-password'));
  const input = $('password');
  $('password-username').value = current?.email || '';
  input.value = '';
  input.autocomplete = choosing ? 'new-password' : 'current-password';
  $('password-label').textContent = choosing ? 'Choose a password' : 'Password';
  $('password-submit').textContent = choosing ? 'Create account' : 'Sign in';
  $('password-hint').hidden = !choosing;
  $('password-hint').textContent = 'Use at least 10 characters; a long phrase is easiest to remember.';
  $('password-form').dataset.choosing = String(choosing);
  input.focus();
}

async function sendCode(email) {
  const body = typeof email === 'string' ? { email } : {};
  const answer = await call('email-otp/send', body);
  current = answer;
  only($('step-code'));
  $('code-email').textContent = answer.email || '';
  $('code').value = '';
  $('code').focus();
}

function showEnroll(answer) {
  const text = {
    signup:
      'Create a passkey to finish setting up your account. Your device will ask you to confirm with your fingerprint, face or screen lock.',
    offer: 'Sign in faster next time: create a passkey on this device. No password to remember.',
    second_factor: 'Your account needs a passkey as a second step. Create one now to continue.',
    recovery:
      'You signed in with a recovery code. Create a passkey on this device to replace the one you lost.',
  };
  const passkey = answer.methods.includes('passkey');
  const password = answer.methods.includes('password');
  if (answer.reason === 'signup' && password && !passkey) return showPassword({ choosing: true });
  $('step-enroll').hidden = false;
  $('enroll-text').textContent = text[answer.reason] || text.offer;
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
        busy(async () => show(await call('passkey/remove', { id: passkey.id }))),
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

function showRecoveryCodes(answer) {
  only($('step-recovery-codes'));
  $('recovery-code-list').replaceChildren(
    ...answer.recovery_codes.map((code) => {
      const item = document.createElement('li');
      item.textContent = code;
      return item;
    }),
  );
  const { recovery_codes: _shown, ...rest } = answer;
  $('codes-saved').onclick = () => show(rest);
  $('codes-saved').focus();
}

function showConsent(answer) {
  $('step-consent').hidden = false;
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
  if (!email) return fail('Enter your email address.');
  WebAuthnAbortService.cancelCeremony();
  busy(async () => show(await call('identify', { email })));
});
$('passkey-button').addEventListener('click', () => busy(signInWithPasskey));
$('change-email').addEventListener('click', () => {
  only($('step-identify'));
  $('passkey-first').hidden = true;
  $('email').focus();
});
$('password-form').addEventListener('submit', (event) => {
  event.preventDefault();
  busy(async () => show(await call('password', { password: $('password').value })));
});
$('password-back').addEventListener('click', () => show(current));
$('code-form').addEventListener('submit', (event) => {
  event.preventDefault();
  busy(async () => show(await call('email-otp/verify', { code: $('code').value.trim() })));
});
$('resend-code').addEventListener('click', () => busy(() => sendCode()));
$('recovery-form').addEventListener('submit', (event) => {
  event.preventDefault();
  busy(async () => show(await call('recovery-code', { code: $('recovery-code').value.trim() })));
});
$('recovery-back').addEventListener('click', () => show(current));
$('enroll-form').addEventListener('submit', (event) => {
  event.preventDefault();
  busy(() => createPasskey());
});
$('choose-password').addEventListener('click', () => showPassword({ choosing: true }));
$('skip-enroll').addEventListener('click', () => busy(async () => show(await call('enroll/skip', {}))));
$('consent-allow').addEventListener('click', () =>
  busy(async () => show(await call('consent', { decision: 'allow' }))),
);
$('consent-deny').addEventListener('click', () =>
  busy(async () => show(await call('consent', { decision: 'deny' }))),
);
$('cancel').addEventListener('click', () => {
  WebAuthnAbortService.cancelCeremony();
  busy(async () => show(await call('abort', {})));
});

busy(async () => show(await call('state')));
