// Drives Vitalgate's web console in headless Chromium (Debian's chromium) with playwright-core,
// as people would: first sign-in with the setup code (password + TOTP), the fleet, a
// patient's chart and the audit log, a stored XSS payload shown as text, a cross-origin
// form post refused, framing refused, a patient outside the care team refused, and the
// idle logoff, a device revoked only after re-authentication, a passkey added and used
// through Chromium's virtual authenticator. Screenshots go to VG_ARTIFACTS. Run by e2e/console_test.go
// (TestConsoleBrowser), which seeds the server and passes it in the environment.
import { chromium } from 'playwright-core';
import { createHmac } from 'node:crypto';
import { join } from 'node:path';

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const url = env('VG_URL');
const artifacts = env('VG_ARTIFACTS');
// The idle logoff runs on a second server with a short idle timeout, so that no pause of a
// loaded machine can log the people of the main flow off.
const idleURL = env('VG_IDLE_URL');
const idleMs = Number(env('VG_IDLE_MS'));
const [pa, pb] = [env('VG_PA'), env('VG_PB')];
const setup = { ada: env('VG_SETUP_ADA'), doc: env('VG_SETUP_DOC'), aud: env('VG_SETUP_AUD'), idle: env('VG_SETUP_IDLE') };
const xss = { model: env('VG_XSS_MODEL'), ident: env('VG_XSS_IDENT') };

function check(cond, what) {
  if (!cond) throw new Error('check failed: ' + what);
}

function base32(s) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0, value = 0;
  const out = [];
  for (const c of s) {
    value = (value << 5) | alphabet.indexOf(c);
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

// RFC 6238 with HMAC-SHA-256, 6 digits, 30 s: what an authenticator app computes.
function totp(key, step) {
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(step));
  const h = createHmac('sha256', key).update(msg).digest();
  const off = h[h.length - 1] & 0x0f;
  return String((h.readUInt32BE(off) & 0x7fffffff) % 1000000).padStart(6, '0');
}

// A person: a browser context of its own, its authenticator, the last step it used.
async function person(browser, id, base = url) {
  const context = await browser.newContext({ ignoreHTTPSErrors: true }); // the deployment's own CA is not in Chromium's store
  const page = await context.newPage();
  const p = { id, base, context, page, key: null, last: 0, dialogs: [] };
  page.on('dialog', async (d) => { p.dialogs.push(d.message()); await d.dismiss(); });
  p.code = async () => {
    for (;;) {
      const cur = Math.floor(Date.now() / 30000);
      const step = Math.max(p.last + 1, cur - 1);
      if (step <= cur + 1) {
        p.last = step;
        return totp(p.key, step);
      }
      await new Promise((r) => setTimeout(r, 1000)); // every acceptable code used: the next step
    }
  };
  return p;
}

async function signUp(p) {
  const { page, base } = p;
  await page.goto(base + '/console/setup');
  await page.fill('#id', p.id);
  await page.fill('#setup', setup[p.id]);
  await page.click('#next');
  p.key = base32((await page.textContent('#secret')).trim());
  const pw = 'correct horse battery ' + p.id;
  await page.fill('#password', pw);
  await page.fill('#password2', pw);
  await page.fill('#code', await p.code());
  await Promise.all([page.waitForURL(base + '/console/'), page.click('#finish')]);
  check((await page.textContent('#who')).includes(p.id), `${p.id} is signed in`);
}

// addPasskey gives p's browser a virtual authenticator and adds a passkey with it.
async function addPasskey(p) {
  const cdp = await p.context.newCDPSession(p.page);
  await cdp.send('WebAuthn.enable');
  await cdp.send('WebAuthn.addVirtualAuthenticator', { options: { protocol: 'ctap2', transport: 'internal',
    hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true } });
  await p.page.goto(url + '/console/passkeys');
  await p.page.click('#passkey-add');
  await p.page.waitForSelector('#passkey-added:not([hidden]), #passkey-error:not([hidden])');
  check(await p.page.isVisible('#passkey-added'), `${p.id}'s passkey was added: ` + (await p.page.textContent('#passkey-error')));
}

