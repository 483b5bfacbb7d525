// Sends one HL7 v2 message to an MLLP listener with simple-hl7, an HL7 client Vitalgate did
// not write, waits for the acknowledgement and prints its gist as one JSON line on stdout:
//
//   {"msa1":"AA","msa2":"<control id acknowledged>","msa3":"<text>","err3":["..."],"err8":["..."]}
//
// msa1 is the acknowledgement code (AA, AE, AR ...), msa3 the MSA-3 text (usually empty),
// err3/err8 the ERR-3 condition and ERR-8 user message of every ERR segment, in order. Text
// values (msa3, err8) are unescaped (\F\ \S\ \T\ \R\ \E\ for the standard |^&~\ delimiters,
// \.br\ as a line feed); other escapes are kept as sent.
//
// Usage: node send.mjs FILE [HOST] [PORT]
//   or   HL7_FILE=... HL7_HOST=... HL7_PORT=... node send.mjs
// HOST defaults to 127.0.0.1; PORT is required. HL7_TIMEOUT_MS bounds connect + ACK wait
// (default 10000).
//
// The connection is plain TCP: TLS with the device's client certificate is added by a
// local TLS tunnel in front of Vitalgate (socat OPENSSL: or stunnel). The file's segments may
// end in CR, LF or CRLF; they are sent CR-terminated, as HL7 requires, and empty lines are
// dropped.
//
// Exit status: 0 once an acknowledgement was received and printed, whatever its code; 1 on
// any failure (no file, no port, connection refused or closed, timeout, no MSA segment),
// with the reason on stderr.
import { readFileSync } from 'node:fs';
import hl7 from 'simple-hl7';

const file = process.argv[2] || process.env.HL7_FILE;
const host = process.argv[3] || process.env.HL7_HOST || '127.0.0.1';
const port = Number(process.argv[4] || process.env.HL7_PORT);
const timeoutMs = Number(process.env.HL7_TIMEOUT_MS || 10000);

function fail(msg) {
  process.stderr.write(`hl7client: ${msg}\n`);
  process.exit(1);
}

if (!file) fail('usage: node send.mjs FILE [HOST] [PORT] (or HL7_FILE, HL7_HOST, HL7_PORT)');
if (!Number.isInteger(port) || port <= 0 || port > 65535) fail('a TCP port is required (argv[4] or HL7_PORT)');

let text;
try {
  text = readFileSync(file, 'latin1');
} catch (err) {
  fail(`reading ${file}: ${err.message}`);
}
const message = text.split(/\r\n|\r|\n/).filter((line) => line.trim() !== '').join('\r');
if (!message.startsWith('MSH')) fail(`${file} is not an HL7 v2 message (no MSH first)`);

// unescape decodes the HL7 escape sequences of a text value with the standard delimiters.
function unescape(v) {
  const map = { F: '|', S: '^', T: '&', R: '~', E: '\\', '.br': '\n' };
  return String(v).replace(/\\(F|S|T|R|E|\.br)\\/g, (_, k) => map[k]);
}

const timer = setTimeout(() => fail(`no acknowledgement within ${timeoutMs} ms`), timeoutMs);

// simple-hl7's TCP client frames the message with MLLP (0x0B ... 0x1C 0x0D), reassembles the
// answer frame and parses it into a Message.
const client = hl7.Server.createTcpClient({ host, port, keepalive: true });
let done = false;
let connected = false;
client.connect((err) => {
  if (err) fail(`${connected ? 'connection to' : 'connecting to'} ${host}:${port}: ${err.message}`);
  connected = true;
  client.client.on('close', () => {
    if (!done) fail('the server closed the connection without an acknowledgement');
  });
  client.send(message, (sendErr, ack) => {
    if (sendErr) fail(`sending: ${sendErr.message}`);
    done = true;
    clearTimeout(timer);
    const msa = ack.getSegment('MSA');
    if (!msa) fail('the answer has no MSA segment');
    const errs = ack.getSegments('ERR');
    const out = {
      msa1: msa.getField(1),
      msa2: msa.getField(2),
      msa3: unescape(msa.getField(3)),
      err3: errs.map((e) => e.getComponent(3, 1)),
      err8: errs.map((e) => unescape(e.getField(8))),
    };
    process.stdout.write(JSON.stringify(out) + '\n');
    client.close();
  });
});
