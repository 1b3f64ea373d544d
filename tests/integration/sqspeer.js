// Test peers for the `s3` source in `mode: sqs` (AWS.md §4, §7), all on 127.0.0.1:
//   node sqspeer.js serve <port>                          local-aws-sqs 2.0.2 (SQS JSON + Query protocols)
//   node sqspeer.js create <endpoint> <name> [redrive-json]  CreateQueue (with a RedrivePolicy: the dead-letter
//        queue named by its deadLetterTargetArn is created first); prints the queue URL
//   node sqspeer.js send <endpoint> <queue_url> <bodies.json>   one message per string of the JSON array, in
//        order (SendMessageBatch, ≤ 10 entries and ≤ 256 KiB a call); prints "sent N"
//   node sqspeer.js attrs <endpoint> <queue_url>          GetQueueAttributes [All] as JSON
//   node sqspeer.js receive <endpoint> <queue_url> <max> <visibility>   ReceiveMessage without a long wait,
//        all system attributes; prints the messages as a JSON array ([] when none)
//   node sqspeer.js delete <endpoint> <queue_url> <handles.json>   DeleteMessageBatch; prints "deleted N"
// The clients are the official @aws-sdk/client-sqs (JSON protocol, SigV4 with a fixed test key, us-east-1).
// Prints "ready <port>" when serving, then one line per request: "<Action> <status> <ms>ms".
//
// local-aws-sqs 2.0.2 as read in its source (github.com/Inqnuam/local-aws-sqs, src/) and checked here:
// - Queue URL: http://127.0.0.1:<port>/123456789012/<name> (hostname option, port, baseUrl "/", account
//   123456789012); queues are found by the last path segment of the QueueUrl *in the body* alone (host, port,
//   account and the request path are ignored; a bare queue name works too). No signature or key check.
// - Protocol: JSON only when Content-Type is exactly `application/x-amz-json-1.0` (a `; charset=…` suffix
//   falls back to the Query protocol: 400 XML "Your request must include Action parameter."); the action is
//   the second "."-separated part of X-Amz-Target (`AmazonSQS.ReceiveMessage`; the prefix is not checked). A JSON request without
//   X-Amz-Target throws outside its error handler and kills the server process: serve() answers those itself
//   with 400 {"__type":"com.amazon.coral.service#UnknownOperationException"} so a bad request cannot take
//   the peer down.
// - Empty answers: ReceiveMessage with no message, DeleteMessage, ChangeMessageVisibility and
//   GetQueueAttributes without AttributeNames answer 200 with an EMPTY body (Content-Length 0), not `{}`.
// - ReceiveMessage: message attributes only for the deprecated `AttributeNames` (["All"] or names);
//   `MessageSystemAttributeNames` is ignored. A per-receive VisibilityTimeout is honoured (absent: the
//   queue's, default 30 s; 0: visible again at once). Messages are collected on every 10 ms tick of a window
//   of WaitTimeSeconds + 40 ms (so WaitTimeSeconds 0 still takes ~40 ms), and the window closes early only
//   when MaxNumberOfMessages messages were collected: 1 message with max 10 and WaitTimeSeconds 20 answers
//   after the full 20 s (real SQS answers as soon as one is there). With VisibilityTimeout 0 the same
//   message is collected again on each tick: one answer holds it several times (its ApproximateReceiveCount
//   rising each time) — `receive` below keeps the first copy.
// - Attributes per message: ApproximateReceiveCount, SentTimestamp, SenderId, ApproximateFirstReceiveTimestamp
//   (+ DeadLetterQueueSourceArn after a move to the dead-letter queue; the MessageId is kept).
// - GetQueueAttributes: ApproximateNumberOfMessages counts every message that is not delayed, the
//   in-flight ones included (real SQS: visible ones only); visible = Messages - MessagesNotVisible.
//   RedrivePolicy is reported as the JSON it was given (maxReceiveCount keeps its type, "2" stays a string).
// - RedrivePolicy: the dead-letter queue must exist at CreateQueue (validateDlqDestination). A message
//   moves to it when the visibility timeout of its maxReceiveCount-th receive expires (real SQS: on the
//   next receive attempt); a ChangeMessageVisibility to 0 on such a message moves it at once.
// - ChangeMessageVisibility(Batch) and DeleteMessage(Batch) exist. Receipt handles are
//   base64(uuid + {"date","MessageId","QueueName"}); on a standard queue any handle ever issued for the
//   message works (stale handles are not refused). A handle that does not decode, or is of another queue:
//   400 {"__type":"com.amazonaws.sqs#ReceiptHandleIsInvalid","message":"The input receipt handle \"…\" is
//   not valid."} (header x-amzn-query-error: ReceiptHandleIsInvalid;Sender). DeleteMessage of a message
//   already deleted: 200 (as SQS). ChangeMessageVisibility of a message already deleted: 404 with the same
//   __type. There is no MessageNotInflight: changing the visibility of a visible message succeeds and hides
//   it, and every ChangeMessageVisibility counts as a receive (ApproximateReceiveCount + 1), which brings a
//   redrive to the dead-letter queue forward. Batch answers: {"Successful":[{"Id"}],"Failed":[{"Id","Code",
//   "Message","SenderFault":true}]} with an empty list left out.
// - Other errors: {"__type":"com.amazonaws.sqs#QueueDoesNotExist"} (400), unknown action
//   {"__type":"com.amazonaws.sqs#UnsupportedOperation"} (400).
'use strict';
const fs = require('fs');
const http = require('http');
const [cmd, ...args] = process.argv.slice(2);

