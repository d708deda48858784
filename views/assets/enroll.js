// The enrolment page: the link an operator sent. The user proves their email
// with a code mailed to it, then creates a passkey; each step is one JSON call
// to `{base}/…` (same origin, with this browser's enrolment cookie).

import { clearInvalid, markInvalid } from '/assets/field-errors.js';
import { showRecoveryCodes } from '/assets/recovery-codes.js';
import { startRegistration, WebAuthnError } from '/assets/vendor/simplewebauthn/index.js';

const root = document.getElementById('enroll');
const { base, poolName } = root.dataset;
const $ = (id) => document.getElementById(id);
const errorBox = $('error');
const statusBox = $('status');

class ApiError extends Error {
  constructor(code, description) {
    super(description || 'Something went wrong. Try again.');
    this.code = code;
  }
}

async function call(path, body) {
  const response = await fetch(`${base}/${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: body === undefined ? { accept: 'application/json' } : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(answer.error, answer.error_description);
  return answer;
}

function say(message) {
  errorBox.textContent = '';
  statusBox.textContent = message;
}

/** Runs `work` with the buttons disabled; an error shows in the alert (on `field`, for a code error). */
async function busy(work, field) {
  const buttons = [...root.querySelectorAll('button')];
  for (const button of buttons) button.disabled = true;
  errorBox.textContent = '';
  if (field) clearInvalid(field);
  try {
    await work();
  } catch (error) {
    statusBox.textContent = '';
    errorBox.textContent = error.message || 'Something went wrong. Try again.';
    if (field && (error.code === 'invalid_code' || error.code === 'invalid_request')) {
      markInvalid(field);
      field.focus();
    } else {
      errorBox.focus();
    }
  } finally {
    for (const button of buttons) button.disabled = false;
  }
}

function show(step) {
  for (const id of ['step-prove', 'step-create', 'step-done']) $(id).hidden = id !== step;
}

function render(state) {
  $('prove-email').textContent = state.email;
  $('create-email').textContent = state.email;
  if (state.step === 'create_passkey') {
    show('step-create');
    say('');
    $('create-passkey').focus();
    return;
  }
  show('step-prove');
  $('code-form').hidden = !state.code_sent;
  if (state.code_sent) {
    say(`We sent a code to ${state.email}. It expires in 10 minutes.`);
    $('send-code').textContent = 'Send a new code';
    $('code').focus();
  } else {
    say('');
  }
}

$('send-code').addEventListener('click', () => busy(async () => render(await call('code/send', {}))));

$('code-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const field = $('code');
  busy(async () => render(await call('code/verify', { code: field.value.trim() })), field);
});

$('create-form').addEventListener('submit', (event) => {
  event.preventDefault();
  busy(async () => {
    const optionsJSON = await call('passkey/options', {});
    let response;
    try {
      response = await startRegistration({ optionsJSON });
    } catch (error) {
      if (error instanceof WebAuthnError && error.code === 'ERROR_AUTHENTICATOR_PREVIOUSLY_REGISTERED')
        throw new Error('This authenticator already holds a passkey for your account. Use another one.');
      throw new Error('The passkey was not created. Try again when you are ready.');
    }
    const name = $('passkey-name').value.trim();
    const answer = await call('passkey/verify', name ? { response, name } : { response });
    show('step-done');
    say('');
    $('done-message').textContent =
      `Your passkey “${answer.passkey.name}” is ready. You can now sign in to ${poolName} with it.`;
    if (answer.recovery_codes) {
      $('done-codes').hidden = false;
      showRecoveryCodes({
        list: $('code-list'),
        copyButton: $('copy-codes'),
        downloadLink: $('download-codes'),
        codes: answer.recovery_codes,
        service: poolName,
        account: $('create-email').textContent,
        report: (message) => say(message),
      });
    }
    $('heading').focus();
  });
});

busy(async () => render(await call('state')));
