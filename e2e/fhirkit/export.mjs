// Exports observations from Vitalgate with FHIR Bulk Data (kick-off, polling, manifest) using
// fhir-kit-client, then reads the NDJSON file with fetch (fhir-kit-client parses JSON, not
// NDJSON) and cancels a second export. Prints a JSON summary; exits non-zero on failure.
import { Client } from 'fhir-kit-client';

const { VG_URL, VG_CLIENT_ID, VG_CLIENT_SECRET } = process.env;

const basic = Buffer.from(`${VG_CLIENT_ID}:${VG_CLIENT_SECRET}`).toString('base64');
const tokenResp = await fetch(`${VG_URL}/oauth2/token`, {
  method: 'POST',
  headers: { Authorization: `Basic ${basic}`, 'Content-Type': 'application/x-www-form-urlencoded' },
  body: 'grant_type=client_credentials&scope=system/Observation.rs',
});
if (!tokenResp.ok) throw new Error(`token: ${tokenResp.status} ${await tokenResp.text()}`);
const { access_token: token } = await tokenResp.json();
const client = new Client({ baseUrl: `${VG_URL}/fhir`, bearerToken: token });

const kickOff = async () => {
  const res = await client.operation({
    name: '$export', resourceType: 'Patient', method: 'GET', input: { _type: 'Observation' },
    options: { headers: { Prefer: 'respond-async' } },
  });
  const { response } = Client.httpFor(res);
  if (response.status !== 202) throw new Error(`kick-off: ${response.status}`);
  return response.headers.get('content-location');
};

const statusUrl = await kickOff();
let manifest = null;
let polls = 0;
const progress = [];
for (; polls < 120 && !manifest; polls++) {
  const res = await client.request(statusUrl);
  const { response } = Client.httpFor(res);
  if (response.status === 200) {
    manifest = res;
  } else if (response.status === 202) {
    progress.push(response.headers.get('x-progress'));
    const wait = Number(response.headers.get('retry-after') || '1');
    await new Promise((r) => setTimeout(r, Math.min(wait, 1) * 250));
  } else {
    throw new Error(`status: ${response.status}`);
  }
}
if (!manifest) throw new Error('the export did not complete');

const file = await fetch(manifest.output[0].url, { headers: { Authorization: `Bearer ${token}` } });
const text = await file.text();
const ids = text.split('\n').filter((l) => l).map((l) => JSON.parse(l).id);

const second = await kickOff();
await client.request(second, { method: 'DELETE' });
let cancelledStatus = null;
try {
  await client.request(second);
} catch (err) {
  cancelledStatus = err.response && err.response.status;
}

console.log(JSON.stringify({
  requiresAccessToken: manifest.requiresAccessToken,
  outputType: manifest.output[0].type,
  outputCount: manifest.output[0].count,
  fileContentType: file.headers.get('content-type'),
  ids,
  cancelledStatus,
}));
