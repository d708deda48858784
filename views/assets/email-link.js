// The page an email link opens. The code rides in the fragment (no server
// sees it). In the browser that asked for it, the interaction's cookie is
// here: the code is entered as if typed, and the sign-in goes on. Anywhere
// else nobody is signed in: the page only shows the code, for the user to
// type where they asked for it.

const root = document.getElementById('email-link');
const { base } = root.dataset;
const $ = (id) => document.getElementById(id);
const code = new URLSearchParams(location.hash.slice(1)).get('code') ?? '';
// Out of the address bar and history at once.
history.replaceState(null, '', location.pathname);

async function call(path, body) {
  const response = await fetch(`${base}/${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: body === undefined ? { accept: 'application/json' } : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
  });
  return { ok: response.ok, answer: await response.json().catch(() => ({})) };
}

function showElsewhere() {
  $('heading').textContent = 'Enter this code where you asked for it';
  $('status').textContent = '';
  $('code').textContent = code;
  $('elsewhere').hidden = false;
  $('heading').focus();
}

function fail(message) {
  $('heading').textContent = 'This link did not work';
  $('status').textContent = '';
  $('error').textContent = message;
  $('error').focus();
}

async function run() {
  if (!/^\d{6}$/.test(code))
    return fail('This link is incomplete. Open it again from the email, or enter the code by hand.');
  const state = await call('state');
  if (!state.ok) return showElsewhere();
  const verified = await call('email-otp/verify', { code });
  if (!verified.ok)
    return fail(
      verified.answer.error_description || 'This link was already used or has expired. Ask for a new code.',
    );
  // Signed in: on to the app; another step (a passkey, consent): the sign-in page shows it.
  location.assign(verified.answer.redirect_to ?? base);
}

run().catch(() => fail('Something went wrong. Go back to the sign-in page and enter the code by hand.'));
