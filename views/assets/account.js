// The account page. It signs in like any public client of the pool: the
// authorization code flow with PKCE S256 (RFC 7636), state and the `iss`
// response parameter (RFC 9207) checked, the code redeemed from the browser.
// The access token stays in sessionStorage (this tab only) and is sent to the
// self-service API; a refused token means signing in again, a stale sign-in
// (login_required) asks the user to sign in again before a change.

import { clearInvalid, markInvalid } from '/assets/field-errors.js';
import { showRecoveryCodes } from '/assets/recovery-codes.js';
import { startRegistration, WebAuthnError } from '/assets/vendor/simplewebauthn/index.js';

const root = document.getElementById('account');
const { issuer, clientId, poolName } = root.dataset;
const pageUrl = `${issuer}/account`;
const api = `${issuer}/api/self`;
const TOKEN_KEY = `postern.account:${issuer}:token`;
const FLOW_KEY = `postern.account:${issuer}:flow`;
const SIGNED_OUT = 'signed-out';
let justSignedIn = false;

const $ = (id) => document.getElementById(id);
const errorBox = $('error');
const statusBox = $('status');

/** An answer the page has already shown the user; nothing more to say. */
class Shown extends Error {}

class ApiError extends Error {
  constructor(code, description) {
    super(description || 'Something went wrong. Try again.');
    this.code = code;
  }
}

/** Shows an error; `field` (optional) is the input it is about: marked invalid, described by it, focused. */
function fail(message, field) {
  statusBox.textContent = '';
  errorBox.textContent = message;
  if (field) {
    markInvalid(field);
    field.focus();
  }
}

function say(message) {
  errorBox.textContent = '';
  statusBox.textContent = message;
}

/**
 * Runs `work` with the page's buttons disabled, showing any error in the
 * alert; `fieldOf(code)` (optional) names the input an error code is about.
 * Focus lost to a disabled or removed button comes back to the heading.
 */
async function busy(work, fieldOf) {
  const before = document.activeElement;
  const buttons = [...root.querySelectorAll('button')];
  for (const button of buttons) button.disabled = true;
  errorBox.textContent = '';
  for (const field of root.querySelectorAll('[aria-invalid]')) clearInvalid(field);
  let failure;
  try {
    await work();
  } catch (error) {
    if (!(error instanceof Shown))
      failure = {
        message: error.message || 'Something went wrong. Try again.',
        field: fieldOf?.(error.code),
      };
  } finally {
    for (const button of buttons) button.disabled = false;
    if (failure) fail(failure.message, failure.field?.closest('[hidden]') ? undefined : failure.field);
    if (!document.activeElement || document.activeElement === document.body) {
      const back = before?.isConnected && !before.closest('[hidden]') ? before : $('heading');
      back.focus();
    }
  }
}

/** What a change signed out elsewhere (the answer's `signed_out`), in a sentence; empty when nothing. */
function signedOutNote(answer) {
  const { sessions = 0, apps = 0 } = answer?.signed_out ?? {};
  const browsers = sessions === 1 ? 'one other browser' : `${sessions} other browsers`;
  const appsText = apps === 1 ? 'one app' : `${apps} apps`;
  if (sessions > 0 && apps > 0)
    return ` Your account was signed out on ${browsers}, and ${appsText} will ask you to sign in again.`;
  if (sessions > 0) return ` Your account was signed out on ${browsers}.`;
  if (apps > 0) return ` ${apps === 1 ? 'One app' : `${apps} apps`} will ask you to sign in again.`;
  return '';
}

