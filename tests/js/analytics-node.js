// Sends with @segment/analytics-node, unmodified, to the relay at argv[2] with the write key argv[3].
// Run by tests/e2e/test_real_clients.py; prints, as its last line, what it sent and heard:
// {"sent": [{url, headers (names), types}], "statuses": [...], "errors": [...]}.
const { Analytics } = require('@segment/analytics-node');

const [host, writeKey] = process.argv.slice(2);
const analytics = new Analytics({ writeKey, host, flushInterval: 200 });
const sent = [];
const statuses = [];
const errors = [];
analytics.on('http_request', (request) => {
  const types = JSON.parse(request.body).batch.map((event) => event.type);
  sent.push({ url: request.url, headers: Object.keys(request.headers).sort(), types });
});
analytics.on('http_response', (response) => statuses.push(response.status));
analytics.on('error', (error) => errors.push(String(error.code || error)));

const pricing = { path: '/pricing', url: 'https://example.com/pricing', title: 'Pricing' };
// A visitor a minute ago: a lead made from the anonymous id, and what they did before signing
// up (Intercom keeps one of two same-named events of a contact in the same second)...
const before = new Date(Date.now() - 60000);
analytics.identify({ anonymousId: 'anon-node', traits: { email: 'node@example.com', name: 'No De' }, timestamp: before });
analytics.track({ anonymousId: 'anon-node', event: 'Viewed Docs', timestamp: before });
analytics.page({ anonymousId: 'anon-node', name: 'Pricing', properties: pricing, timestamp: before });
// ...then signing up: the anonymous id is the user's from now on.
analytics.alias({ previousId: 'anon-node', userId: 'u-node' });
analytics.identify({ userId: 'u-node', traits: { email: 'node@example.com', plan: 'pro' } });
analytics.track({ userId: 'u-node', event: 'Order Completed', properties: { revenue: 42 } });
analytics.group({ userId: 'u-node', groupId: 'node-co', traits: { name: 'Node Co' } });
analytics.page({ userId: 'u-node', name: 'Pricing', properties: pricing });

analytics.closeAndFlush({ timeout: 30000 }).then(() => console.log(JSON.stringify({ sent, statuses, errors })));
