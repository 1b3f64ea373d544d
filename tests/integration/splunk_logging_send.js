// Sends events to an HEC endpoint with Splunk's own JavaScript client (npm splunk-logging), with
// batching, and prints a JSON summary on stdout. Used by test_hec_receiver.py.
//
// usage: node splunk_logging_send.js <url> <token> <count> <batch_count>
//   url: e.g. http://127.0.0.1:8088 (path /services/collector/event/1.0 is the client default)
// Each event i is {"message":{"seq":i,"text":...},"severity":"info"} with metadata
// host/source/sourcetype/index and time = 1700000000 + i + 0.25 seconds.
"use strict";

const path = require("path");
const modules = process.env.LOGSHIP_NODE_MODULES ||
  path.join(process.env.LOGSHIP_SOURCE_DIR || path.join(__dirname, "..", ".."), "tests", "node_modules");
const SplunkLogger = require(path.join(modules, "splunk-logging")).Logger;

const [url, token, countArg, batchArg] = process.argv.slice(2);
const count = parseInt(countArg || "50", 10);
const batchCount = parseInt(batchArg || "10", 10);

const logger = new SplunkLogger({
  token: token,
  url: url,
  maxBatchCount: batchCount,
  maxRetries: 0,
});

const summary = { requests: 0, errors: [], bodies: [] };
logger.error = function (err) {
  summary.errors.push(String(err && err.message ? err.message : err));
};

let pending = Math.ceil(count / batchCount);
function done(err, resp, body) {
  summary.requests += 1;
  if (err) summary.errors.push(String(err.message || err));
  summary.bodies.push({ status: resp ? resp.statusCode : null, body: body });
  pending -= 1;
  if (pending === 0) {
    process.stdout.write(JSON.stringify(summary) + "\n");
    process.exit(summary.errors.length === 0 ? 0 : 1);
  }
}

for (let i = 0; i < count; i++) {
  logger.send(
    {
      message: { seq: i, text: `event ${i} "quoted" \\ é日本` },
      severity: "info",
      metadata: {
        host: "node-host",
        source: "splunk-logging",
        sourcetype: "npm:test",
        index: "main",
        time: (1700000000 + i) * 1000 + 250,
      },
    },
    done
  );
}
if (count % batchCount !== 0) logger.flush(done);

setTimeout(() => {
  summary.errors.push("timed out");
  process.stdout.write(JSON.stringify(summary) + "\n");
  process.exit(2);
}, 30000).unref();
