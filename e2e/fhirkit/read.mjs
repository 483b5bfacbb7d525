// Reads a patient's observations from Vitalgate with fhir-kit-client, authenticating with
// OAuth2 client credentials (client_secret_basic). Trusts the server's CA through
// NODE_EXTRA_CA_CERTS. Prints a JSON summary on standard output; exits non-zero on failure.
import { Client } from 'fhir-kit-client';

const { VG_URL, VG_CLIENT_ID, VG_CLIENT_SECRET, VG_PATIENT } = process.env;

const basic = Buffer.from(`${VG_CLIENT_ID}:${VG_CLIENT_SECRET}`).toString('base64');
const tokenResp = await fetch(`${VG_URL}/oauth2/token`, {
  method: 'POST',
  headers: { Authorization: `Basic ${basic}`, 'Content-Type': 'application/x-www-form-urlencoded' },
  body: 'grant_type=client_credentials&scope=system/Observation.rs',
});
if (!tokenResp.ok) throw new Error(`token: ${tokenResp.status} ${await tokenResp.text()}`);
const { access_token: token } = await tokenResp.json();

const client = new Client({ baseUrl: `${VG_URL}/fhir`, bearerToken: token });
const capability = await client.capabilityStatement();
const first = await client.search({ resourceType: 'Observation', searchParams: { patient: VG_PATIENT, _count: 2 } });
const ids = [];
let page = first;
while (page) {
  for (const e of page.entry || []) ids.push(e.resource.id);
  page = await client.nextPage({ bundle: page });
}
const one = ids.length ? await client.read({ resourceType: 'Observation', id: ids[0] }) : null;
let denied = null;
try {
  await client.read({ resourceType: 'Patient', id: VG_PATIENT });
} catch (err) {
  denied = err.response && err.response.status;
}
console.log(JSON.stringify({
  fhirVersion: capability.fhirVersion,
  ids,
  readId: one && one.id,
  readCode: one && one.code.coding[0].code,
  patientReadStatus: denied,
}));
