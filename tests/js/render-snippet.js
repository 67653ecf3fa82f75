// Prints Segment's snippet (@segment/snippet, unmodified) for an analytics.js hosted by the site
// itself at https://<argv[2]>/analytics-next/bundles/ instead of Segment's CDN, with the write key
// argv[3]. `useHostForBundles` makes the library look for its settings and lazy chunks there too.
const snippet = require('@segment/snippet');

const [host, apiKey] = process.argv.slice(2);
process.stdout.write(snippet.max({ host, apiKey, ajsPath: '/analytics-next/bundles/standalone.js', useHostForBundles: true }));