const base64url = (bytes) =>
  btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, '-')
    .replace(/\//g, '_')
    .replace(/=+$/, '');
const randomString = () => base64url(crypto.getRandomValues(new Uint8Array(32)));

let discovery;
function metadata() {
  discovery ??= fetch(`${issuer}/.well-known/openid-configuration`)
    .then((response) => {
      if (!response.ok) throw new Error();
      return response.json();
    })
    .catch(() => {
      discovery = undefined; // the next try asks again
      throw new Error('The sign-in service is not reachable. Try again later.');
    });
  return discovery;
}

/** Leaves for the pool's sign-in page; `fresh` asks for a new authentication (prompt=login). */
async function signIn({ fresh = false } = {}) {
  const { authorization_endpoint } = await metadata();
  const verifier = randomString();
  const state = randomString();
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
  sessionStorage.setItem(FLOW_KEY, JSON.stringify({ verifier, state }));
  const url = new URL(authorization_endpoint);
  url.search = new URLSearchParams({
    response_type: 'code',
    client_id: clientId,
    redirect_uri: pageUrl,
    scope: 'openid email',
    state,
    code_challenge: base64url(new Uint8Array(digest)),
    code_challenge_method: 'S256',
    ...(fresh ? { prompt: 'login' } : {}),
  }).toString();
  location.assign(url.href);
  throw new Shown();
}

/** Back from the sign-in page: checks the answer and redeems the code for an access token. */
async function finishSignIn(params) {
  history.replaceState(null, '', location.pathname);
  const flow = JSON.parse(sessionStorage.getItem(FLOW_KEY) || 'null');
  sessionStorage.removeItem(FLOW_KEY);
  // oidc-provider always sends iss (RFC 9207), so an answer without it is not from this issuer.
  if (!flow || params.get('state') !== flow.state || params.get('iss') !== issuer) {
    throw new Error('That sign-in was not started here. Sign in again.');
  }
  if (params.has('error')) {
    throw new Error(
      params.get('error') === 'access_denied'
        ? 'Signing in was cancelled.'
        : 'Signing in did not work. Try again.',
    );
  }
  const { token_endpoint } = await metadata();
  const response = await fetch(token_endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code: params.get('code') || '',
      redirect_uri: pageUrl,
      client_id: clientId,
      code_verifier: flow.verifier,
    }),
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok || typeof answer.access_token !== 'string') {
    throw new Error('Signing in did not work. Try again.');
  }
  sessionStorage.setItem(TOKEN_KEY, answer.access_token);
  justSignedIn = true;
}

