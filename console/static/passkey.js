// Passkeys (WebAuthn) for the Vitalgate console: the one script of the console, served from
// its own origin (CSP script-src 'self'); every page works without it except passkeys.
'use strict';

function b64urlToBytes(s) {
  const pad = '='.repeat((4 - (s.length % 4)) % 4);
  const bin = atob((s + pad).replace(/-/g, '+').replace(/_/g, '/'));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

function bytesToB64url(buf) {
  let bin = '';
  for (const b of new Uint8Array(buf)) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

async function post(path, body) {
  const token = document.querySelector('meta[name="form-token"]').content;
  const resp = await fetch(path, {
    method: 'POST', credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json', 'X-Form-Token': token },
    body: body === undefined ? '{}' : JSON.stringify(body),
  });
  const data = await resp.json();
  if (!resp.ok) throw new Error(data.error || 'request failed');
  return data;
}

function showError(err) {
  const el = document.getElementById('passkey-error');
  if (el) {
    el.textContent = err.message || String(err);
    el.hidden = false;
  }
}

async function addPasskey() {
  const { publicKey } = await post('/console/passkeys/begin');
  publicKey.challenge = b64urlToBytes(publicKey.challenge);
  publicKey.user.id = b64urlToBytes(publicKey.user.id);
  for (const c of publicKey.excludeCredentials || []) c.id = b64urlToBytes(c.id);
  const cred = await navigator.credentials.create({ publicKey });
  await post('/console/passkeys/finish', {
    id: cred.id, rawId: bytesToB64url(cred.rawId), type: cred.type,
    response: {
      clientDataJSON: bytesToB64url(cred.response.clientDataJSON),
      attestationObject: bytesToB64url(cred.response.attestationObject),
      transports: cred.response.getTransports ? cred.response.getTransports() : [],
    },
  });
  document.getElementById('passkey-added').hidden = false;
}

async function loginPasskey() {
  const { publicKey } = await post('/console/login/passkey/begin');
  publicKey.challenge = b64urlToBytes(publicKey.challenge);
  for (const c of publicKey.allowCredentials || []) c.id = b64urlToBytes(c.id);
  const cred = await navigator.credentials.get({ publicKey });
  const r = cred.response;
  const done = await post('/console/login/passkey/finish', {
    id: cred.id, rawId: bytesToB64url(cred.rawId), type: cred.type,
    response: {
      clientDataJSON: bytesToB64url(r.clientDataJSON),
      authenticatorData: bytesToB64url(r.authenticatorData),
      signature: bytesToB64url(r.signature),
      userHandle: r.userHandle ? bytesToB64url(r.userHandle) : null,
    },
  });
  window.location.assign(done.redirect);
}

// A dangerous act confirmed with a passkey: the assertion goes to the act's own endpoint.
async function actWithPasskey(action) {
  const { publicKey } = await post('/console/reauth/passkey/begin');
  publicKey.challenge = b64urlToBytes(publicKey.challenge);
  for (const c of publicKey.allowCredentials || []) c.id = b64urlToBytes(c.id);
  const cred = await navigator.credentials.get({ publicKey });
  const r = cred.response;
  const done = await post(action, {
    id: cred.id, rawId: bytesToB64url(cred.rawId), type: cred.type,
    response: {
      clientDataJSON: bytesToB64url(r.clientDataJSON),
      authenticatorData: bytesToB64url(r.authenticatorData),
      signature: bytesToB64url(r.signature),
      userHandle: r.userHandle ? bytesToB64url(r.userHandle) : null,
    },
  });
  window.location.assign(done.redirect);
}

document.addEventListener('DOMContentLoaded', () => {
  const act = document.getElementById('revoke-passkey');
  if (act) act.addEventListener('click', () => actWithPasskey(act.dataset.action).catch(showError));
  const add = document.getElementById('passkey-add');
  if (add) add.addEventListener('click', () => addPasskey().catch(showError));
  const login = document.getElementById('passkey-login');
  if (login) login.addEventListener('click', () => loginPasskey().catch(showError));
});