const ACCOUNT = '123456789012';
const JSON_TYPE = 'application/x-amz-json-1.0';
const BATCH_BYTES = 256 * 1024;  // the classic SendMessageBatch limit (local-aws-sqs allows 1 MiB)

async function serve() {
  const [port] = args;
  const { createRequestHandler } = require('local-aws-sqs');
  // createSqsServer() listens on the given host but has no hook before its handler: build the same server
  // here. emulateQueueCreationLifecycle off: a deleted queue's name may be reused at once (real SQS: 60 s).
  const { requestHandler, service } = createRequestHandler({
    port: Number(port), hostname: '127.0.0.1', accountId: ACCOUNT, region: 'us-east-1',
    emulateQueueCreationLifecycle: false,
  });
  const server = http.createServer((req, res) => {
    const t0 = Date.now();
    const json = req.headers['content-type'] === JSON_TYPE;
    const target = req.headers['x-amz-target'];
    res.on('finish', () => {
      const action = json ? (target || '-').split('.').pop() : 'query';
      console.log(`${action} ${res.statusCode} ${Date.now() - t0}ms`);
    });
    if (json && !target) {  // would crash local-aws-sqs (see above)
      req.resume();
      req.on('end', () => {
        res.writeHead(400, { 'Content-Type': JSON_TYPE });
        res.end(JSON.stringify({ __type: 'com.amazon.coral.service#UnknownOperationException',
          message: 'missing X-Amz-Target' }));
      });
      return;
    }
    requestHandler(req, res).catch((e) => {
      console.error(e && e.stack ? e.stack : String(e));
      if (!res.headersSent) res.writeHead(500, { 'Content-Type': JSON_TYPE });
      res.end();
    });
  });
  // Node closes idle keep-alive connections after 5 s, which races a client reusing one: keep them longer
  // than any pause of a test.
  server.keepAliveTimeout = 65000;
  server.headersTimeout = 66000;
  await new Promise((resolve) => server.listen(Number(port), '127.0.0.1', resolve));
  service.PORT = server.address().port;  // queue URLs carry the bound port (port 0 works too)
  console.log(`ready ${server.address().port}`);
  const stop = () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

function client(endpoint) {
  const { SQSClient } = require('@aws-sdk/client-sqs');
  return new SQSClient({
    endpoint, region: 'us-east-1', maxAttempts: 1,
    credentials: { accessKeyId: 'AKIDSQSPEERTEST', secretAccessKey: 'sqspeer-test-secret' },
  });
}

async function create() {
  const [endpoint, name, redrive] = args;
  const { CreateQueueCommand } = require('@aws-sdk/client-sqs');
  const sqs = client(endpoint);
  const Attributes = {};
  if (redrive) {
    // Validate here, and create the dead-letter queue first: local-aws-sqs refuses a missing target.
    const dlq = JSON.parse(redrive).deadLetterTargetArn.split(':').pop();
    await sqs.send(new CreateQueueCommand({ QueueName: dlq }));
    Attributes.RedrivePolicy = redrive;
  }
  const r = await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes }));
  console.log(r.QueueUrl);
}