/** One self-service call; answers the parsed body (undefined for 204). */
async function call(method, path, body) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token && justSignedIn)
    throw new Error('This browser did not keep your sign-in. Allow site storage and reload.');
  if (!token) return signIn();
  const response = await fetch(`${api}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      accept: 'application/json',
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  if (response.status === 204) return undefined;
  const answer = await response.json().catch(() => ({}));
  if (response.ok) return answer;
  if (answer.error === 'invalid_token') {
    // Expired or revoked: a new sign-in (usually silent, from the session) gets a new token,
    // unless this one is brand new, which a new sign-in would not change.
    sessionStorage.removeItem(TOKEN_KEY);
    if (justSignedIn) {
      $('signed-out').hidden = false;
      throw new Error('Your sign-in was not accepted here. Try signing in again.');
    }
    return signIn();
  }
  if (answer.error === 'login_required') {
    $('reauth').hidden = false;
    fail(answer.error_description || 'Sign in again to continue.');
    throw new Shown();
  }
  throw new ApiError(answer.error, answer.error_description);
}

function formatDate(iso) {
  return iso ? new Date(iso).toLocaleDateString(undefined, { dateStyle: 'medium' }) : 'never';
}

function describe(passkey) {
  const kind = passkey.device_bound ? 'on this device only' : passkey.backed_up ? 'synced' : 'can sync';
  const model = passkey.authenticator ? `${passkey.authenticator}, ` : '';
  return `${model}${kind} · added ${formatDate(passkey.created_at)} · last used ${formatDate(passkey.last_used_at)}`;
}

function passkeyItem(passkey) {
  const item = document.createElement('li');
  const name = document.createElement('strong');
  name.textContent = passkey.name;
  const details = document.createElement('p');
  details.className = 'muted';
  details.textContent = describe(passkey);

  const rename = document.createElement('button');
  rename.type = 'button';
  rename.className = 'secondary';
  rename.textContent = 'Rename';
  rename.setAttribute('aria-label', `Rename ${passkey.name}`);
  rename.addEventListener('click', () => item.replaceChildren(renameForm(passkey)));

  const remove = document.createElement('button');
  remove.type = 'button';
  remove.className = 'secondary';
  remove.textContent = 'Remove';
  remove.setAttribute('aria-label', `Remove ${passkey.name}`);
  remove.addEventListener('click', () => {
    // Removing is for good: the first press asks, the second does it.
    if (remove.dataset.confirm !== 'yes') {
      remove.dataset.confirm = 'yes';
      remove.textContent = 'Press again to remove';
      remove.setAttribute('aria-label', `Confirm removing ${passkey.name}`);
      return;
    }
    busy(async () => {
      const answer = await call('DELETE', `/passkeys/${encodeURIComponent(passkey.id)}`);
      await showPasskeys();
      say(`“${passkey.name}” was removed.${signedOutNote(answer)}`);
    });
  });
  item.append(name, details, rename, remove);
  return item;
}

function renameForm(passkey) {
  const form = document.createElement('form');
  form.noValidate = true;
  const label = document.createElement('label');
  label.htmlFor = `rename-${passkey.id}`;
  label.textContent = `New name for “${passkey.name}”`;
  const input = document.createElement('input');
  input.type = 'text';
  input.id = `rename-${passkey.id}`;
  input.maxLength = 64;
  input.value = passkey.name;
  const save = document.createElement('button');
  save.type = 'submit';
  save.textContent = 'Save name';
  const cancel = document.createElement('button');
  cancel.type = 'button';
  cancel.className = 'secondary';
  cancel.textContent = 'Cancel';
  cancel.addEventListener('click', () => busy(showPasskeys));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    busy(async () => {
      await call('PATCH', `/passkeys/${encodeURIComponent(passkey.id)}`, { name: input.value });
      await showPasskeys();
      say('The passkey was renamed.');
    });
  });
  form.append(label, input, save, cancel);
  queueMicrotask(() => input.focus());
  return form;
}

async function showPasskeys() {
  const passkeys = await call('GET', '/passkeys');
  const list = $('passkey-list');
  if (passkeys.length === 0) {
    const empty = document.createElement('li');
    empty.textContent = 'You have no passkeys yet.';
    list.replaceChildren(empty);
  } else {
    list.replaceChildren(...passkeys.map(passkeyItem));
  }
}

function showCodes(codes) {
  $('new-codes').hidden = false;
  showRecoveryCodes({
    list: $('new-code-list'),
    copyButton: $('copy-codes'),
    downloadLink: $('download-codes'),
    codes,
    service: poolName,
    account: $('account-email').textContent,
    report: (message, ok) => (ok ? say(message) : fail(message)),
  });
  $('recovery-remaining').textContent = `You have ${codes.length} unused recovery codes.`;
}

async function showAccount() {
  const summary = await call('GET', '');
  $('account-email').textContent = summary.email;
  $('password-username').value = summary.email;
  $('add-passkey-form').hidden = !summary.passkeys.enabled;
  $('password-section').hidden = !summary.password.enabled;
  $('current-password-field').hidden = !summary.password.set;
  $('password-submit').textContent = summary.password.set ? 'Change password' : 'Set a password';
  $('new-password-hint').textContent =
    `At least ${summary.password.min_length} characters; a long phrase is easiest to remember.`;
  $('recovery-section').hidden = !summary.recovery_codes.enabled;
  $('recovery-remaining').textContent =
    `You have ${summary.recovery_codes.remaining} unused recovery code${summary.recovery_codes.remaining === 1 ? '' : 's'}.`;
  showTotp(summary.totp);
  await showPasskeys();
  $('signed-in').hidden = false;
  say('');
}

$('add-passkey-form').addEventListener('submit', (event) => {
  event.preventDefault();
  busy(async () => {
    const name = $('new-passkey-name').value.trim();
    const optionsJSON = await call('POST', '/passkeys/register/options', {});
    let response;
    try {
      response = await startRegistration({ optionsJSON });
    } catch (error) {
      if (error instanceof WebAuthnError && error.code === 'ERROR_AUTHENTICATOR_PREVIOUSLY_REGISTERED') {
        throw new Error('This device already holds one of your passkeys.');
      }
      if (error.name === 'NotAllowedError' || error.name === 'AbortError') {
        throw new Error('Creating the passkey was cancelled or timed out.');
      }
      throw error;
    }
    say('Saving your passkey…');
    const added = await call('POST', '/passkeys/register/verify', name ? { response, name } : { response });
    $('new-passkey-name').value = '';
    if (added.recovery_codes) showCodes(added.recovery_codes);
    await showPasskeys();
    say(`“${added.name}” was added.`);
  });
});

$('password-form').addEventListener('submit', (event) => {
  event.preventDefault();
  busy(async () => {
    const setBefore = !$('current-password-field').hidden;
    const answer = await call('PUT', '/password', {
      password: $('new-password').value,
      ...(setBefore ? { current_password: $('current-password').value } : {}),
    });
    $('current-password').value = '';
    $('new-password').value = '';
    $('current-password-field').hidden = false;
    $('password-submit').textContent = 'Change password';
    say(`${setBefore ? 'Your password was changed.' : 'Your password was set.'}${signedOutNote(answer)}`);
  }, passwordFieldOf);
});

/** The password form's input an error is about. */
function passwordFieldOf(code) {
  if (code === 'weak_password') return $('new-password');
  if (code === 'invalid_credentials' || code === 'invalid_request')
    return $('current-password-field').hidden ? $('new-password') : $('current-password');
  return undefined;
}

/** The authenticator app section: where the pool takes one, whether one is set. */
function showTotp({ enabled, set }) {
  $('totp-section').hidden = !enabled;
  $('totp-status').textContent = set
    ? 'An authenticator app gives you codes for signing in.'
    : 'Use codes from an authenticator app as a second step when you sign in.';
  $('totp-setup').hidden = set;
  $('totp-remove').hidden = !set;
  $('totp-enrol').hidden = true;
}
$('totp-setup').addEventListener('click', () =>
  busy(async () => {
    const setup = await call('POST', '/totp/setup', {});
    $('totp-qr').src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(setup.qr_svg)}`;
    $('totp-secret').textContent = setup.secret;
    $('totp-setup').hidden = true;
    $('totp-enrol').hidden = false;
    $('totp-code').value = '';
    $('totp-code').focus();
  }),
);
$('totp-form').addEventListener('submit', (event) => {
  event.preventDefault();
  busy(
    async () => {
      await call('POST', '/totp/confirm', { code: $('totp-code').value.trim() });
      showTotp({ enabled: true, set: true });
      say(
        'Your authenticator app is set up. Sign-ins will ask for its code, or for a passkey once you have one.',
      );
    },
    (code) => (code === 'invalid_code' || code === 'invalid_request' ? $('totp-code') : undefined),
  );
});
$('totp-remove').addEventListener('click', () =>
  busy(async () => {
    const answer = await call('DELETE', '/totp');
    showTotp({ enabled: true, set: false });
    say(`The authenticator app was removed.${signedOutNote(answer)}`);
  }),
);