async function noScriptRan(p) {
  check(p.dialogs.length === 0, `no dialog opened for ${p.id}: ${p.dialogs}`);
  const title = await p.page.title();
  check(!title.includes('pwned'), `no payload ran for ${p.id} (title ${title})`);
}

const browser = await chromium.launch({
  executablePath: process.env.VG_CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
});
try {
  const [ada, doc, aud, idle] = await Promise.all([person(browser, 'ada'), person(browser, 'doc'), person(browser, 'aud'), person(browser, 'idle', idleURL)]);
  await Promise.all([signUp(ada), signUp(doc), signUp(aud), signUp(idle)]);
  const idleSince = Date.now(); // idle's last request: the page after the setup

  // Fleet (admin): the stored model is text, never markup.
  await ada.page.goto(url + '/console/fleet');
  const model = await ada.page.textContent('#fleet td.model');
  check(model === xss.model, `the device model is shown as text (${model})`);
  check(await ada.page.locator('#fleet img').count() === 0, 'no element from the payload');
  await ada.page.screenshot({ path: join(artifacts, 'fleet.png'), fullPage: true });
  await noScriptRan(ada);

  // Patients (clinician): search by the stored identifier, the chart of the care team's patient.
  await doc.page.goto(url + '/console/patients?identifier=' + encodeURIComponent('urn:test:mrn|' + xss.ident));
  const ident = await doc.page.textContent('#patients .ident');
  check(ident.includes(xss.ident), `the identifier is shown as text (${ident})`);
  await doc.page.goto(url + '/console/patients/' + pa + '?range=6h');
  check(await doc.page.locator('svg.vitals polyline').count() >= 1, 'a vital-signs chart');
  await doc.page.screenshot({ path: join(artifacts, 'patient-chart.png'), fullPage: true });
  await noScriptRan(doc);
  const other = await doc.page.goto(url + '/console/patients/' + pb);
  check(other.status() === 403, `a patient outside the care team is refused (${other.status()})`);
  check((await doc.page.textContent('#error')).includes('care team'), 'the refusal says why');

  // Audit (auditor): search, verification status, an entry.
  await aud.page.goto(url + '/console/audit?agent=doc');
  check(await aud.page.locator('#integrity').count() === 1, 'the integrity status');
  check((await aud.page.textContent('#audit')).includes('console-login'), "doc's sign-in is in the log");
  await aud.page.screenshot({ path: join(artifacts, 'audit.png'), fullPage: true });
  await aud.page.click('#audit tbody tr td a');
  check((await aud.page.textContent('#entry')).includes('AuditEvent'), 'an entry in detail');

  // Framing refused: the header, and Chromium showing nothing of the console in a frame.
  const resp = await ada.page.goto(url + '/console/login');
  const h = resp.headers();
  check(h['content-security-policy'].includes("frame-ancestors 'none'") && h['x-frame-options'] === 'DENY', 'framing is refused by header');
  check(!h['content-security-policy'].includes('unsafe-inline') && !h['content-security-policy'].includes('unsafe-eval'), 'no unsafe CSP source');
  await ada.context.route('https://framer.test/', (r) => r.fulfill({ contentType: 'text/html', body: `<iframe id="f" src="${url}/console/login"></iframe>` }));
  await ada.page.goto('https://framer.test/');
  await ada.page.waitForTimeout(500);
  const framed = ada.page.frames().find((f) => f !== ada.page.mainFrame());
  const framedSignIn = framed ? await framed.locator('#signin').count().catch(() => 0) : 0;
  check(framedSignIn === 0, 'the console does not render in a frame');

  // Revoking a device is a dangerous act: it takes the password and a new code again.
  await ada.page.goto(url + '/console/devices/dev-b');
  await ada.page.fill('#reauth-password', 'correct horse battery ada');
  await ada.page.fill('#reauth-code', '000000');
  await ada.page.click('#revoke');
  check((await ada.page.textContent('#error')).includes('sign-in failed'), 'a revoke without the right code is refused');
  check((await ada.page.textContent('#status')).startsWith('active'), 'the device is still active');
  await ada.page.fill('#reauth-password', 'correct horse battery ada');
  await ada.page.fill('#reauth-code', await ada.code());
  await Promise.all([ada.page.waitForURL(/revoked=1/), ada.page.click('#revoke')]);
  check((await ada.page.textContent('#status')).startsWith('revoked'), 'the device is revoked after re-authentication');
  await ada.page.screenshot({ path: join(artifacts, 'device-revoked.png'), fullPage: true });

  // The same act confirmed with a passkey instead (Chromium's virtual authenticator).
  await addPasskey(ada);
  await ada.page.goto(url + '/console/devices/dev-c');
  await Promise.all([ada.page.waitForURL(/revoked=1/, { timeout: 10000 }), ada.page.click('#revoke-passkey')]).catch(async (e) => {
    throw new Error('revoke with a passkey: ' + (await ada.page.textContent('#passkey-error')) + ' ' + e);
  });
  check((await ada.page.textContent('#status')).startsWith('revoked'), 'the device is revoked after a passkey re-authentication');

  // CSRF: a page of another origin posts the logout form with the victim's browser.
  await doc.context.route('https://evil.test/', (r) => r.fulfill({
    contentType: 'text/html',
    body: `<form id="f" method="post" action="${url}/console/logout"><input name="csrf_token" value="forged"></form>` +
      '<script>document.getElementById("f").submit()</script>',
  }));
  const [forged] = await Promise.all([
    doc.page.waitForResponse((r) => r.url() === url + '/console/logout'),
    doc.page.goto('https://evil.test/'),
  ]);
  check(forged.status() === 403, `a cross-origin post is refused (${forged.status()})`);
  const still = await doc.page.goto(url + '/console/');
  check(still.url() === url + '/console/', 'the session survived the forged post');

  // A passkey (Chromium's virtual authenticator, relying-party id localhost): added once
  // signed in, then the sign-in after a sign-out takes only the passkey.
  await addPasskey(aud);

  // Sign-out ends the session; signing in again with the passkey works.
  await Promise.all([aud.page.waitForURL(url + '/console/login'), aud.page.click('#logout')]);
  await aud.page.goto(url + '/console/audit');
  check(aud.page.url().startsWith(url + '/console/login'), 'signed out');
  await aud.page.click('#passkey-login');
  await aud.page.waitForURL(url + '/console/', { timeout: 10000 }).catch(async () => {
    throw new Error('passkey sign-in: ' + (await aud.page.textContent('#passkey-error')));
  });
  check((await aud.page.textContent('#who')).includes('aud'), 'signed in with the passkey');
  await aud.page.goto(url + '/console/audit?agent=aud');
  check((await aud.page.textContent('#audit')).includes('signed in with a passkey'), 'the passkey sign-in is audited');

  // Idle logoff (the second server): nothing for longer than the idle timeout, then the
  // next page asks for a new sign-in.
  await idle.page.waitForTimeout(Math.max(0, idleSince + idleMs + 1500 - Date.now()));
  await idle.page.goto(idleURL + '/console/fleet');
  check(idle.page.url().startsWith(idleURL + '/console/login'), `idle logoff (${idle.page.url()})`);
  check(await idle.page.locator('#ended').count() === 1, 'the page says the session ended');
  console.log(JSON.stringify({ ok: true, screenshots: ['fleet.png', 'patient-chart.png', 'audit.png', 'device-revoked.png'] }));
} finally {
  await browser.close();
}