async function send() {
  const [endpoint, queueUrl, file] = args;
  const { SendMessageBatchCommand } = require('@aws-sdk/client-sqs');
  const sqs = client(endpoint);
  const bodies = JSON.parse(fs.readFileSync(file, 'utf8'));
  if (!Array.isArray(bodies) || bodies.some((b) => typeof b !== 'string')) {
    throw new Error(`${file}: expected a JSON array of strings`);
  }
  let sent = 0;
  while (sent < bodies.length) {
    const entries = [];
    let bytes = 0;
    for (let i = sent; i < bodies.length && entries.length < 10; i++) {
      const n = Buffer.byteLength(bodies[i]);
      if (entries.length && bytes + n > BATCH_BYTES) break;
      entries.push({ Id: `m${i}`, MessageBody: bodies[i] });
      bytes += n;
    }
    const r = await sqs.send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: entries }));
    if (r.Failed && r.Failed.length) throw new Error(`SendMessageBatch failed: ${JSON.stringify(r.Failed)}`);
    sent += entries.length;
  }
  console.log(`sent ${sent}`);
}

async function attrs() {
  const [endpoint, queueUrl] = args;
  const { GetQueueAttributesCommand } = require('@aws-sdk/client-sqs');
  const r = await client(endpoint).send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['All'] }));
  console.log(JSON.stringify(r.Attributes || {}));
}

async function receive() {
  const [endpoint, queueUrl, max, visibility] = args;
  const { ReceiveMessageCommand } = require('@aws-sdk/client-sqs');
  const r = await client(endpoint).send(new ReceiveMessageCommand({
    QueueUrl: queueUrl, MaxNumberOfMessages: Number(max), VisibilityTimeout: Number(visibility),
    WaitTimeSeconds: 0,
    // local-aws-sqs honours only the deprecated name; real SQS takes either.
    AttributeNames: ['All'], MessageSystemAttributeNames: ['All'],
  }));
  // With VisibilityTimeout 0 local-aws-sqs returns a message once per 10 ms tick of its collection window:
  // keep the first copy of each, as SQS would answer.
  const seen = new Set();
  console.log(JSON.stringify((r.Messages || []).filter((m) => !seen.has(m.MessageId) && seen.add(m.MessageId))));
}

async function del() {
  const [endpoint, queueUrl, file] = args;
  const { DeleteMessageBatchCommand } = require('@aws-sdk/client-sqs');
  const sqs = client(endpoint);
  const handles = JSON.parse(fs.readFileSync(file, 'utf8'));
  for (let i = 0; i < handles.length; i += 10) {
    const Entries = handles.slice(i, i + 10).map((h, j) => ({ Id: `d${i + j}`, ReceiptHandle: h }));
    const r = await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries }));
    if (r.Failed && r.Failed.length) throw new Error(`DeleteMessageBatch failed: ${JSON.stringify(r.Failed)}`);
  }
  console.log(`deleted ${handles.length}`);
}

const main = { serve, create, send, attrs, receive, delete: del }[cmd];
if (!main) {
  console.error('usage: sqspeer.js serve|create|send|attrs|receive|delete ...');
  process.exit(2);
}
main().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});