// New codes end the old ones at once: the user confirms first.
function confirmNewCodes(asking) {
  $('new-codes-button').hidden = asking;
  $('new-codes-confirm').hidden = !asking;
  (asking ? $('new-codes-yes') : $('new-codes-button')).focus();
}
$('new-codes-button').addEventListener('click', () => confirmNewCodes(true));
$('new-codes-no').addEventListener('click', () => confirmNewCodes(false));
$('new-codes-yes').addEventListener('click', () =>
  busy(async () => {
    const answer = await call('POST', '/recovery-codes', {});
    confirmNewCodes(false);
    showCodes(answer.recovery_codes);
    say(`New recovery codes were made; the old ones no longer work.${signedOutNote(answer)}`);
    $('new-codes').querySelector('p').setAttribute('tabindex', '-1');
    $('new-codes').querySelector('p').focus();
  }),
);
root.addEventListener('input', (event) => {
  if (event.target.getAttribute?.('aria-invalid')) clearInvalid(event.target);
});

$('reauth-button').addEventListener('click', () => busy(() => signIn({ fresh: true })));
$('sign-in').addEventListener('click', () => busy(() => signIn()));

$('sign-out').addEventListener('click', () =>
  busy(async () => {
    const token = sessionStorage.getItem(TOKEN_KEY);
    sessionStorage.removeItem(TOKEN_KEY);
    const { end_session_endpoint, revocation_endpoint } = await metadata();
    // The token dies now, even if the user then chooses to stay signed in to the service.
    if (token) {
      await fetch(revocation_endpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ token, token_type_hint: 'access_token', client_id: clientId }),
      }).catch(() => {});
    }
    const url = new URL(end_session_endpoint);
    url.search = new URLSearchParams({
      client_id: clientId,
      post_logout_redirect_uri: pageUrl,
      state: SIGNED_OUT,
    }).toString();
    location.assign(url.href);
    throw new Shown();
  }),
);

busy(async () => {
  // Reached at another address than the issuer's (a proxy's inner name): the sign-in and the API live there.
  if (location.origin !== new URL(issuer).origin) {
    location.replace(pageUrl);
    throw new Shown();
  }
  const params = new URLSearchParams(location.search);
  if (params.get('state') === SIGNED_OUT && !params.has('code')) {
    history.replaceState(null, '', location.pathname);
    $('signed-out').hidden = false;
    say('You are signed out.');
    return;
  }
  if (params.has('code') || params.has('error')) {
    try {
      await finishSignIn(params);
    } catch (error) {
      $('signed-out').hidden = false;
      throw error;
    }
  }
  await showAccount();
});
