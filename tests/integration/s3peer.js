// Test peers for the `s3` source (AWS.md §7), all on 127.0.0.1:
//   node s3peer.js serve <port> <dir> <bucket>...      s3rver 3.7.1 (S3 protocol, no signature check)
//   node s3peer.js serve-signed <port> <dir> <bucket>... @20minutes/s3rver 5 (verifies SigV4 on objects)
//   node s3peer.js put <endpoint> <manifest.json>      uploads with the official @aws-sdk/client-s3:
//        manifest = [{"bucket","key","file","content_encoding"?,"metadata"?}...]; credentials S3RVER/S3RVER
//        (metadata: names without the x-amz-meta- prefix, sent as user metadata)
//   node s3peer.js delete <endpoint> <bucket> <key>
// Prints "ready <port>" when serving.
'use strict';
const path = require('path');
const fs = require('fs');
const [cmd, ...args] = process.argv.slice(2);

// s3rver's filesystem store does not walk below a directory whose name holds the delimiter, so a
// delimited listing misses the common prefixes of keys nested two levels or more below the prefix
// (AWSLogs/<acct>/ lists no "CloudTrail/"): list every key under the prefix, then group them.
// Pagination of the prefixes themselves is not needed by the tests (under 1000 of them).
function fixDelimitedListing(Store) {
  const orig = Store.prototype.listObjects;
  Store.prototype.listObjects = async function listObjects(bucket, options) {
    const delimiter = options.delimiter || '';
    if (!delimiter) return orig.call(this, bucket, options);
    const prefix = options.prefix || '';
    const max = options.maxKeys === undefined ? Infinity : options.maxKeys;
    const all = await orig.call(this, bucket, { ...options, delimiter: '', maxKeys: Infinity });
    const prefixes = new Set();
    const objects = [];
    for (const o of all.objects) {
      const idx = o.key.slice(prefix.length).indexOf(delimiter);
      if (idx !== -1) prefixes.add(o.key.slice(0, prefix.length + idx + 1));
      else objects.push(o);
    }
    return { objects: objects.slice(0, max), commonPrefixes: [...prefixes].sort(), isTruncated: objects.length > max };
  };
}

async function serve(signed) {
  const [port, dir, ...buckets] = args;
  fs.mkdirSync(dir, { recursive: true });
  const opts = {
    port: Number(port), address: '127.0.0.1', silent: true, directory: dir,
    configureBuckets: buckets.map((name) => ({ name })),
  };
  let server;
  if (signed) {
    // Its package entry point is not the server class (and its bin/ is missing): load lib/s3rver.
    const S3rver = require('@20minutes/s3rver/lib/s3rver.js');
    fixDelimitedListing(require('@20minutes/s3rver/lib/stores/filesystem.js'));
    server = new S3rver(opts);
  } else {
    const S3rver = require('s3rver');
    fixDelimitedListing(require('s3rver/lib/stores/filesystem.js'));
    server = new S3rver(opts);
  }
  const info = await server.run();
  console.log(`ready ${info.port}`);
  const stop = () => server.close().finally(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

function client(endpoint) {
  const { S3Client } = require('@aws-sdk/client-s3');
  return new S3Client({
    endpoint, region: 'us-east-1', forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

async function put() {
  const [endpoint, manifest] = args;
  const { PutObjectCommand } = require('@aws-sdk/client-s3');
  const s3 = client(endpoint);
  const items = JSON.parse(fs.readFileSync(manifest, 'utf8'));
  for (const it of items) {
    const size = fs.statSync(it.file).size;
    await s3.send(new PutObjectCommand({
      Bucket: it.bucket, Key: it.key, Body: fs.createReadStream(it.file), ContentLength: size,
      ContentType: it.content_type || 'application/octet-stream',
      ...(it.content_encoding ? { ContentEncoding: it.content_encoding } : {}),
      ...(it.metadata ? { Metadata: it.metadata } : {}),
    }));
  }
  console.log(`uploaded ${items.length}`);
}

async function del() {
  const [endpoint, bucket, key] = args;
  const { DeleteObjectCommand } = require('@aws-sdk/client-s3');
  await client(endpoint).send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
}

const main = { serve: () => serve(false), 'serve-signed': () => serve(true), put, delete: del }[cmd];
if (!main) {
  console.error('usage: s3peer.js serve|serve-signed|put|delete ...');
  process.exit(2);
}
main().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});
