// Runs the graphql-http audit suite (GraphQL over HTTP specification) against a server.
//
//   AUDIT_TOKEN=<access token> node audit.mjs http://127.0.0.1:8000/graphql
//
// The audits introspect (`__type`), which PartnerGraph refuses to anonymous callers, so the
// requests carry AUDIT_TOKEN as a bearer credential when it is set.
// Prints one line per audit. Exits 1 if any MUST audit fails (SHOULD and MAY failures are
// printed as warnings and notices), 2 on a usage or fatal error.
import { serverAudits } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  console.error('usage: node audit.mjs <graphql url>');
  process.exit(2);
}

const LABEL = { ok: 'PASS', error: 'FAIL', warn: 'WARN', notice: 'NOTE' };
const counts = {};

const token = process.env.AUDIT_TOKEN;
const fetchFn = token
  ? (input, init = {}) => {
      const headers = new Headers(init.headers);
      headers.set('authorization', `Bearer ${token}`);
      return fetch(input, { ...init, headers });
    }
  : fetch;

for (const audit of serverAudits({ url, fetchFn })) {
  const level = audit.name.split(' ')[0];
  counts[level] ??= { ok: 0, failed: 0 };
  const result = await audit.fn();
  if (result.status === 'ok') {
    counts[level].ok += 1;
    console.log(`${LABEL.ok} ${result.id} ${result.name}`);
    continue;
  }
  counts[level].failed += 1;
  let body = '';
  try {
    body = (await result.response.text()).slice(0, 300);
  } catch {
    // the body was already read by the audit
  }
  console.log(`${LABEL[result.status] ?? result.status} ${result.id} ${result.name}`);
  console.log(`     reason: ${result.reason}`);
  console.log(`     response: ${result.response.status} ${body}`);
}

const summary = Object.entries(counts)
  .map(([level, c]) => `${level} ${c.ok}/${c.ok + c.failed} passed`)
  .join(', ');
console.log(`summary: ${summary}`);
process.exit(counts.MUST?.failed ? 1 : 0);
